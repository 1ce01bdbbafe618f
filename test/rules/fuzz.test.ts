// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// Hardening: random and mutated rule files produce diagnostics, never an exception.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { loadRulesetFromSources, parseRuleFile } from '../../rules/index.js';

const EXAMPLE = readFileSync(fileURLToPath(new URL('../../../examples/rules/shop.rules', import.meta.url)), 'utf8');
const CONFIG_DIR = fileURLToPath(new URL('../../../examples/rules/', import.meta.url));
const TOKENS = ['version', '1', 'rule', '"id"', '{', '}', '(', ')', '[', ']', 'when', 'then', 'and', 'or', 'not', 'http.path', 'ip.src',
  '==', '!=', 'in', '$list', 'starts_with', 'matches', '"(a+)+$"', 'deny(403)', 'tarpit(1s)', '10.0.0.0/8', '::1', 'counter', 'list',
  'cond', 'test', 'request', 'expect', 'repeat', '5', 'within', '10s', 'lower(', 'rate(', ',', '=', '"', '#', '\n', 'exists', '{"a" "b"}'];

function check(text: string): void {
  const r = loadRulesetFromSources([{ name: 'fuzz.rules', text, configDir: CONFIG_DIR }]);
  assert.ok(Array.isArray(r.diagnostics));
  for (const d of r.diagnostics) {
    assert.equal(typeof d.code, 'string');
    assert.ok(d.line >= 1 && d.col >= 1, `${d.code} at ${d.line}:${d.col}`);
    assert.notEqual(d.code, 'E_INTERNAL', d.message);
  }
  if (r.ruleset === null) assert.ok(r.diagnostics.some((d) => d.severity === 'error'));
}

test('random strings never throw', () => {
  fc.assert(fc.property(fc.string({ maxLength: 400 }), (s) => { check(s); check(`version 1\n${s}`); }), { numRuns: 300 });
});

test('random token soups never throw', () => {
  fc.assert(fc.property(fc.array(fc.constantFrom(...TOKENS), { maxLength: 120 }), (toks) => check(toks.join(' '))), { numRuns: 400 });
});

test('mutations of the example policy never throw', () => {
  const mutation = fc.record({
    at: fc.nat({ max: EXAMPLE.length }),
    del: fc.nat({ max: 40 }),
    ins: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom(...TOKENS)),
  });
  fc.assert(fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (ms) => {
    let t = EXAMPLE;
    for (const m of ms) { const at = Math.min(m.at, t.length); t = t.slice(0, at) + m.ins + t.slice(at + m.del); }
    check(t);
  }), { numRuns: 150 });
});

test('pathological inputs', () => {
  for (const s of ['(', '"', '\\', '{'.repeat(10000), 'rule "' + 'a'.repeat(100000), 'not '.repeat(20000), '\u0000\uffff\ud800', '$', '1.2.3.4.5.6/99', '::::::/200']) {
    assert.doesNotThrow(() => parseRuleFile('p.rules', s));
    check(s);
    check(`version 1\nrule "r" { when ${s} then deny(403) }`);
  }
});
