// Request → verdict + rule id, through the compiled ruleset (with and without the dispatch index).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { loadRulesetFromSources, MemoryCounterStore, type RuleInput, type Ruleset } from '../../rules/index.js';

function load(body: string): Ruleset {
  const r = loadRulesetFromSources([{ name: 'p.rules', text: `version 1\n${body}\n` }]);
  assert.ok(r.ruleset, r.diagnostics.map((d) => `${d.code} ${d.message}`).join('\n'));
  return r.ruleset;
}

function req(over: Partial<RuleInput> = {}): RuleInput {
  return { ip: '198.51.100.7', method: 'GET', host: 'shop.example', path: '/', query: '', headers: [], sni: null, listener: 'main', country: null, asn: null, contentLength: -1, ...over };
}
const env = () => ({ now: Date.parse('2024-11-29T12:00:00Z'), counters: new MemoryCounterStore() });

const policy = load(`
counter per_ip { key = ip.src window = 10s }
rule "scanners"   { when lower(http.user_agent) contains_any {"sqlmap" "nikto"} then deny(403, "go away") }
rule "office"     { when http.path starts_with "/admin" and not ip.src in {192.0.2.0/24 2001:db8::/32} then deny(404) }
rule "blocked"    { when ip.src in {203.0.113.0/24} then tarpit(30s) }
rule "geo"        { when geo.country in {"XX" "YY"} and not geo.asn in {64500} then deny(403) }
rule "api-key"    { when http.path starts_with "/api/" and not http.headers["x-api-key"] exists then deny(401) }
rule "args"       { when http.args["debug"] == "1" then drop }
rule "cookie"     { when http.cookies["role"] == "admin" then ban(1h) }
rule "big"        { when http.content_length > 1000000 then deny(413) }
rule "sni"        { when tls.sni exists and not (tls.sni == http.host) then deny(421) }
rule "rate"       { when rate(per_ip) > 3 then rate_limit(10s) }
rule "checkout"   { when http.path starts_with "/checkout" then priority(checkout) route("shop") set_request_header("x-class", "checkout") }
rule "hdr"        { then set_response_header("x-frame-options", "DENY") remove_request_header("x-debug") }
rule "trial"      { mode = log_only when http.path ends_with ".php" then deny(404) }
rule "healthz"    { when http.path == "/healthz" then allow }
`);

const cases: [string, Partial<RuleInput>, string | null, string | null][] = [
  ['scanner UA (case-insensitive)', { headers: ['user-agent', 'Mozilla (NIKTO/2.1)'] }, 'deny', 'scanners'],
  ['admin from the internet', { path: '/admin/users' }, 'deny', 'office'],
  ['admin from the office v4', { ip: '192.0.2.9', path: '/admin/users' }, null, null],
  ['admin from the office v6', { ip: '2001:db8::5', path: '/admin' }, null, null],
  ['admin from a v4-mapped v6 office address', { ip: '::ffff:192.0.2.9', path: '/admin' }, null, null],
  ['blocked range', { ip: '203.0.113.77' }, 'tarpit', 'blocked'],
  ['embargoed country, unknown ASN', { country: 'XX' }, 'deny', 'geo'],
  ['embargoed country, partner ASN', { country: 'XX', asn: 64500 }, null, null],
  ['other country', { country: 'DE', asn: 3320 }, null, null],
  ['api without key', { path: '/api/v1/x' }, 'deny', 'api-key'],
  ['api with key', { path: '/api/v1/x', headers: ['x-api-key', 'k'] }, null, null],
  ['debug query arg', { query: 'a=2&debug=1' }, 'drop', 'args'],
  ['percent-encoded arg name', { query: 'de%62ug=1' }, 'drop', 'args'],
  ['cookie', { headers: ['cookie', 'session=1; role=admin'] }, 'ban', 'cookie'],
  ['big body', { contentLength: 2_000_000 }, 'deny', 'big'],
  ['no content length is not big', { contentLength: -1 }, null, null],
  ['SNI mismatch', { sni: 'other.example', host: 'shop.example' }, 'deny', 'sni'],
  ['SNI match with port in host', { sni: 'shop.example', host: 'Shop.Example:443' }, null, null],
  ['healthz allowed', { path: '/healthz' }, 'allow', 'healthz'],
];
for (const [name, over, kind, rule] of cases) {
  test(`verdict: ${name}`, () => {
    const d = policy.evaluate(req(over), env());
    assert.equal(d.action?.kind ?? null, kind);
    assert.equal(d.ruleId, rule);
    assert.equal(d.rulesetHash, policy.hash);
    if (kind) assert.equal(d.mode, 'enforce');
  });
}

