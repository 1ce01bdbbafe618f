// What a team moving from ModSecurity or Cloudflare rules expects: transformations that compose,
// collections with any/all, skip of named later rules, http.version.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadRulesetFromSources, MemoryCounterStore, runRuleTests, type RuleInput } from '../../rules/index.js';
import { compressWhitespace, fold, normalizePathValue, removeNulls, urlDecode } from '../../rules/transforms.js';

const RULES = `version 1
rule "sqli-args" { when fold(compress_whitespace(url_decode(http.query))) contains "union select" then deny(403) }
rule "traversal" { when normalize_path(url_decode(http.raw_path)) starts_with "/etc" then deny(403) }
rule "null-bytes" { when remove_nulls(url_decode(http.query)) contains "<script" then deny(403) }
rule "any-header" { when any(http.headers) contains "\${jndi:" then deny(403) }
rule "odd-header-name" { when http.header_names matches "[^a-z0-9-]" then deny(400) }
rule "numeric-args" { when http.path == "/api/ids" and not (all(http.args) matches "^[0-9]+$") then deny(422) }
rule "debug-arg" { when http.arg_names == "debug" then deny(404) }
rule "partner" { when http.headers["x-partner"] == "acme" then skip("geo-block", "bot-block"), log("partner") }
rule "geo-block" { when http.path starts_with "/shop" then deny(451) }
rule "bot-block" { when lower(http.user_agent) contains "bot" then deny(403) }
rule "old-http" { when http.version == "1.0" then deny(426) }

test "skip turns off the named rules for this request only" {
  request { path = "/shop/x"  header "x-partner" = "acme" }
  expect allow
  request { path = "/shop/x" }
  expect deny(451) by "geo-block"
}
test "version" {
  request { version = "1.0" }
  expect deny(426) by "old-http"
}
`;

function load() {
  const { ruleset, diagnostics } = loadRulesetFromSources([{ name: 'f.rules', text: RULES }]);
  assert.ok(ruleset, JSON.stringify(diagnostics.filter((d) => d.severity === 'error')));
  return ruleset;
}
const req = (over: Partial<RuleInput>): RuleInput => ({ ip: '192.0.2.1', method: 'GET', host: 'h', path: '/', query: '', headers: [], sni: null, listener: 'main', country: null, asn: null, contentLength: -1, ...over });

test('transformations', () => {
  assert.equal(urlDecode('a%20b+c%zz%E2%82%AC'), 'a b c%zz€');
  assert.equal(urlDecode('%C0%AE'), '%C0%AE', 'invalid UTF-8 stays encoded');
  assert.equal(removeNulls('a\0b\0'), 'ab');
  assert.equal(compressWhitespace('union \t\n  select'), 'union select');
  assert.equal(normalizePathValue('/x/..;/y/..%2F..\\etc/passwd'), '/etc/passwd');
  assert.equal(fold('ＵＮＩＯＮ ＳＥＬＥＣＴ'), 'union select');
});

test('transformations compose in rules; collections with any and all; names', () => {
  const rs = load();
  const env = { now: Date.now(), counters: new MemoryCounterStore() };
  const id = (r: Partial<RuleInput>) => rs.evaluate(req(r), env).ruleId;
  assert.equal(id({ query: 'q=1%20UNION%09%0A++SELECT%20pw' }), 'sqli-args');
  assert.equal(id({ query: 'q=%EF%BC%B5NION%20SELECT' }), 'sqli-args', 'fullwidth U folds');
  assert.equal(id({ path: '/static/..%252F..%252Fetc/passwd' }), 'traversal', 'url_decode once, then normalize_path reads %2F as / (the most permissive origin)');
  assert.equal(id({ path: '/static/%252e%252e/x' }), null);
  assert.equal(id({ path: '/a/%2e%2e/etc/passwd' }), 'traversal');
  assert.equal(id({ query: 'x=%3Cscr%00ipt%3E' }), 'null-bytes');
  assert.equal(id({ headers: ['user-agent', 'curl', 'x-a', 'ok', 'x-b', '${jndi:ldap://x}'] }), 'any-header');
  assert.equal(id({ headers: ['x_evil', 'v'] }), 'odd-header-name');
  assert.equal(id({ path: '/api/ids', query: 'a=1&b=22' }), null);
  assert.equal(id({ path: '/api/ids', query: 'a=1&b=2x' }), 'numeric-args');
  assert.equal(id({ path: '/api/ids', query: '' }), 'numeric-args', 'all() over no value is false, so not(all…) holds');
  assert.equal(id({ query: 'a=1&debug' }), 'debug-arg');
});

test('skip: later named rules are off for this request; test blocks and http.version', () => {
  const rs = load();
  const env = { now: Date.now(), counters: new MemoryCounterStore() };
  const d = rs.evaluate(req({ path: '/shop/a', headers: ['x-partner', 'acme', 'user-agent', 'somebot'] }), env);
  assert.equal(d.action, null);
  assert.deepEqual(d.logs.map((l) => l.message), ['partner']);
  assert.equal(rs.evaluate(req({ path: '/shop/a', headers: ['user-agent', 'somebot'] }), env).ruleId, 'geo-block', 'the flags do not leak into the next request');
  const r = runRuleTests(rs);
  assert.equal(r.failed, 0, JSON.stringify(r.results.map((x) => x.failures)));
});

test('skip() names later rules that exist; all()/any() take collections', () => {
  const errs = (body: string) => loadRulesetFromSources([{ name: 'e.rules', text: `version 1\n${body}\n` }]).diagnostics.filter((d) => d.severity === 'error').map((d) => d.code);
  assert.deepEqual(errs('rule "a" { when true then deny(403) }\nrule "b" { then skip("a") }'), ['E_ACTION_ARGS']);
  assert.deepEqual(errs('rule "b" { then skip("nope") }'), ['E_UNKNOWN_RULE']);
  assert.deepEqual(errs('rule "b" { when all(http.path) == "/" then deny(403) }'), ['E_TYPE']);
});
