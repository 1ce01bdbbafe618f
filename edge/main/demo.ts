// `npm start`: demo origins (two shop servers, a backup site, an API server) on loopback, Portcullis
// in front of them with examples/demo.yaml, and a hint where to point curl.
// Ports: PORTCULLIS_DEMO_PORT (edge, default 8080; the origins take the next four) and
// PORTCULLIS_DEMO_ADMIN_PORT (default 9090), for a machine where those are taken.
// Runtime state (bans and rule modes set through the admin API) lives in a fresh temporary
// directory, removed when the demo stops: nothing is written into the repository, and one demo
// session's bans do not carry into the next. PORTCULLIS_DEMO_STATE_FILE keeps it somewhere instead.
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import type { HistorySection } from '../history/config.js';
import { tmpdir } from 'node:os';
import { loadConfigFile, ConfigLoadError } from '../config/load.js';
import { runEdgeProcess } from './process.js';

function origin(name: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/health') { res.end('ok\n'); return; }
    res.setHeader('content-type', 'text/plain; charset=utf-8');
    res.setHeader('x-served-by', name);
    res.end(`Hello from ${name}: ${req.method} ${req.url}\n`);
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`demo origin ${name} cannot listen on 127.0.0.1:${port}: ${err.message}` +
      ' (set PORTCULLIS_DEMO_PORT to move the demo to other ports)')));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

function port(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 65535 - 4) throw new Error(`${name}="${text}" is not a port number`);
  return n;
}

/** Where the demo keeps its runtime state, and how to clean it up when it stops. */
function demoState(): { file: string; cleanup: () => void; note: string } {
  const kept = process.env.PORTCULLIS_DEMO_STATE_FILE;
  if (kept !== undefined && kept !== '') return { file: kept, cleanup: () => undefined, note: `${kept} (PORTCULLIS_DEMO_STATE_FILE; kept)` };
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-demo-'));
  const file = join(dir, 'state.json');
  return { file, cleanup: () => rmSync(dir, { recursive: true, force: true }), note: `${file} (removed when the demo stops)` };
}

async function demo(): Promise<void> {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  const file = process.env.PORTCULLIS_CONFIG ?? join(root, 'examples', 'demo.yaml');
  const edgePort = port('PORTCULLIS_DEMO_PORT', 8080);
  const adminPort = port('PORTCULLIS_DEMO_ADMIN_PORT', 9090);
  // examples/demo.yaml reads these (with the default ports as fallbacks, so `portcullis run
  // --config examples/demo.yaml` works too). Set in process.env, not only passed to the first load:
  // a reload (SIGHUP, POST /api/config/reload) re-reads the file with process.env and would
  // otherwise point every server at the default ports.
  const env: NodeJS.ProcessEnv = Object.assign(process.env, {
    PORTCULLIS_DEMO_PORT: String(edgePort),
    PORTCULLIS_DEMO_ADMIN_PORT: String(adminPort),
    PORTCULLIS_DEMO_WEB1_PORT: String(edgePort + 1),
    PORTCULLIS_DEMO_WEB2_PORT: String(edgePort + 2),
    PORTCULLIS_DEMO_DR1_PORT: String(edgePort + 3),
    PORTCULLIS_DEMO_API_PORT: String(edgePort + 4),
  });
  let cfg;
  try {
    cfg = loadConfigFile(file, env);
  } catch (err) {
    if (err instanceof ConfigLoadError) { process.stderr.write(`${err.message}\n`); process.exit(1); }
    throw err;
  }
  await Promise.all([
    origin('web1', edgePort + 1), origin('web2', edgePort + 2), origin('dr1 (second site)', edgePort + 3), origin('api1', edgePort + 4),
  ]);
  const state = demoState();
  process.once('exit', state.cleanup);
  if (cfg.admin !== null) cfg.admin.stateFile = state.file;
  // The traffic history goes beside the state (a temporary directory unless the state file is kept).
  const history = cfg.sections.history as HistorySection;
  if (history.dir !== null) history.dir = join(dirname(state.file), 'portcullis.history');
  await runEdgeProcess(cfg);
  const token = cfg.admin?.token ?? '';
  const edge = `http://127.0.0.1:${edgePort}`;
  const admin = `http://127.0.0.1:${adminPort}`;
  process.stderr.write(`
Portcullis demo is up.
  curl -i ${edge}/                       # balanced over web1/web2 (sticky cookie PCSRV)
  curl -i ${edge}/api/v1/products        # routed to backend "api" (rule api-backend)
  curl -i -A sqlmap ${edge}/              # blocked by examples/rules/shop.rules (ua-scanners)
  curl -i ${edge}/admin                   # 404 outside the office networks
  curl -s -H 'Authorization: Bearer ${token}' ${admin}/api/servers
  dashboard: ${admin}/  (token: ${token})
  terminal view: PORTCULLIS_ADMIN_TOKEN=${token} node bin/portcullis top --url ${admin}   (q quits)
  runtime state (bans, rule modes set from the admin API): ${state.note}
Ctrl-C stops everything.
`);
}

demo().catch((err) => { process.stderr.write(`${(err as Error).message}\n`); process.exit(1); });
