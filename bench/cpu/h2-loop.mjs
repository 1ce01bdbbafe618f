// Fixed HTTP/2 request load for CPU-per-request comparison (run by bench/cpu/h2-per-request.mjs under
// callgrind): node h2-loop.mjs DIST_ROOT N CERT KEY [H2LOAD_ARGS]. The edge as loop.mjs wires it (process
// wiring of `portcullis run`, the throughput spec's config: access log to /dev/null, pass-through rules,
// client limits out of reach, connection guard counting only), on a TLS listener with HTTP/2 (ALPN h2),
// in front of a raw 100-byte origin; `h2load -n N -c4 -m10` (default) runs as a child process (not
// traced by callgrind: only the edge's and origin's instructions count) and the process exits after it.
// node h2-loop.mjs DIST_ROOT N CERT KEY H2LOAD_ARGS ENGINE selects the HTTP/2 engine of the listener.
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { backendLines, freePort, startFixedOrigin } from './loop-parts.mjs';
// ENGINE: listen[].http2_engine (portcullis | node); left out: the default engine.
const [rootArg, nText, cert, key, extra, engine] = process.argv.slice(2);
const root = resolve(rootArg);
const N = Number(nText);
const h2loadArgs = (extra ?? '-c4 -m10').split(' ').filter((x) => x !== '');
const mainDir = `${root}/edge/main`;
const processMod = await import(`${mainDir}/process.js`);
const { loadConfigText } = await import(`${root}/edge/config/load.js`);
const rulesFile = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'loadtest', 'scenarios', 'pass-through.rules');

const origin = await startFixedOrigin();
const oport = origin.address().port;
const port = await freePort();
const yaml = [
  `listen: [{ address: "127.0.0.1:${port}", tls: { cert: ${JSON.stringify(cert)}, key: ${JSON.stringify(key)} }${engine ? `, http2_engine: ${engine}` : ''} }]`,
  'workers: 1',
  // Under callgrind a TLS handshake takes seconds: deadlines out of the way, so the same N requests
  // take the same path whatever the machine's load.
  'timeouts: { client_head: 300s, client_idle: 300s, connect: 60s, server: 300s, server_idle: 300s }',
  'access_log: { path: /dev/null }',
  `rules: { files: [${JSON.stringify(rulesFile)}] }`,
  'limits: { client: { requests: { limit: 1000000000, window: 10s, status: 429 }, in_flight: 1000000 }, connection: { in_process: off } }',
  'default_backend: shop',
  'backends:',
  ...backendLines('shop', oport),
  '',
].join('\n');
const cfg = loadConfigText(yaml, 'h2-loop.yaml', {});
const edge = await processMod.runEdgeProcess(cfg, { handleSignals: false });
const out = await new Promise((res) => {
  const c = spawn('h2load', ['-t1', ...h2loadArgs, '-n', String(N), `https://127.0.0.1:${port}/`], { stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  c.stdout.on('data', (d) => { text += d; });
  c.on('exit', () => res(text));
});
const ok = /status codes: (\d+) 2xx/.exec(out);
const proto = /Application protocol: (\S+)/.exec(out);
await edge.stop();
origin.close();
if (!ok || Number(ok[1]) !== N || proto?.[1] !== 'h2') { console.error(out.slice(-800)); process.exit(1); }
console.log(`done ${N}`);
