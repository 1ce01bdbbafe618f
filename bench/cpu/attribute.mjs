// Where the instructions of one request variant go compared with another, per function, under callgrind.
//   node bench/cpu/attribute.mjs DIST [--n 1000,5000] [--a LOOP_RULES=shop] [--b LOOP_RULES=none]
//                                [--env LOOP_HOUR=19] [--top 40] [--keep DIR]
// Runs loop.mjs (same wiring as per-request.mjs) for variant A and variant B (environment assignments,
// comma-separated) at two request counts each, and prints per request ((Ir(N2) − Ir(N1)) / (N2 − N1)):
// the totals (executed vs TurboFan, as per-request.mjs splits them), then the functions whose self
// and inclusive cost differ most between A and B (callgrind_annotate, --inclusive=yes for the latter).
// Code V8 generated at run time has no symbol: callgrind names it by address, which moves between
// runs, so every such entry is summed into one "[JIT code]" line (optimised and baseline JavaScript,
// regexp code, inline caches' handlers). Embedded builtins (Builtins_*) and the C++ runtime keep names.
// --keep DIR keeps the callgrind files (for callgrind_annotate by hand).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { categories } from './callgrind.mjs';

const args = process.argv.slice(2);
let ns = [1000, 5000];
let a = 'LOOP_RULES=shop';
let b = 'LOOP_RULES=none';
let common = '';
let top = 40;
let keep = null;
let dist = null;
for (let i = 0; i < args.length; i++) {
  const x = args[i];
  if (x === '--n') ns = args[++i].split(',').map(Number);
  else if (x === '--a') a = args[++i];
  else if (x === '--b') b = args[++i];
  else if (x === '--env') common = args[++i];
  else if (x === '--top') top = Number(args[++i]);
  else if (x === '--keep') keep = args[++i];
  else dist = x;
}
if (dist === null || ns.length !== 2 || !(ns[1] > ns[0])) {
  console.error('usage: node bench/cpu/attribute.mjs DIST [--n N1,N2] [--a ENV] [--b ENV] [--env ENV] [--top K] [--keep DIR]');
  process.exit(2);
}
const envOf = (text) => Object.fromEntries(text.split(',').filter((s) => s !== '').map((kv) => { const i = kv.indexOf('='); return [kv.slice(0, i), kv.slice(i + 1)]; }));
const loop = join(dirname(fileURLToPath(import.meta.url)), 'loop.mjs');
const work = keep ?? mkdtempSync(join(tmpdir(), 'cpu-attribute-'));
mkdirSync(work, { recursive: true });

/** Function → Ir from callgrind_annotate (self, or inclusive). Unnamed code is one bucket. */
function perFunction(file, inclusive) {
  const out = execFileSync('callgrind_annotate', ['--threshold=100', '--auto=no', `--inclusive=${inclusive ? 'yes' : 'no'}`, file], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const m = new Map();
  for (const line of out.split('\n')) {
    const r = /^\s*([\d,]+) \([\s\d.]+%\)\s+(.*)$/.exec(line);
    if (r === null || r[2].includes('PROGRAM TOTALS')) continue;
    const ir = Number(r[1].replaceAll(',', ''));
    let name = r[2].replace(/ \[[^\]]*\]$/, ''); // the object file
    const colon = name.indexOf(':');
    if (colon >= 0 && !name.startsWith('0x')) name = name.slice(colon + 1); // "file:function" → function
    if (/^(\?\?\?:)?0x[0-9a-f]+$/i.test(name)) name = '[JIT code]';
    m.set(name, (m.get(name) ?? 0) + ir);
  }
  return m;
}

function run(label, envText) {
  const env = { ...process.env, ...envOf(common), ...envOf(envText) };
  const files = ns.map((n) => {
    const out = join(work, `${label}-${n}.out`);
    execFileSync('valgrind', ['--tool=callgrind', '--smc-check=all-non-file', `--callgrind-out-file=${out}`,
      'node', '--predictable', '--single-threaded', loop, dist, String(n)], { stdio: ['ignore', 'ignore', 'ignore'], env });
    return out;
  });
  const d = ns[1] - ns[0];
  const [c1, c2] = files.map(categories);
  const per = (m1, m2) => { const r = new Map(); for (const k of new Set([...m1.keys(), ...m2.keys()])) r.set(k, ((m2.get(k) ?? 0) - (m1.get(k) ?? 0)) / d); return r; };
  return {
    executed: (c2.executed - c1.executed) / d, turbofan: (c2.turbofan - c1.turbofan) / d,
    self: per(perFunction(files[0], false), perFunction(files[1], false)),
    incl: per(perFunction(files[0], true), perFunction(files[1], true)),
  };
}

try {
  const A = run('a', a);
  const B = run('b', b);
  const f = (x) => Math.round(x).toLocaleString('en-US');
  console.log(`per request (N ${ns[0]} → ${ns[1]}), common env: ${common || '-'}`);
  console.log(`  A ${a}: executed ${f(A.executed)} + TurboFan ${f(A.turbofan)}`);
  console.log(`  B ${b}: executed ${f(B.executed)} + TurboFan ${f(B.turbofan)}`);
  console.log(`  A − B executed: ${f(A.executed - B.executed)} (${((A.executed / B.executed - 1) * 100).toFixed(1)} %)`);
  for (const [title, ka] of [['self', 'self'], ['inclusive', 'incl']]) {
    const keys = new Set([...A[ka].keys(), ...B[ka].keys()]);
    const rows = [...keys].map((k) => ({ k, a: A[ka].get(k) ?? 0, b: B[ka].get(k) ?? 0 })).map((r) => ({ ...r, d: r.a - r.b }));
    rows.sort((x, y) => Math.abs(y.d) - Math.abs(x.d));
    console.log(`\n${title}: A − B per request (A, B)`);
    for (const r of rows.slice(0, top)) console.log(`${f(r.d).padStart(9)}  (${f(r.a)}, ${f(r.b)})  ${r.k.slice(0, 150)}`);
  }
} finally {
  if (keep === null) rmSync(work, { recursive: true, force: true });
}
