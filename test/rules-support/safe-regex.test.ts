import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  compileSafeRegex,
  MAX_REGEX_INPUT_LENGTH,
  MAX_REGEX_PATTERN_LENGTH,
} from '../../rules/safe-regex.js';

function re(p: string, ci = false) {
  const r = compileSafeRegex(p, { caseInsensitive: ci });
  if (!r.ok) throw new Error(`${p}: ${r.error} at ${r.offset}`);
  return r.re;
}

const CF2019 = String.raw`(?:(?:\"|'|\]|\}|\\|\d|(?:nan|infinity|true|false|null|undefined|symbol|math)|\`|\-|\+)+[)]*;?((?:\s|-|~|!|{}|\|\||\+)*.*(?:.*=.*)))`;

test('Cloudflare 2019 pattern runs in linear time on 100 KB', () => {
  const r = compileSafeRegex(CF2019, { maxInputLength: 1 << 20 });
  assert.ok(r.ok);
  const input = '"' + 'x'.repeat(100 * 1024);
  const t0 = process.hrtime.bigint();
  assert.equal(r.re.test(input), false);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  // Generous bound for loaded CI machines; the real figure (~1 ms) is in loadtest/lists-bench.
  assert.ok(ms < 500, `took ${ms} ms`);
  // It still matches what it should.
  assert.equal(r.re.test('"x=1'), true);
  assert.equal(r.re.test('true;a=b'), true);
  assert.equal(r.re.test('plain text'), false);
});

test('pathological backtracking patterns stay fast', () => {
  for (const [p, input] of [
    ['(a+)+$', 'a'.repeat(50000) + '!'],
    ['(x|x)*y', 'x'.repeat(50000)],
    ['^(\\s|\\u200c)+$', ' '.repeat(50000) + 'x'],
    ['(a|aa)*c', 'a'.repeat(50000)],
  ] as const) {
    const r = re(p);
    const t0 = process.hrtime.bigint();
    assert.equal(r.test(input), false, p);
    assert.ok(Number(process.hrtime.bigint() - t0) / 1e6 < 500, p);
  }
});

test('answers agree with JavaScript RegExp on a table of cases', () => {
  const cases: [string, string[]][] = [
    ['abc', ['abc', 'xabcx', 'ab', '']],
    ['^abc$', ['abc', 'abcd', 'xabc']],
    ['^/admin(/|$)', ['/admin', '/admin/x', '/administrator', '/x/admin']],
    ['a.c', ['abc', 'a\nc', 'ac']],
    ['[a-c]+x', ['bbx', 'dx', 'x']],
    ['[^a-c]', ['abc', 'abcd']],
    ['\\d{3}-\\d{4}', ['555-1234', '55-1234']],
    ['\\bselect\\b', ['select * from', 'selected', 'a select b', 'xselect']],
    ['\\Bend', ['weekend', 'end']],
    ['(?:sqlmap|nikto|masscan)', ['Mozilla/5.0 sqlmap/1.5', 'Mozilla/5.0 Chrome']],
    ['colou?r', ['color', 'colour', 'colr']],
    ['a{2,}', ['a', 'aa', 'aaa']],
    ['^a{2,4}$', ['a', 'aa', 'aaaa', 'aaaaa']],
    ['^(ab){0,2}$', ['', 'ab', 'abab', 'ababab']],
    ['x{', ['x{', 'x']],
    ['[\\]\\\\]', [']', '\\', 'a']],
    ['\\x41\\u0042', ['AB', 'ab']],
    ['[]', ['', 'a']],
    ['[^]', ['', '\n']],
    ['a|', ['', 'zzz']],
    ['\\s+', [' ', '\u00a0', 'x']],
    ['^$', ['', 'a']],
    ['é', ['café', 'cafe']],
    ['a(?<name>b)c', ['abc', 'ac']],
  ];
  for (const [p, inputs] of cases) {
    const ours = re(p);
    const js = new RegExp(p);
    for (const s of inputs) assert.equal(ours.test(s), js.test(s), `/${p}/ on ${JSON.stringify(s)}`);
  }
});

test('case-insensitive option and (?i) prefix', () => {
  assert.equal(re('SeLeCt', true).test('xx select yy'), true);
  assert.equal(re('(?i)union\\s+select').test('UNION   SELECT'), true);
  assert.equal(re('[a-z]+', true).test('ABC'), true);
  assert.equal(re('union').test('UNION'), false);
  assert.equal(re('(?i)x').source, '(?i)x');
});

