// Fixed HTTP/2 request load for CPU-per-request comparison (run by bench/cpu/h2-per-request.mjs under
// callgrind): node h2-loop.mjs DIST_ROOT N CERT KEY [H2LOAD_ARGS]. The edge as loop.mjs wires it (process
// wiring of `portcullis run`, the throughput spec's config: access log to /dev/null, pass-through rules,
// client limits out of reach, connection guard counting only), on a TLS listener with HTTP/2 (ALPN h2),
// in front of a raw 100-byte origin; `h2load -n N -c4 -m10` (default) runs as a child process (not
// traced by callgrind: only the edge's and origin's instructions count) and the process exits after it.
import net from 'node:net';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
const [rootArg, nText, cert, key, extra] = process.argv.slice(2);
const root = resolve(rootArg);
const N = Number(nText);
const h2loadArgs = (extra ?? '-c4 -m10').split(' ').filter((x) => x !== '');
const mainDir = `${root}/edge/main`;
const processMod = await import(`${mainDir}/process.js`);
const { loadConfigText } = await import(`${root}/edge/config/load.js`);
const rulesFile = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'loadtest', 'scenarios', 'pass-through.rules');

const BODY = Buffer.alloc(100, 'x');
const ANSWER = Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${BODY.length}\r\nX-Origin: s1\r\n\r\n`, 'latin1'), BODY]);
const origin = net.createServer({ noDelay: true }, (sock) => {
  let pending = null;
  sock.on('data', (chunk) => {
    let buf = pending === null ? chunk : Buffer.concat([pending, chunk]);
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) break;
      sock.write(ANSWER);
      buf = buf.subarray(end + 4);
    }
    pending = buf.length > 0 ? buf : null;
  });
  sock.on('error', () => {});
});
await new Promise((r) => origin.listen(0, '127.0.0.1', r));
const oport = origin.address().port;
const probe = net.createServer(); await new Promise((r) => probe.listen(0, '127.0.0.1', r)); const port = probe.address().port; await new Promise((r) => probe.close(r));
const yaml = [
  `listen: [{ address: "127.0.0.1:${port}", tls: { cert: ${JSON.stringify(cert)}, key: ${JSON.stringify(key)} } }]`,
  'workers: 1',
  // Under callgrind a TLS handshake takes seconds: deadlines out of the way, so the same N requests
  // take the same path whatever the machine's load.
  'timeouts: { client_head: 300s, client_idle: 300s, connect: 60s, server: 300s, server_idle: 300s }',
  'access_log: { path: /dev/null }',
  `rules: { files: [${JSON.stringify(rulesFile)}] }`,
  'limits: { client: { requests: { limit: 1000000000, window: 10s, status: 429 }, in_flight: 1000000 }, connection: { in_process: off } }',
  'default_backend: shop',
  'backends:',
  '  shop:',
  '    balance: roundrobin',
  '    queue: { max: 10000, timeout: 5s }',
  '    retries: 1',
  '    servers:',
  `      - { name: s1, url: "http://127.0.0.1:${oport}", weight: 1, maxconn: 0 }`,
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
