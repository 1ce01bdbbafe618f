// Issue 16, second pass: `http.headers[*]` and any/all over names, look-alike folding, the W_SHADOWED
// lint on large files (bounded comparisons), the ruleset-wide regex build budget, and the decision
// cache behind evaluate() (decisions stay right when modes change and counters move).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDiagnostic, loadRulesetFromSources, MemoryCounterStore, type RuleInput } from '../../rules/index.js';
import { fold } from '../../rules/transforms.js';

const req = (over: Partial<RuleInput>): RuleInput => ({ ip: '192.0.2.1', method: 'GET', host: 'h', path: '/', query: '', headers: [], sni: null, listener: 'main', country: null, asn: null, contentLength: -1, ...over });
const env = () => ({ now: Date.UTC(2026, 0, 5, 12), counters: new MemoryCounterStore() });

function load(text: string) {
  const r = loadRulesetFromSources([{ name: 's.rules', text: `version 1\n${text}\n` }]);
  assert.ok(r.ruleset, r.diagnostics.map((d) => formatDiagnostic(d)).join('\n'));
  return r.ruleset;
}

test('http.headers[*], http.args[*], http.cookies[*]: every value; any/all over header, argument and cookie names', () => {
  const rs = load(`
rule "jndi" { when any(http.headers[*]) contains "\${jndi:" then deny(403) }
rule "arg-values" { when http.args[*] == "DROP TABLE" then deny(400) }
rule "cookie-values" { when http.cookies[*] contains "<script" then deny(400) }
rule "names-clean" { when http.path == "/strict" and not all(http.header_names) matches "^[a-z0-9-]+$" then deny(431) }
rule "debug-arg" { when any(http.arg_names) == "debug" then deny(404) }
rule "all-cookie-names" { when http.path == "/c" and all(http.cookie_names) in {"session" "cart"} then deny(402) }
`);
  const e = env();
  const id = (r: Partial<RuleInput>) => rs.evaluate(req(r), e).ruleId;
  assert.equal(id({ headers: ['accept', 'text/html', 'x-anything', 'a ${jndi:ldap://x/a}'] }), 'jndi', 'a header the rule never names');
  assert.equal(id({ headers: ['accept', 'text/html'] }), null);
  assert.equal(id({ query: 'a=1&b=DROP+TABLE' }), 'arg-values');
  assert.equal(id({ headers: ['cookie', 'a=1; b=x<script>'] }), 'cookie-values');
  assert.equal(id({ path: '/strict', headers: ['accept', 'x', 'x_evil', 'y'] }), 'names-clean');
  assert.equal(id({ path: '/strict', headers: ['accept', 'x', 'x-ok', 'y'] }), null, 'every name matches: all() holds, not() is false');
  assert.equal(id({ query: 'x=1&debug' }), 'debug-arg');
  assert.equal(id({ path: '/c', headers: ['cookie', 'session=1; cart=2'] }), 'all-cookie-names');
  assert.equal(id({ path: '/c', headers: ['cookie', 'session=1; other=2'] }), null, 'one cookie name outside the set');
  assert.equal(id({ path: '/c' }), null, 'all() over no cookie at all is false');
});

test('[*] on a field that is not a collection is E_TYPE at the star', () => {
  const r = loadRulesetFromSources([{ name: 'x.rules', text: 'version 1\nrule "bad" { when http.path[*] == "/" then deny(403) }\n' }]);
  const d = r.diagnostics.find((x) => x.code === 'E_TYPE');
  assert.ok(d, JSON.stringify(r.diagnostics));
  assert.equal(`${d.line}:${d.col}`, '2:29');
  assert.match(d.message, /not a collection/);
  assert.equal(r.ruleset, null);
});

