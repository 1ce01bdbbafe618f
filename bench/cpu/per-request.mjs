// Instructions per request under callgrind, split into code that runs the request and TurboFan compiling.
//   node bench/cpu/per-request.mjs DIST [DIST …] [--n 500,2500]
// Runs loop.mjs for each DIST (a built dist/ folder, e.g. of a `git worktree add --detach` of the base
// commit) at two request counts; per request = (Ir(N2) − Ir(N1)) / (N2 − N1).
// Why the split: between request 500 and 2500 V8 is still optimising (≈ 60 % of the difference is
// TurboFan, with --single-threaded on the main thread), and which functions get (re)compiled inside that
// window moves with code layout by ±20k instructions per request between builds with the same executed
// code. Compare "executed" for the cost of the request path; "total" is the historic number.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

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

/** Ir by category (turbofan = V8's optimising compiler, else executed) from callgrind_annotate. */
function categories(file) {
  const out = execFileSync('callgrind_annotate', ['--threshold=100', '--auto=no', file], { encoding: 'utf8', maxBuffer: 1 << 28 });
  let executed = 0; let turbofan = 0;
  for (const line of out.split('\n')) {
    const m = /^\s*([\d,]+) \([\s\d.]+%\)\s+(.*)$/.exec(line);
    if (m === null || m[2].includes('PROGRAM TOTALS')) continue;
    const ir = Number(m[1].replaceAll(',', ''));
    if (m[2].includes('compiler::') || m[2].includes('Zone')) turbofan += ir; else executed += ir;
  }
  return { executed, turbofan };
}

function run(dist, n, tag) {
  const out = join(work, `${tag}-${n}.out`);
  execFileSync('valgrind', ['--tool=callgrind', '--smc-check=all-non-file', `--callgrind-out-file=${out}`,
    'node', '--predictable', '--single-threaded', loop, dist, String(n)], { stdio: ['ignore', 'ignore', 'ignore'] });
  return categories(out);
}

try {
  dists.forEach((dist, i) => {
    const a = run(dist, ns[0], `d${i}`);
    const b = run(dist, ns[1], `d${i}`);
    const d = ns[1] - ns[0];
    const executed = (b.executed - a.executed) / d;
    const turbofan = (b.turbofan - a.turbofan) / d;
    console.log(`${dist}: total ${Math.round(executed + turbofan)} Ir/request = executed ${Math.round(executed)} + TurboFan ${Math.round(turbofan)}`);
  });
} finally {
  rmSync(work, { recursive: true, force: true });
}
