// Shared by per-request.mjs and h2-per-request.mjs: run a request loop under callgrind at two request
// counts and report instructions per request, split into code executed and TurboFan compiling.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** Ir by category (turbofan = V8's optimising compiler, else executed) from callgrind_annotate. */
export function categories(file) {
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

/**
 * For each dist: `node --predictable --single-threaded LOOP …loopArgs(dist, n)` under callgrind at
 * n = ns[0] and ns[1]; prints (Ir(N2) − Ir(N1)) / (N2 − N1) as total = executed + TurboFan.
 */
export function perRequest({ dists, ns, loop, loopArgs, work, stderr = 'ignore' }) {
  dists.forEach((dist, i) => {
    const [a, b] = ns.map((n) => {
      const out = join(work, `d${i}-${n}.out`);
      execFileSync('valgrind', ['--tool=callgrind', '--smc-check=all-non-file', `--callgrind-out-file=${out}`,
        'node', '--predictable', '--single-threaded', loop, ...loopArgs(dist, n)], { stdio: ['ignore', 'ignore', stderr] });
      return categories(out);
    });
    const d = ns[1] - ns[0];
    const executed = (b.executed - a.executed) / d;
    const turbofan = (b.turbofan - a.turbofan) / d;
    console.log(`${dist}: total ${Math.round(executed + turbofan)} Ir/request = executed ${Math.round(executed)} + TurboFan ${Math.round(turbofan)}`);
  });
}
