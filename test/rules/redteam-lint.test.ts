// Red team, lint family: the rule that never runs and the condition that never (or always) holds are
// the bugs a security team ships without noticing. The table lists what the linter must flag, and
// what it must not (a false W_SHADOWED would teach people to ignore it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadRulesetFromSources } from '../../rules/index.js';

function codes(body: string): { code: string; line: number }[] {
  const { diagnostics } = loadRulesetFromSources([{ name: 'l.rules', text: `version 1\n${body}\n` }]);
  return diagnostics.map((d) => ({ code: d.code, line: d.line }));
}
const has = (body: string, code: string, line?: number): boolean => codes(body).some((d) => d.code === code && (line === undefined || d.line === line));

const SHADOWED: [string, string, string][] = [
  ['a prefix under an earlier prefix', 'http.path starts_with "/admin"', 'http.path starts_with "/admin/users"'],
  ['an equality under an earlier prefix', 'http.path starts_with "/admin"', 'http.path == "/admin/login"'],
  ['a set of equalities under an earlier prefix', 'http.path starts_with "/api/"', 'http.path in {"/api/a" "/api/b"}'],
  ['a CIDR inside an earlier CIDR', 'ip.src in {10.0.0.0/8}', 'ip.src in {10.1.0.0/16}'],
  ['an address inside an earlier CIDR', 'ip.src in {10.0.0.0/8 192.0.2.0/24}', 'ip.src == 192.0.2.7'],
  ['a member of an earlier set', 'http.method in {"PUT" "DELETE" "PATCH"}', 'http.method == "DELETE"'],
  ['a subset of an earlier set', 'http.method in {"PUT" "DELETE" "PATCH"}', 'http.method in {"PUT" "PATCH"}'],
  ['a longer substring of an earlier contains', 'lower(http.user_agent) contains "bot"', 'lower(http.user_agent) contains "googlebot"'],
  ['a prefix containing an earlier contains', 'http.query contains "union"', 'http.query starts_with "x=1 union"'],
  ['a tighter integer bound', 'http.content_length > 1000', 'http.content_length >= 5000'],
  ['a narrower conjunction', 'http.path starts_with "/admin"', 'http.path starts_with "/admin/x" and http.method == "POST"'],
  ['each branch of an or', 'http.path starts_with "/a"', 'http.path == "/a/1" or http.path starts_with "/a/2"'],
  ['a named condition and the same expression inline', 'is_admin', 'http.path starts_with "/admin"'],
  ['an inline expression and a named condition', 'http.path starts_with "/adm"', 'is_admin'],
];

test('W_SHADOWED for containment, not only equal conditions', () => {
  for (const [what, first, second] of SHADOWED) {
    const body = `cond is_admin = http.path starts_with "/admin"\nrule "first" { when ${first} then deny(403) }\nrule "second" { when ${second} then deny(404) }`;
    assert.ok(has(body, 'W_SHADOWED', 4), `${what}: ${JSON.stringify(codes(body))}`);
  }
});

const NOT_SHADOWED: [string, string, string][] = [
  ['a shorter prefix after a longer one', 'http.path starts_with "/admin/users"', 'http.path starts_with "/admin"'],
  ['a different header value field', 'http.headers["a"] == "x"', 'http.headers["b"] == "x"'],
  ['a wider CIDR after a narrower', 'ip.src in {10.1.0.0/16}', 'ip.src in {10.0.0.0/8}'],
  ['a set with a member outside', 'http.method in {"PUT" "DELETE"}', 'http.method in {"PUT" "POST"}'],
  ['a substring that is not containing', 'http.query contains "union"', 'http.query contains "select"'],
  ['an or of which one branch escapes', 'http.path starts_with "/a"', 'http.path == "/a/1" or http.path == "/b"'],
  ['a looser integer bound', 'http.content_length > 5000', 'http.content_length > 1000'],
  ['a case-insensitive value after a case-sensitive one', 'http.path starts_with "/Admin"', 'lower(http.path) starts_with "/admin"'],
];

test('no W_SHADOWED when the later rule can match something the earlier does not', () => {
  for (const [what, first, second] of NOT_SHADOWED) {
    const body = `rule "first" { when ${first} then deny(403) }\nrule "second" { when ${second} then deny(404) }`;
    assert.ok(!has(body, 'W_SHADOWED'), `${what}: ${JSON.stringify(codes(body))}`);
  }
});

const ALWAYS: [string, string, 'W_ALWAYS_TRUE' | 'W_ALWAYS_FALSE'][] = [
  ['upper() against lower-case text', 'upper(http.user_agent) contains "bot"', 'W_ALWAYS_FALSE'],
  ['upper() against a lower-case set', 'upper(http.method) in {"get" "POST"}', 'W_ALWAYS_FALSE'],
  ['an hour above 23', 'time.hour > 23', 'W_ALWAYS_FALSE'],
  ['a weekday of 7', 'time.weekday >= 7', 'W_ALWAYS_FALSE'],
  ['every hour', 'time.hour <= 23', 'W_ALWAYS_TRUE'],
  ['one value equal to two literals', 'http.path == "/a" and http.path == "/b"', 'W_ALWAYS_FALSE'],
  ['an empty integer range', 'http.content_length > 10 and http.content_length < 5', 'W_ALWAYS_FALSE'],
  ['not true', 'not true', 'W_ALWAYS_FALSE'],
  ['every address', 'ip.src in {0.0.0.0/0 ::/0}', 'W_ALWAYS_TRUE'],
  ['a regex that matches anything', 'http.path matches ".*"', 'W_ALWAYS_TRUE'],
  ['a regex that matches the empty string', 'http.user_agent matches "(bot)?"', 'W_ALWAYS_TRUE'],
];

test('W_ALWAYS_TRUE / W_ALWAYS_FALSE table', () => {
  for (const [what, cond, code] of ALWAYS) {
    const body = `rule "r" { when ${cond} then deny(403) }`;
    assert.ok(has(body, code), `${what}: ${JSON.stringify(codes(body))}`);
  }
  // and not for conditions that can go either way
  for (const cond of ['time.hour > 22', 'http.headers["x"] == "a" and http.headers["x"] == "b"', 'ip.src in {0.0.0.0/0}', 'http.path matches "^/a.*"', 'http.path matches "x*$"']) {
    const c = codes(`rule "r" { when ${cond} then deny(403) }`);
    if (cond === 'http.path matches "x*$"') { assert.ok(c.every((d) => d.code !== 'W_ALWAYS_FALSE'), cond); continue; }
    assert.ok(!c.some((d) => d.code.startsWith('W_ALWAYS')), `${cond}: ${JSON.stringify(c)}`);
  }
});

test('a missing } is reported where it is missing, and the next declarations are still checked', () => {
  const text = 'version 1\nrule "a" { when http.path starts_with "/a" then deny(403)\nrule "b" { when http.pathx == "/b" then deny(403) }\ntest "t" {\n  request { path = "/a" }\n  expect deny(403)\nrule "c" { when http.methd == "GET" then deny(403) }\n';
  const { diagnostics } = loadRulesetFromSources([{ name: 'm.rules', text }]);
  const missing = diagnostics.filter((d) => /missing '\}'/.test(d.message));
  assert.deepEqual(missing.map((d) => [d.line, d.col]), [[2, 58], [6, 19]]);
  assert.ok(diagnostics.some((d) => d.code === 'E_UNKNOWN_FIELD' && d.line === 3), 'rule "b" after the missing } is checked');
  assert.ok(diagnostics.some((d) => d.code === 'E_UNKNOWN_FIELD' && d.line === 7), 'rule "c" after the unclosed test is checked');
});