test('fold(): look-alike letters become the ASCII letter they imitate; invisible characters go', () => {
  assert.equal(fold('ѕеlеct'), 'select', 'Cyrillic ѕ and е');
  assert.equal(fold('UΝΙΟΝ'), 'union', 'Greek capitals');
  assert.equal(fold('рауpаl'), 'paypal', 'Cyrillic р а у');
  assert.equal(fold('sel\u200bect'), 'select', 'zero-width space');
  assert.equal(fold('ＳＥＬＥＣＴ'), 'select', 'fullwidth (NFKC)');
  assert.equal(fold('café'), 'café', 'letters that are not look-alikes stay');
  const rs = load('rule "sqli" { when fold(url_decode(http.query)) contains "union select" then deny(403) }');
  const e = env();
  // "union ѕеlеct" with Cyrillic ѕ and е, percent-encoded as a browser sends it
  assert.equal(rs.evaluate(req({ query: 'q=union%20%D1%95%D0%B5l%D0%B5ct' }), e).ruleId, 'sqli');
  assert.equal(rs.evaluate(req({ query: 'q=uni%E2%80%8Bon%20select' }), e).ruleId, 'sqli', 'zero-width joiner inside the keyword');
  assert.equal(rs.evaluate(req({ query: 'q=reunion%20selection' }), e).ruleId, 'sqli', 'plain ASCII still matches as before');
  assert.equal(rs.evaluate(req({ query: 'q=hello' }), e).ruleId, null);
});

/** A realistic 1,000-rule file (the rule benchmark's mix: prefixes, hosts, headers, user agents, CIDRs…). */
function bigFile(n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    switch (i % 10) {
      case 0: out.push(`rule "r${i}" { when http.path starts_with "/promo/${i}/" then deny(403) }`); break;
      case 1: out.push(`rule "r${i}" { when http.host == "tenant${i}.shop.example" and http.method == "POST" then deny(403) }`); break;
      case 2: out.push(`rule "r${i}" { when http.headers["x-client-id"] == "client-${i}" then deny(403) }`); break;
      case 3: out.push(`rule "r${i}" { when lower(http.user_agent) contains "badbot-${i}-" then deny(403) }`); break;
      case 4: out.push(`rule "r${i}" { when ip.src in {10.${i >> 8}.${i % 256}.0/24 172.16.${i >> 8}.${i % 256}/32} then deny(403) }`); break;
      case 5: out.push(`rule "r${i}" { when http.path == "/legacy/${i}.html" then deny(410) }`); break;
      case 6: out.push(`rule "r${i}" { when http.args["campaign"] == "c${i}" and http.path starts_with "/landing/${i}" then deny(403) }`); break;
      case 7: out.push(`rule "r${i}" { when http.content_length > ${1_000_000 - i} and http.method == "PUT" then deny(413) }`); break;
      case 8: out.push(`rule "r${i}" { when http.query contains "token${i}=" then deny(403) }`); break;
      default: out.push(`rule "r${i}" { when http.path ends_with ".bak${i}" or http.path contains "/.git${i}/" then deny(404) }`); break;
    }
  }
  return out.join('\n');
}

test('W_SHADOWED on a 1,000-rule file: a bounded number of comparisons, and the shadowed rules are still found', () => {
  const n = 1000;
  // Three rules at the end that earlier ones shadow (by prefix, by CIDR, by substring), one that none does.
  const text = `version 1\n${bigFile(n)}
rule "late-promo" { when http.path == "/promo/500/sale" then deny(403) }
rule "late-cidr" { when ip.src == 10.0.4.9 then deny(403) }
rule "late-ua" { when lower(http.user_agent) contains "xbadbot-13-x" then deny(403) }
rule "late-free" { when http.path == "/fresh" then deny(403) }
`;
  const r = loadRulesetFromSources([{ name: 'big.rules', text }]);
  assert.ok(r.ruleset, r.diagnostics.filter((d) => d.severity === 'error').map((d) => formatDiagnostic(d)).join('\n'));
  const shadowed = r.diagnostics.filter((d) => d.code === 'W_SHADOWED');
  assert.deepEqual(shadowed.map((d) => d.line), [n + 2, n + 3, n + 4], shadowed.map((d) => d.message).join('\n'));
  assert.match(shadowed[0].message, /rule "r500" before it/);
  assert.match(shadowed[1].message, /rule "r4" before it/);
  assert.match(shadowed[2].message, /rule "r13" before it/);
  // Pairwise, the lint would compare ~500,000 pairs; indexed it compares a few per rule.
  const checks = r.program!.shadowChecks;
  assert.ok(checks <= 3 * n, `${checks} comparisons for ${n} rules`);
});

