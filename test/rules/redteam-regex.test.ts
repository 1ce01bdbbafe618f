// Red team, regex family: every regex a rule file can hold has a bounded worst case. The patterns
// that cost seconds on one 100 KB header (issue 16) are refused by lint with their position and
// estimated cost; the patterns WAF teams write every day are accepted and cheap; the cap on the
// number of regexes is enforced.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadRulesetFromSources } from '../../rules/index.js';
import { runRulesCli } from '../../rules/cli.js';
import { compileSafeRegex, MAX_REGEX_PER_RULESET } from '../../rules/safe-regex.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const lint = (text: string) => loadRulesetFromSources([{ name: 'r.rules', text: `version 1\n${text}\n` }]);

test('the slow patterns are refused by lint with the pattern position and an estimated cost', () => {
  for (const p of ['.*a.{900}c', '(a|b)*a(a|b){200}c', '[ab]*a[ab]{40}c']) {
    const rule = `rule "r" { when http.headers["x"] matches "${p}" then deny(403) }`;
    const { ruleset, diagnostics } = lint(rule);
    assert.equal(ruleset, null, p);
    const d = diagnostics.find((x) => x.code === 'E_REGEX_COST');
    assert.ok(d, `${p}: ${JSON.stringify(diagnostics)}`);
    assert.equal(d.line, 2);
    assert.equal(d.col, rule.indexOf('"' + p) + 1, 'points at the pattern');
    assert.match(d.message, /worst case ≈ \d+(\.\d)? (ms|µs) on a 64 KiB value/);
  }
});

// Input shapes that drive each pattern's automaton hard.
function adversarial(): string[] {
  let s = 7;
  const rnd = (): number => { s = (s * 1103515245 + 12345) & 0x7fffffff; return s / 0x7fffffff; };
  const n = 100 * 1024;
  return [
    Array.from({ length: n }, () => 'abc'[Math.floor(rnd() * 3)]).join(''),
    ('UNION ' + 'x'.repeat(94)).repeat(n / 100),
    ('union ' + 'y'.repeat(450) + 'selec ').repeat(Math.floor(n / 462)),
    Array.from({ length: n }, () => 'unioselct \n<>@.'[Math.floor(rnd() * 15)]).join(''),
    'a'.repeat(n),
  ];
}

test('everyday WAF patterns are accepted, have a complete DFA, and answer like RegExp on adversarial input', () => {
  const everyday: [string, string][] = [
    ['(?i)union.{0,500}select', 'union.{0,500}select'],
    ['(?i)(union|select|insert|drop).{0,100}(from|into|table)', '(union|select|insert|drop).{0,100}(from|into|table)'],
    ['<script[^>]{0,200}>', '<script[^>]{0,200}>'],
    ['[a-z]{1,100}@[a-z]{1,100}\\.com', '[a-z]{1,100}@[a-z]{1,100}\\.com'],
    ['\\d{13,16}', '\\d{13,16}'],
    ['(?i)\\b(sqlmap|nikto|nmap)\\b', '\\b(sqlmap|nikto|nmap)\\b'],
  ];
  const inputs = adversarial();
  for (const [p, js] of everyday) {
    const r = compileSafeRegex(p, { maxInputLength: 1 << 20 });
    assert.ok(r.ok, `${p}: ${!r.ok ? r.error : ''}`);
    assert.ok(r.re.cost.bounded, p);
    const ref = new RegExp(js, p.startsWith('(?i)') ? 'i' : '');
    for (const inp of inputs) assert.equal(r.re.test(inp), ref.test(inp), `${p} on ${inp.slice(0, 20)}…`);
    assert.equal(r.re.test('x UNION ALL ' + 'z'.repeat(300) + ' SELECT 1'), ref.test('x UNION ALL ' + 'z'.repeat(300) + ' SELECT 1'));
  }
  // the matches that matter
  const u = compileSafeRegex('(?i)union.{0,500}select');
  assert.ok(u.ok);
  assert.equal(u.re.test('1 UNION/**/ALL SELECT password'), true);
  assert.equal(u.re.test('union ' + 'x'.repeat(501) + 'select'), false, 'beyond the gap');
  assert.equal(u.re.test('union ' + 'x'.repeat(494) + 'select'), true, 'inside the gap');
  assert.equal(u.re.test('union\nselect'), false, '. stops at a line break');
});

test('property: bounded-repetition pruning answers like RegExp (x{m,n} gaps after choices)', () => {
  let s = 99;
  const rnd = (k: number): number => { s = (s * 1103515245 + 12345) & 0x7fffffff; return s % k; };
  const atoms = ['a', 'b', '.', '[ab]', '(a|bb)', 'c'];
  for (let t = 0; t < 300; t++) {
    const m = rnd(3), n = m + 1 + rnd(6);
    const p = `${atoms[rnd(atoms.length)]}${atoms[rnd(atoms.length)]}{${m},${n}}${atoms[rnd(atoms.length)]}${rnd(2) ? '$' : ''}`;
    const r = compileSafeRegex(p);
    assert.ok(r.ok, p);
    const ref = new RegExp(p);
    for (let k = 0; k < 30; k++) {
      let inp = '';
      const len = rnd(14);
      for (let i = 0; i < len; i++) inp += 'abc\n'[rnd(4)];
      assert.equal(r.re.test(inp), ref.test(inp), `${p} on ${JSON.stringify(inp)}`);
    }
  }
});

test('the cap of 1,000 regexes per ruleset is enforced (E_LIMIT at the 1,001st)', () => {
  const rules = (n: number): string => Array.from({ length: n }, (_, i) => `rule "r${i}" { when http.path matches "^/p${i}[0-9]+$" then deny(403) }`).join('\n');
  const ok = lint(rules(MAX_REGEX_PER_RULESET));
  assert.ok(ok.ruleset, JSON.stringify(ok.diagnostics.slice(0, 3)));
  const over = lint(rules(MAX_REGEX_PER_RULESET + 1));
  assert.equal(over.ruleset, null);
  const d = over.diagnostics.filter((x) => x.code === 'E_LIMIT');
  assert.equal(d.length, 1);
  assert.equal(d[0].line, MAX_REGEX_PER_RULESET + 2);
});

test('rules lint --regex-cost states every regex\'s worst case', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-regex-'));
  const file = join(dir, 'r.rules');
  writeFileSync(file, 'version 1\nrule "sqli" { when lower(http.query) matches "(?i)union.{0,500}select" then deny(403) }\n');
  const out: string[] = [];
  const code = await runRulesCli(['lint', '--regex-cost', file], { out: (s: string) => out.push(s), err: (s: string) => out.push(s) });
  assert.equal(code, 0, out.join('\n'));
  const note = out.find((l) => l.includes('note[REGEX_COST]'));
  assert.ok(note, out.join('\n'));
  assert.match(note, /r\.rules:2:\d+: .*worst case ≈ \d+ µs per 64 KiB value \(complete DFA: \d+ states/);
});