test('decision carries status, body, durations', () => {
  assert.deepEqual(policy.evaluate(req({ headers: ['user-agent', 'sqlmap/1.7'] }), env()).action, { kind: 'deny', status: 403, body: 'go away\n', durationMs: 0, retryAfterSec: 0 });
  assert.equal(policy.evaluate(req({ ip: '203.0.113.1' }), env()).action?.durationMs, 30_000);
  assert.equal(policy.evaluate(req({ headers: ['cookie', 'role=admin'] }), env()).action?.durationMs, 3_600_000);
});

test('non-terminating effects accumulate; first route/priority wins', () => {
  const d = policy.evaluate(req({ path: '/checkout/pay' }), env());
  assert.equal(d.action, null);
  assert.equal(d.backend, 'shop');
  assert.equal(d.priority, 0);
  assert.equal(d.priorityClass, 'checkout');
  assert.deepEqual(d.requestHeaders, [{ name: 'x-class', value: 'checkout' }, { name: 'x-debug', value: null }]);
  assert.deepEqual(d.responseHeaders, [{ name: 'x-frame-options', value: 'DENY' }]);
  assert.deepEqual(d.matched, ['checkout', 'hdr']);
});

test('log_only records "would have" and never terminates', () => {
  const d = policy.evaluate(req({ path: '/index.php' }), env());
  assert.equal(d.action, null);
  assert.deepEqual(d.logOnly.map((h) => [h.ruleId, h.wouldHave]), [['trial', 'would have deny(404)']]);
});

test('counters: the 4th request within the window is rate limited, with counter values in the decision', () => {
  const e = env();
  const results = [];
  for (let i = 0; i < 4; i++) results.push(policy.evaluate(req({ ip: '198.51.100.50' }), { ...e, now: e.now + i * 100 }));
  assert.deepEqual(results.map((d) => d.action?.kind ?? null), [null, null, null, 'rate_limit']);
  const last = results[3];
  assert.equal(last.action?.retryAfterSec, 10);
  assert.equal(last.action?.status, 429);
  assert.deepEqual(last.counters.map((c) => [c.counter, c.key, c.value]), [['per_ip', '198.51.100.50', 4]]);
  // another client is not affected; after the window passes the client is fine again
  assert.equal(policy.evaluate(req({ ip: '198.51.100.51' }), { ...e, now: e.now + 400 }).action, null);
  assert.equal(policy.evaluate(req({ ip: '198.51.100.50' }), { ...e, now: e.now + 25_000 }).action, null);
});

test('modes: setMode switches enforce/log_only/off at runtime', () => {
  const rs = load('rule "a" { when http.path == "/x" then deny(403) }');
  const e = env();
  assert.equal(rs.evaluate(req({ path: '/x' }), e).action?.kind, 'deny');
  assert.ok(rs.setMode('a', 'log_only'));
  let d = rs.evaluate(req({ path: '/x' }), e);
  assert.equal(d.action, null);
  assert.equal(d.logOnly[0].ruleId, 'a');
  assert.ok(rs.setMode('a', 'off'));
  d = rs.evaluate(req({ path: '/x' }), e);
  assert.equal(d.action, null);
  assert.equal(d.logOnly.length, 0);
  assert.ok(rs.setMode('a', null));
  assert.equal(rs.evaluate(req({ path: '/x' }), e).action?.kind, 'deny');
  assert.equal(rs.setMode('nope', 'off'), false);
});

test('file mode applies to every rule; the stricter of file and rule mode wins', () => {
  const rs = load('mode log_only\nrule "a" { when http.path == "/x" then deny(403) }\nrule "b" { mode = off when http.path == "/x" then deny(404) }');
  const d = rs.evaluate(req({ path: '/x' }), env());
  assert.equal(d.action, null);
  assert.deepEqual(d.logOnly.map((h) => h.ruleId), ['a']);
});