test('W_SHADOWED: many rules on one field compare only with the rules they could fall under', () => {
  const n = 1000;
  const lines = Array.from({ length: n }, (_, i) => `rule "p${i}" { when http.path starts_with "/a/${i}/" then deny(403) }`);
  const r = loadRulesetFromSources([{ name: 'p.rules', text: `version 1\n${lines.join('\n')}\nrule "last" { when http.path starts_with "/a/77/x" then deny(403) }\n` }]);
  assert.deepEqual(r.diagnostics.filter((d) => d.code === 'W_SHADOWED').map((d) => d.line), [n + 2]);
  assert.ok(r.program!.shadowChecks <= n, `${r.program!.shadowChecks} comparisons`);
});

test('regex build time is capped for the whole ruleset: E_REGEX_COST at the regex that passes the budget', () => {
  // Each of these is accepted alone (a bounded gap after a literal, the WAF pattern of every day);
  // together they would spend more than the ruleset's load-time budget.
  const rules = Array.from({ length: 120 }, (_, i) => `rule "w${i}" { when http.query matches "(?i)union${i}.{0,500}select" then deny(403) }`);
  const r = loadRulesetFromSources([{ name: 'waf.rules', text: `version 1\n${rules.join('\n')}\n` }]);
  const cost = r.diagnostics.filter((d) => d.code === 'E_REGEX_COST');
  assert.ok(cost.length > 0 && cost.length < 120, `${cost.length} refused`);
  const first = cost[0];
  assert.equal(first.file, 'waf.rules');
  assert.ok(first.line > 2, 'the first regexes load');
  assert.equal(first.col, rules[first.line - 2].indexOf('"(?i)') + 1);
  assert.match(first.message, /load-time budget/);
  assert.equal(r.ruleset, null);
  // The same pattern repeated costs its build once.
  const same = Array.from({ length: 200 }, (_, i) => `rule "s${i}" { when http.query matches "(?i)union.{0,500}select" then deny(403) }`);
  const ok = loadRulesetFromSources([{ name: 'same.rules', text: `version 1\n${same.join('\n')}\n` }]);
  assert.equal(ok.diagnostics.filter((d) => d.code === 'E_REGEX_COST').length, 0);
});

test('a decision reused for the same matches stays right: mode changes, skip, counters', () => {
  const rs = load(`
counter per_ip { key = ip.src  window = 10s }
rule "headers" { then set_response_header("x-frame-options", "DENY") }
rule "trial" { when http.path starts_with "/wp-" then deny(404) }
rule "limit" { when rate(per_ip) > 3 then rate_limit(10s) }
`);
  const e = env();
  const a = rs.evaluate(req({ path: '/' }), e);
  const b = rs.evaluate(req({ path: '/x' }), e);
  assert.deepEqual(b.responseHeaders, [{ name: 'x-frame-options', value: 'DENY' }]);
  assert.equal(a, b, 'same rules matched: one decision object');
  assert.ok(Object.isFrozen(b.responseHeaders), 'shared decisions are read-only');
  assert.equal(rs.evaluate(req({ path: '/wp-login.php', ip: '192.0.2.2' }), e).ruleId, 'trial');
  rs.setMode('trial', 'log_only');
  const lo = rs.evaluate(req({ path: '/wp-login.php', ip: '192.0.2.3' }), e);
  assert.equal(lo.action, null, 'log_only after the mode change');
  assert.deepEqual(lo.logOnly.map((h) => h.ruleId), ['trial']);
  rs.setMode('trial', null);
  assert.equal(rs.evaluate(req({ path: '/wp-login.php', ip: '192.0.2.4' }), e).ruleId, 'trial', 'declared mode back');
  // Counter values are never reused: each limited request reports its own rate.
  const ip = '198.51.100.9';
  for (let i = 0; i < 3; i++) assert.equal(rs.evaluate(req({ ip }), e).action, null);
  const d4 = rs.evaluate(req({ ip }), e);
  const d5 = rs.evaluate(req({ ip }), e);
  assert.equal(d4.ruleId, 'limit');
  assert.deepEqual([d4.counters[0].value, d5.counters[0].value], [4, 5]);
});
