// Regex engine cost on adversarial 100 KB values (issue 16): compile time (the complete DFA is built at
// load), then test() time per input. The figures behind NS_PER_DFA_STEP in rules/safe-regex.ts.
//   npx tsc -p tsconfig.json && node dist/bench/regex.js
// Optional comparison with RE2 ports when they are installed next to the project (they are not
// dependencies): `npm install --no-save re2js re2-wasm` first; the script finds them if present.
import { createRequire } from 'node:module';
import { compileSafeRegex } from '../rules/safe-regex.js';

const N = 100 * 1024;
let seed = 1;
const rnd = (): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff; };
const INPUTS: Record<string, string> = {
  'abc-random': Array.from({ length: N }, () => 'abc'[Math.floor(rnd() * 3)]).join(''),
  'a*-then-c': 'a'.repeat(N - 1) + 'c',
  'union-x': ('UNION ' + 'x'.repeat(94)).repeat(N / 100),
  'union-gap': ('UNION ' + 'x'.repeat(600) + 'selec ').repeat(Math.floor(N / 612)),
};
const PATTERNS = ['.*a.{900}c', '(a|b)*a(a|b){200}c', '(?i)union.{0,500}select', '(?i)(union|select|insert|drop).{0,100}(from|into|table)', '<script[^>]{0,200}>'];

type Engine = { name: string; compile(p: string): ((s: string) => boolean) | string };
const engines: Engine[] = [{
  name: 'portcullis',
  compile: (p) => { const r = compileSafeRegex(p, { maxInputLength: N + 1 }); return r.ok ? (s) => r.re.test(s) : `refused (${r.error.slice(0, 60)}…)`; },
}];
const req = createRequire(import.meta.url);
try {
  const { RE2JS } = req('re2js') as { RE2JS: { compile(p: string, f: number): { matcher(s: string): { find(): boolean } }; CASE_INSENSITIVE: number } };
  engines.push({ name: 're2js', compile: (p) => { const ci = p.startsWith('(?i)'); const re = RE2JS.compile(ci ? p.slice(4) : p, ci ? RE2JS.CASE_INSENSITIVE : 0); return (s) => re.matcher(s).find(); } });
} catch { /* not installed */ }

const ms = (t: bigint): string => (Number(process.hrtime.bigint() - t) / 1e6).toFixed(2);
for (const p of PATTERNS) {
  for (const e of engines) {
    const t0 = process.hrtime.bigint();
    const test = e.compile(p);
    const compileMs = ms(t0);
    if (typeof test === 'string') { console.log(`${e.name.padEnd(10)} ${p.padEnd(56)} ${test} after ${compileMs} ms`); continue; }
    const row: string[] = [];
    for (const [name, input] of Object.entries(INPUTS)) {
      test(input); // warm
      const t = process.hrtime.bigint();
      test(input);
      row.push(`${name} ${ms(t)} ms`);
    }
    console.log(`${e.name.padEnd(10)} ${p.padEnd(56)} compile ${compileMs} ms | ${row.join(' | ')}`);
  }
}
