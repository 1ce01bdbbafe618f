// Instructions per request under callgrind, split into code that runs the request and TurboFan compiling.
//   node bench/cpu/per-request.mjs DIST [DIST …] [--n 500,2500]
// Runs loop.mjs for each DIST (a built dist/ folder, e.g. of a `git worktree add --detach` of the base
// commit) at two request counts; per request = (Ir(N2) − Ir(N1)) / (N2 − N1).
// Why the split: between request 500 and 2500 V8 is still optimising (≈ 60 % of the difference is
// TurboFan, with --single-threaded on the main thread), and which functions get (re)compiled inside that
// window moves with code layout by ±20k instructions per request between builds with the same executed
// code. Compare "executed" for the cost of the request path; "total" is the historic number.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { perRequest } from './callgrind.mjs';

const args = process.argv.slice(2);
let ns = [500, 2500];
const dists = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--n') ns = args[++i].split(',').map(Number);
  else dists.push(args[i]);
}
if (dists.length === 0 || ns.length !== 2 || !(ns[1] > ns[0])) {
  console.error('usage: node bench/cpu/per-request.mjs DIST [DIST …] [--n N1,N2]');
  process.exit(2);
}
const loop = join(dirname(fileURLToPath(import.meta.url)), 'loop.mjs');
const work = mkdtempSync(join(tmpdir(), 'cpu-per-request-'));

try {
  perRequest({ dists, ns, loop, work, loopArgs: (dist, n) => [dist, String(n)] });
} finally {
  rmSync(work, { recursive: true, force: true });
}
