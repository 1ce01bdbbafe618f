// Evaluation shortcuts must not change results: several `lower(x) contains_any {…}` conditions on the
// same x share one case-folded pass (rules/multi-literal.ts FoldedLiteralGroup), and each rule still
// sees exactly what `lower(x)` and a substring search would give — ASCII, non-ASCII (Kelvin sign,
// dotted I), missing header, and more sets than one group holds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { loadRulesetFromSources, MemoryCounterStore, type RuleInput, type Ruleset } from '../../rules/index.js';

function load(body: string): Ruleset {
  const r = loadRulesetFromSources([{ name: 'p.rules', text: `version 1\n${body}\n` }]);
  assert.ok(r.ruleset, r.diagnostics.map((d) => `${d.code} ${d.message}`).join('\n'));
  return r.ruleset;
}
function req(ua: string | null): RuleInput {
  return { ip: '198.51.100.7', method: 'GET', host: 'shop.example', path: '/', query: '', headers: ua === null ? [] : ['user-agent', ua], sni: null, listener: 'main', country: null, asn: null, contentLength: -1 };
}
const env = () => ({ now: Date.parse('2024-11-29T12:00:00Z'), counters: new MemoryCounterStore() });

const SETS: string[][] = [['sqlmap', 'nikto', 'nmap'], ['bot', 'crawler', 'spider'], ['kelvin', 'ikea'], ['curl/', 'wget']];
const policy = load(SETS.map((s, i) => `rule "r${i}" { when lower(http.user_agent) contains_any {${s.map((n) => `"${n}"`).join(' ')}} then log("r${i}") }`).join('\n'));

function expected(ua: string | null): string[] {
  if (ua === null) return [];
  const l = ua.toLowerCase();
  return SETS.flatMap((s, i) => (s.some((n) => l.includes(n)) ? [`r${i}`] : []));
}
const logsOf = (rs: Ruleset, ua: string | null) => rs.evaluate(req(ua), env()).logs.map((m) => m.message);

test('each rule of a shared scan gets its own answer', () => {
  for (const ua of [null, '', 'Mozilla/5.0', 'Googlebot/2.1', 'sqlmap/1.7 (bot)', 'NIKTO', 'CuRl/8 WGET', 'x'.repeat(5000) + 'Spider',
    '\u212Aelvin', 'ıkea', 'İKEA', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36']) {
    assert.deepEqual(logsOf(policy, ua), expected(ua), JSON.stringify(ua));
  }
});

test('shared scan agrees with lower() + includes on random input', () => {
  const alphabet = fc.constantFrom(...'sqlmapniktobotcrawlerspiderkelvinikeaurlwget/SQLMAPBOTİıK\u212A é'.split(''));
  fc.assert(fc.property(fc.option(fc.string({ unit: alphabet, maxLength: 40 })), (ua) => {
    assert.deepEqual(logsOf(policy, ua), expected(ua));
  }), { numRuns: 2000 });
});

test('more sets than one group holds (30 per pass) still answer each rule', () => {
  const words = Array.from({ length: 70 }, (_, i) => `w${i}z`);
  const rs = load(words.map((w, i) => `rule "r${i}" { when lower(http.user_agent) contains_any {"${w}" "q${i}q"} then log("${w}") }`).join('\n'));
  for (const pick of [[0], [29, 30], [31, 59, 60, 69], []]) {
    const ua = pick.map((i) => words[i].toUpperCase()).join(' ');
    assert.deepEqual(logsOf(rs, ua), pick.map((i) => words[i]));
  }
});

test('the last value scanned is answered again only for the same text', () => {
  // The group keeps the last input and its mask: equal text (another string object) reuses it,
  // any other text is scanned.
  const seq = ['Googlebot/2.1', ['Google', 'bot/2.1'].join(''), 'Mozilla/5.0', 'sqlmap', 'sqlmap', 'Mozilla/5.0', null, 'NIKTO spider', 'nikto SPIDER'];
  for (const ua of seq) assert.deepEqual(logsOf(policy, ua), expected(ua), JSON.stringify(ua));
});
