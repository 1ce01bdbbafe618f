// Instructions per HTTP/2 request under callgrind (h2load over TLS through the whole edge), split as
// per-request.mjs splits them (code executed vs V8's optimising compiler).
//   node bench/cpu/h2-per-request.mjs DIST[#ENGINE] [DIST[#ENGINE] …] [--n 2000,10000] [--h2load "-c4 -m10"]
// DIST#ENGINE runs that build with listen[].http2_engine ENGINE (portcullis | node): dist#node dist#portcullis
// compares the two engines of one build.
// Runs h2-loop.mjs for each DIST at two request counts; per request = (Ir(N2) − Ir(N1)) / (N2 − N1).
// Only the edge process is traced (h2load is a child callgrind does not follow), so TLS, nghttp2, the
// pipeline and the origin count. Compare builds on the executed column.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { perRequest } from './callgrind.mjs';

const args = process.argv.slice(2);
let ns = [2000, 10000];
let h2load = '-c4 -m10';
const dists = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--n') ns = args[++i].split(',').map(Number);
  else if (args[i] === '--h2load') h2load = args[++i];
  else dists.push(args[i]);
}
if (dists.length === 0 || ns.length !== 2 || !(ns[1] > ns[0])) {
  console.error('usage: node bench/cpu/h2-per-request.mjs DIST [DIST …] [--n N1,N2] [--h2load "-c4 -m10"]');
  process.exit(2);
}
const loop = join(dirname(fileURLToPath(import.meta.url)), 'h2-loop.mjs');
const work = mkdtempSync(join(tmpdir(), 'cpu-h2-per-request-'));
const cert = join(work, 'cert.pem');
const key = join(work, 'key.pem');
const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
  '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1']);
if (r.status !== 0) throw new Error(`openssl: ${r.stderr}`);

try {
  perRequest({ dists, ns, loop, work, stderr: 'inherit', loopArgs: (spec, n) => { const [dist, engine] = spec.split('#'); return [dist, String(n), cert, key, h2load, ...(engine ? [engine] : [])]; } });
} finally {
  if (!process.env.KEEP) rmSync(work, { recursive: true, force: true }); else console.log(`kept ${work}`);
}
