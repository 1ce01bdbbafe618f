// `npm start`: two demo origins and a backup site on loopback, Portcullis in front of them with
// examples/demo.yaml, and a hint where to point curl.
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { loadConfigFile, ConfigLoadError } from './config/load.js';
import { runEdgeProcess } from './process.js';

function origin(name: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/health') { res.end('ok\n'); return; }
    res.setHeader('content-type', 'text/plain; charset=utf-8');
    res.setHeader('x-served-by', name);
    res.end(`Hello from ${name}: ${req.method} ${req.url}\n`);
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`demo origin ${name} cannot listen on 127.0.0.1:${port}: ${err.message}`)));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

async function demo(): Promise<void> {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const file = process.env.PORTCULLIS_CONFIG ?? join(root, 'examples', 'demo.yaml');
  await Promise.all([origin('web1', 8081), origin('web2', 8082), origin('dr1 (second site)', 8083)]);
  let cfg;
  try {
    cfg = loadConfigFile(file);
  } catch (err) {
    if (err instanceof ConfigLoadError) { process.stderr.write(`${err.message}\n`); process.exit(1); }
    throw err;
  }
  await runEdgeProcess(cfg);
  const token = cfg.admin?.token ?? '';
  process.stderr.write(`
Portcullis demo is up.
  curl -i http://127.0.0.1:8080/                       # balanced over web1/web2 (sticky cookie PCSRV)
  curl -i -A sqlmap http://127.0.0.1:8080/              # blocked by examples/rules/shop.rules (ua-scanners)
  curl -i http://127.0.0.1:8080/admin                   # 404 outside the office networks
  curl -s -H 'Authorization: Bearer ${token}' http://127.0.0.1:9090/api/servers
  dashboard: http://127.0.0.1:9090/  (token: ${token})
Ctrl-C stops everything.
`);
}

demo().catch((err) => { process.stderr.write(`${(err as Error).message}\n`); process.exit(1); });
