// Fixed request loop for CPU-per-request comparison (run by bench/cpu/per-request.mjs under callgrind):
// node loop.mjs DIST_ROOT N. N keep-alive GETs from one connection, one at a time, through the edge as
// `npm run bench` (loadtest throughput) runs it, minus the admin listener (idle, but its once-a-second
// sampler would add wall-time-dependent instructions):
// * the process wiring of `portcullis run` (edge/main/process.ts runEdgeProcess: metrics observer,
//   traffic history, event sinks, fault guard), default http1 engine, workers: 1;
// * the throughput spec's config (loadtest/lib/config-gen.ts): access log to /dev/null, the pass-through
//   rule set (loadtest/scenarios/pass-through.rules), client limits out of reach, connection guard
//   counting only, roundrobin backend with a queue and one retry;
// * a raw net origin answering a 100-byte body (loadtest/lib/origin.ts), wrk's request shape
//   (GET / with Host and the harness's User-Agent and Accept).
// Start-up cancels out between two N. A dist without runEdgeProcess falls back to startEdge.
// The `rules` loadtest scenario's variants (environment, passed through by per-request.mjs):
//   LOOP_RULES=shop  examples/rules/shop.rules (and its `api` backend), GET /product/42?ref=home, each
//                    connection from the next 127.120.x.y address for 20 requests (as RULES_DRIVER:
//                    the per-address limit of 100 / 10 s must not fire)
//   LOOP_RULES=none  the same request and address rotation, no rules at all
//   (unset: the pass-through rule set, GET /, one connection — the throughput loop)
//   LOOP_HOUR=H      shifts the edge's clock into hour H (UTC) of the day: shop.rules has rules active
//                    only 17–23, so comparisons across the day must pin the hour.
import net from 'node:net';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { backendLines, freePort, startFixedOrigin } from './loop-parts.mjs';
const [rootArg, nText] = process.argv.slice(2);
const rulesVariant = process.env.LOOP_RULES ?? 'pass';
if (!['pass', 'shop', 'none'].includes(rulesVariant)) { console.error(`LOOP_RULES=${rulesVariant}: pass, shop or none`); process.exit(2); }
const rotate = rulesVariant !== 'pass';
if (process.env.LOOP_HOUR !== undefined) {
  // lib/clock.ts reads performance.timeOrigin once at import: shift it before the edge is imported.
  const hour = Number(process.env.LOOP_HOUR);
  const real = performance.timeOrigin + performance.now();
  const target = Math.floor(real / 86_400_000) * 86_400_000 + hour * 3_600_000 + (real % 3_600_000);
  Object.defineProperty(performance, 'timeOrigin', { value: performance.timeOrigin + (target - real) });
}
const root = resolve(rootArg); // a relative DIST works too
const N = Number(nText);
const mainDir = existsSync(`${root}/edge/main/edge.js`) ? `${root}/edge/main` : `${root}/edge`;
const { startEdge } = await import(`${mainDir}/edge.js`);
const processMod = existsSync(`${mainDir}/process.js`) ? await import(`${mainDir}/process.js`) : {};
const { loadConfigText } = await import(`${root}/edge/config/load.js`);
const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const rulesFile = rulesVariant === 'shop' ? join(repo, 'examples', 'rules', 'shop.rules') : join(repo, 'loadtest', 'scenarios', 'pass-through.rules');

const origin = await startFixedOrigin();
const oport = origin.address().port;
const port = await freePort();
const yaml = [
  `listen: [{ address: "127.0.0.1:${port}" }]`,
  'workers: 1',
  'access_log: { path: /dev/null }',
  ...(rulesVariant === 'none' ? [] : [`rules: { files: [${JSON.stringify(rulesFile)}] }`]),
  'limits: { client: { requests: { limit: 1000000000, window: 10s, status: 429 }, in_flight: 1000000 }, connection: { in_process: off } }',
  'default_backend: shop',
  'backends:',
  ...backendLines('shop', oport),
  ...(rulesVariant === 'shop' ? backendLines('api', oport) : []),
  '',
].join('\n');
const cfg = loadConfigText(yaml, 'loop.yaml', {});
const run = processMod.runEdgeProcess;
const edge = run !== undefined ? await run(cfg, { handleSignals: false }) : await startEdge(cfg, {});
const PATH = rotate ? '/product/42?ref=home' : '/';
const REQ = Buffer.from(`GET ${PATH} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) portcullis-loadtest\r\nAccept: text/html\r\n\r\n`);
const PER_CONNECTION = rotate ? 20 : Infinity;
let done = 0;
let address = 1;
while (done < N) {
  const localAddress = rotate ? `127.120.${(address >> 8) & 255}.${address & 255}` : undefined;
  address++;
  const s = net.connect({ port, host: '127.0.0.1', localAddress });
  await new Promise((r) => s.once('connect', r));
  let buf = '';
  let onThis = 0;
  await new Promise((resolve) => {
    // A connection the edge closes under the loop (e.g. a timeout on a starved machine) ends the run
    // with a message instead of waiting for an answer that cannot come.
    s.on('close', () => { if (onThis < PER_CONNECTION && done < N) { console.error(`connection closed by the edge after ${onThis} requests on it (${done} in all)`); process.exit(1); } });
    s.on('data', (d) => {
      buf += d.toString('latin1');
      for (;;) {
        const i = buf.indexOf('\r\n\r\n');
        if (i < 0) break;
        const m = /content-length: (\d+)/i.exec(buf.slice(0, i));
        const len = m ? Number(m[1]) : 0;
        if (buf.length < i + 4 + len) break;
        if (!buf.startsWith('HTTP/1.1 200')) { console.error('bad response', buf.slice(0, 80)); process.exit(1); }
        buf = buf.slice(i + 4 + len);
        onThis++;
        if (++done === N || onThis === PER_CONNECTION) { resolve(); return; }
        s.write(REQ);
      }
    });
    s.write(REQ);
  });
  s.destroy();
}
await edge.stop();
origin.close();
console.log(`done ${done}`);