test('no match returns the shared constant decision (no allocation)', () => {
  const a = policy.evaluate(req({ path: '/plain' , ip: '198.51.100.99'}), env());
  const rs = load('rule "a" { when http.path == "/x" then deny(403) }');
  const d1 = rs.evaluate(req(), env());
  const d2 = rs.evaluate(req({ path: '/y' }), env());
  assert.equal(d1, d2);
  assert.ok(Object.isFrozen(d1));
  assert.equal(a.action, null);
});

test('missing values: comparisons are false, not() of them is true', () => {
  const rs = load('rule "ne" { when http.user_agent != "x" then deny(403) }\nrule "not-eq" { when not (geo.asn == 1) then deny(404) }');
  const d = rs.evaluate(req(), env());
  assert.equal(d.ruleId, 'not-eq');
  assert.equal(rs.evaluate(req({ headers: ['user-agent', 'y'] }), env()).ruleId, 'ne');
});

test('headers: case-insensitive names, several values, count()', () => {
  const rs = load('rule "two-hosts" { when count(http.headers["Host"]) > 1 then deny(400) }\nrule "any" { when http.headers["X-Forwarded-For"] starts_with "10." then deny(403) }');
  assert.equal(rs.evaluate(req({ headers: ['host', 'a', 'host', 'b'] }), env()).ruleId, 'two-hosts');
  assert.equal(rs.evaluate(req({ headers: ['x-forwarded-for', '1.2.3.4', 'x-forwarded-for', '10.0.0.1'] }), env()).ruleId, 'any');
});

test('the dispatch index gives the same decisions as visiting every rule', () => {
  const rules: string[] = [];
  for (let i = 0; i < 60; i++) {
    const shapes = [
      `http.path starts_with "/p${i % 7}"`, `http.host == "h${i % 5}.example"`, `http.headers["x-id"] == "id${i % 4}"`,
      `lower(http.user_agent) contains "bot${i % 6}"`, `ip.src in {10.${i % 3}.0.0/16 10.0.0.0/8}`, `http.path ends_with ".x${i % 3}"`,
      `http.content_length > ${i * 10}`, `http.method in {"POST" "PUT"}`, `geo.asn < ${i * 100}`, `http.args["q"] == "v${i % 3}"`,
    ];
    const a = shapes[i % shapes.length], b = shapes[(i * 7 + 3) % shapes.length];
    const when = i % 3 === 0 ? `${a} and ${b}` : i % 3 === 1 ? `${a} or ${b}` : a;
    rules.push(`rule "r${i}" { when ${when} then ${i % 4 === 0 ? 'route("b' + i + '")' : 'deny(403)'} }`);
  }
  const rs = load(rules.join('\n'));
  assert.ok(rs.indexedRules > 30);
  const arb = fc.record({
    path: fc.constantFrom('/p1/a', '/p3', '/x.x1', '/other', '/p6.x2'),
    host: fc.constantFrom('h1.example', 'h4.example', 'zz'),
    id: fc.constantFrom('id0', 'id3', 'none'),
    ua: fc.constantFrom('Bot3 crawler', 'mozilla', 'BOT5'),
    ip: fc.constantFrom('10.1.2.3', '10.9.9.9', '192.0.2.1'),
    cl: fc.integer({ min: -1, max: 700 }),
    method: fc.constantFrom('GET', 'POST'),
    asn: fc.option(fc.integer({ min: 0, max: 7000 }), { nil: null }),
    q: fc.constantFrom('q=v1', 'q=v2&x=1', ''),
  });
  fc.assert(fc.property(arb, (x) => {
    const input = req({ path: x.path, host: x.host, headers: ['x-id', x.id, 'user-agent', x.ua], ip: x.ip, contentLength: x.cl, method: x.method, asn: x.asn, query: x.q });
    const a = rs.evaluate(input, env());
    const b = rs.evaluateLinear(input, env());
    assert.equal(a.ruleId, b.ruleId);
    assert.deepEqual(a.matched, b.matched);
    assert.equal(a.backend, b.backend);
  }), { numRuns: 400 });
});