test('random patterns over a small alphabet agree with RegExp (property)', () => {
  const atom = fc.constantFrom('a', 'b', '.', '[ab]', '[^a]', '\\d', '\\w', '\\b', '^', '$', '(?:a|b)', '(a|)', 'c');
  const quant = fc.constantFrom('', '', '*', '+', '?', '{1,2}', '{2}', '*?');
  const piece = fc.tuple(atom, quant).map(([a, q]) => (a === '^' || a === '$' || a === '\\b' ? a : a + q));
  const pattern = fc.array(piece, { minLength: 1, maxLength: 6 }).map((xs) => xs.join(''));
  const input = fc.array(fc.constantFrom('a', 'b', 'c', '1', ' ', '-'), { maxLength: 12 }).map((xs) => xs.join(''));
  fc.assert(
    fc.property(pattern, fc.array(input, { minLength: 1, maxLength: 5 }), (p, inputs) => {
      const r = compileSafeRegex(p);
      assert.ok(r.ok, `${p}: ${!r.ok && r.error}`);
      const js = new RegExp(p);
      for (const s of inputs) assert.equal(r.re.test(s), js.test(s), `/${p}/ on ${JSON.stringify(s)}`);
    }),
    { numRuns: 400 },
  );
});

test('unsafe or unsupported patterns are rejected with a message and offset', () => {
  const bad: [string, RegExp, number | undefined][] = [
    ['(a)\\1', /backreference/, 3],
    ['(?<n>a)\\k<n>', /backreference/, 7],
    ['foo(?=bar)', /lookahead/, 3],
    ['(?<!x)y', /lookbehind/, 0],
    ['a**', /nothing to repeat/, 2],
    ['*a', /nothing to repeat/, 0],
    ['a{1001}', /repetition count/, 1],
    ['a{3,2}', /out of order/, 1],
    ['(ab', /missing '\)'/, 0],
    ['ab)', /unmatched/, 2],
    ['[ab', /missing '\]'/, 0],
    ['[z-a]', /out of order/, 1],
    ['\\p{L}', /property/, 0],
    ['\\q', /unknown escape/, 0],
    ['abc\\', /lone backslash/, 3],
    ['a(?i)b', /only allowed at the very start/, 1],
    ['((a{100}){100}){100}', /too large/, undefined],
  ];
  for (const [p, msg, offset] of bad) {
    const r = compileSafeRegex(p);
    assert.equal(r.ok, false, p);
    if (!r.ok) {
      assert.match(r.error, msg, p);
      assert.equal(r.offset, offset, `${p} offset`);
    }
  }
  const long = compileSafeRegex('a'.repeat(MAX_REGEX_PATTERN_LENGTH + 1));
  assert.equal(long.ok, false);
  assert.ok(!long.ok && /longer than 1024/.test(long.error));
  assert.equal(compileSafeRegex('a'.repeat(MAX_REGEX_PATTERN_LENGTH)).ok, true);
});

test('input beyond the cap is examined only up to the cap, and $ does not match at the cut', () => {
  assert.equal(MAX_REGEX_INPUT_LENGTH, 65536);
  const padded = 'x'.repeat(MAX_REGEX_INPUT_LENGTH);
  assert.equal(re('attack').test(padded + 'attack'), false, 'text after the cap is not seen');
  assert.equal(re('attack').test('attack' + padded), true);
  assert.equal(re('x$').test(padded + 'y'), false, '$ does not match at the cut');
  assert.equal(re('x$').test(padded), true, 'input exactly at the cap is whole');
});

test('a DFA cache flush keeps answers right', () => {
  // Many distinct states: (a|b)*a(a|b){8} needs 2^9 DFA states; with 300+ classes the cache is small.
  const p = '[\\u0100-\\u01ff](a|b)*a(a|b){8}';
  const ours = re(p);
  const js = new RegExp(p);
  let x = 7;
  for (let i = 0; i < 200; i++) {
    let s = '\u0150';
    for (let j = 0; j < 40; j++) { x = (x * 1103515245 + 12345) >>> 0; s += (x >>> 16) & 1 ? 'a' : 'b'; }
    assert.equal(ours.test(s), js.test(s), s);
  }
});
