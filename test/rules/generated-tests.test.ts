// A rule's condition runs as one generated function (rules/compile.ts ruleTest): and/or/not and
// named conditions inlined, plain-field comparisons read inline. It must answer exactly as the
// closure tree (compileExpr, which explain uses) for every rule and request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { loadRulesetFromSources, MemoryCounterStore, type RuleInput, type Ruleset } from '../../rules/index.js';

const POLICY = `version 1
counter hits { key = ip.src  window = 10s }
cond api = http.path starts_with "/api/" or http.path == "/graphql"
cond night = time.hour < 6 or time.hour >= 22
rule "eq" { when http.method == "POST" and not api then log("eq") }
rule "ne" { when http.method != "GET" and http.content_length > 10 then log("ne") }
rule "num" { when http.content_length <= 100 or http.content_length >= 5000 then log("num") }
rule "affix" { when http.path ends_with ".php" or http.path contains "/wp-" or http.raw_path contains "//" then log("affix") }
rule "lazy" { when http.host == "shop.example" and http.user_agent contains "bot" then log("lazy") }
rule "hour" { when night and (api or http.query contains "debug") then log("hour") }
rule "mixed" { when not (http.method in {"GET" "HEAD"}) and (lower(http.user_agent) contains_any {"curl" "wget"} or rate(hits) > 3) then log("mixed") }
rule "exists" { when not http.headers["x-api-key"] exists and http.path != "/" then log("exists") }
rule "bool" { when true and not false then log("bool") }
`;

function load(text: string): Ruleset {
  const r = loadRulesetFromSources([{ name: 'g.rules', text }]);
  assert.ok(r.ruleset, r.diagnostics.map((d) => `${d.code} ${d.message}`).join('\n'));
  return r.ruleset;
}

const rs = load(POLICY);
const closures = rs.program.rules.map((r) => (r.decl.when ? rs.compiled.compileExpr(r.decl.when) : () => true));

test('generated rule tests answer as the closure tree on random requests', () => {
  const pick = <T>(...xs: T[]) => fc.constantFrom(...xs);
  const arb = fc.record({
    method: pick('GET', 'POST', 'HEAD', 'PUT'),
    path: pick('/', '/api/x', '/graphql', '/wp-login.php', '/a//b', '/index.php', '/shop'),
    query: pick('', 'debug=1', 'a=b'),
    host: pick('shop.example', 'SHOP.example:8080', 'other.example', ''),
    ua: fc.option(pick('Googlebot', 'curl/8', 'Mozilla/5.0', 'WGET x')),
    key: fc.option(pick('k1', '')),
    len: pick(-1, 0, 10, 11, 100, 101, 4999, 5000),
    hour: fc.integer({ min: 0, max: 23 }),
    repeat: fc.integer({ min: 1, max: 5 }),
  });
  fc.assert(fc.property(arb, (a) => {
    const headers: string[] = [];
    if (a.ua !== null) headers.push('user-agent', a.ua);
    if (a.key !== null) headers.push('x-api-key', a.key);
    const input: RuleInput = { ip: '198.51.100.7', method: a.method, host: a.host, path: a.path, query: a.query, headers, sni: null, listener: 'main', country: null, asn: null, contentLength: a.len };
    const env = { now: Date.UTC(2024, 10, 29, a.hour, 30), counters: new MemoryCounterStore() };
    for (let i = 1; i < a.repeat; i++) rs.evaluate(input, env);
    const c = rs.inspectContext(input, env);
    rs.compiled.rules.forEach((r, i) => assert.equal(r.test(c), closures[i](c), `rule ${r.id} on ${JSON.stringify(a)}`));
  }), { numRuns: 1500 });
});

test('named conditions that double at each level, or nest deeply, keep the closure tree and answer the same', () => {
  const input: RuleInput = { ip: '198.51.100.7', method: 'GET', host: 'h', path: '/x', query: '', headers: [], sni: null, listener: 'main', country: null, asn: null, contentLength: -1 };
  // c40 inlined would be 2^40 comparisons
  const doubling = Array.from({ length: 40 }, (_, i) => `cond c${i + 1} = c${i} or (c${i} and http.method == "PUT")`).join('\n');
  const d = load(`version 1\ncond c0 = http.path == "/x"\n${doubling}\nrule "wide" { when c40 then deny(403) }\n`);
  assert.equal(d.evaluate(input, { now: 0, counters: new MemoryCounterStore() }).ruleId, 'wide');
  const chain = Array.from({ length: 100 }, (_, i) => `cond d${i + 1} = d${i} and http.method == "GET"`).join('\n');
  const n = load(`version 1\ncond d0 = http.path == "/x"\n${chain}\nrule "deep" { when d100 then deny(403) }\n`);
  assert.equal(n.evaluate(input, { now: 0, counters: new MemoryCounterStore() }).ruleId, 'deep');
  assert.equal(n.evaluate({ ...input, method: 'POST' }, { now: 0, counters: new MemoryCounterStore() }).ruleId, null);
});
