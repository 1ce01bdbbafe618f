// Red team, key family: counters must count the client, not a spelling the client controls. A junk
// second header line must not make a fresh key (the origin reads the first value); rotating IPv6
// addresses inside one /64 must not either; ::ffff:a.b.c.d is the IPv4 client. ipmask() widens keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { loadRulesetFromSources, MemoryCounterStore, runRuleTests, type RuleInput } from '../../rules/index.js';
import { startOriginAndEdge } from '../harness/edge.js';

const RULES = `version 1
counter per_key  { key = http.headers["x-api-key"]  window = 10s }
counter per_ip   { key = ip.src  window = 10s }
counter per_net  { key = ipmask(ip.src, 24, 48)  window = 10s }
counter per_xff  { key = http.headers["x-forwarded-for"]  window = 10s }
rule "key-limit" { when rate(per_key) > 3 then rate_limit(10s) }
rule "ip-limit"  { when rate(per_ip) > 5 then deny(429) }
rule "net-limit" { when rate(per_net) > 8 then deny(430) }
rule "xff-limit" { when rate(per_xff) > 4 then deny(431) }
rule "lab-net"   { when ipmask(ip.src, 16) == 203.0.0.0 then log("lab") }
rule "lab-v6"    { when ipmask(ip.src, 24, 32) in {2001:db8::/32} and http.path == "/v6lab" then deny(451) }

test "a junk second x-api-key line does not make a new key" {
  request { ip = "192.0.2.1"  header "x-api-key" = "abc" }
  request { ip = "192.0.2.2"  header "x-api-key" = "abc"  header "x-api-key" = "junk1" }
  request { ip = "192.0.2.3"  header "x-api-key" = "abc"  header "x-api-key" = "junk2" }
  request { ip = "192.0.2.4"  header "x-api-key" = "abc"  header "x-api-key" = "junk3" }
  expect rate_limit(10s) by "key-limit"
}
test "an IPv4-mapped spelling is the same client" {
  repeat 3 within 1s request { ip = "198.51.100.9" }
  repeat 3 within 1s request { ip = "::ffff:198.51.100.9" }
  expect deny(429) by "ip-limit"
}
`;

function load() {
  const { ruleset, diagnostics } = loadRulesetFromSources([{ name: 'keys.rules', text: RULES }]);
  assert.ok(ruleset, JSON.stringify(diagnostics));
  return ruleset;
}
const req = (ip: string, headers: string[] = [], path = '/'): RuleInput => ({ ip, method: 'GET', host: 'h', path, query: '', headers, sni: null, listener: 'main', country: null, asn: null, contentLength: -1 });

test('the ruleset\'s own test blocks: junk header lines and IPv4-mapped spellings do not escape the limit', () => {
  const r = runRuleTests(load());
  assert.equal(r.failed, 0, JSON.stringify(r.results.map((x) => x.failures)));
  assert.equal(r.passed, 2);
});

test('header keys: the first line counts; for x-forwarded-for the last element of the last line', () => {
  const ruleset = load();
  const env = { now: Date.parse('2024-11-29T12:00:00Z'), counters: new MemoryCounterStore() };
  // junk lines appended after the real key: one key "abc"
  let d = ruleset.evaluate(req('192.0.2.10', ['x-api-key', 'abc']), env);
  for (let i = 0; i < 3; i++) d = ruleset.evaluate(req(`192.0.2.${11 + i}`, ['x-api-key', 'abc', 'x-api-key', `junk${i}`]), env);
  assert.equal(d.ruleId, 'key-limit');
  assert.equal(d.counters.find((c) => c.counter === 'per_key')?.key, 'abc');
  // XFF: the client controls what comes before the nearest proxy's entry; the last element is the key
  for (let i = 0; i < 5; i++) d = ruleset.evaluate(req(`10.${i}.0.1`, ['x-forwarded-for', `10.9.9.${i}, 203.0.113.7`]), env);
  assert.equal(d.ruleId, 'xff-limit');
  assert.equal(d.counters.find((c) => c.counter === 'per_xff')?.key, '203.0.113.7');
});

test('ip.src keys: one IPv6 /64 is one client; ipmask() widens IPv4 to /24 and IPv6 to /48; comparisons on masks', () => {
  const ruleset = load();
  const env = { now: Date.parse('2024-11-29T12:00:00Z'), counters: new MemoryCounterStore() };
  let d = ruleset.evaluate(req('2001:db8:1:2::1'), env);
  for (let i = 2; i <= 6; i++) d = ruleset.evaluate(req(`2001:db8:1:2:${i.toString(16)}:beef:0:${i}`), env);
  assert.equal(d.ruleId, 'ip-limit', 'six addresses of one /64 are one client');
  assert.equal(d.counters.find((c) => c.counter === 'per_ip')?.key, '2001:db8:1:2::/64');
  // another /64 of the same /48 is a new ip.src key but the same per_net key
  for (let i = 0; i < 3; i++) d = ruleset.evaluate(req(`2001:db8:1:${(0x100 + i).toString(16)}::1`), env);
  assert.equal(d.ruleId, 'net-limit');
  assert.equal(d.counters.find((c) => c.counter === 'per_net')?.key, '2001:db8:1::/48');
  // IPv4: /24 networks
  const env2 = { now: env.now, counters: new MemoryCounterStore() };
  for (let i = 1; i <= 9; i++) d = ruleset.evaluate(req(`198.51.100.${i}`), env2);
  assert.equal(d.ruleId, 'net-limit');
  assert.equal(d.counters.find((c) => c.counter === 'per_net')?.key, '198.51.100.0/24');
  // comparisons
  const env3 = { now: env.now, counters: new MemoryCounterStore() };
  assert.deepEqual(ruleset.evaluate(req('203.0.77.1'), env3).matched, ['lab-net']);
  assert.equal(ruleset.evaluate(req('2001:db8:ffff::1', [], '/v6lab'), env3).ruleId, 'lab-v6');
  assert.equal(ruleset.evaluate(req('2001:db9::1', [], '/v6lab'), env3).ruleId, null);
});

test('ipmask() is type-checked: an address first, integer bits 0..128', () => {
  const bad = (text: string) => loadRulesetFromSources([{ name: 'b.rules', text: `version 1\n${text}\n` }]).diagnostics.map((x) => x.code);
  assert.ok(bad('rule "a" { when ipmask(http.path, 24) == 10.0.0.0 then deny(403) }').includes('E_TYPE'));
  assert.ok(bad('rule "a" { when ipmask(ip.src, 200) == 10.0.0.0 then deny(403) }').includes('E_RANGE'));
  assert.ok(bad('rule "a" { when ipmask(ip.src) == 10.0.0.0 then deny(403) }').includes('E_ARITY'));
});

// ---- through the real edge ----

function send(port: number, headers: Record<string, string | string[]>): Promise<number> {
  return new Promise((resolve, reject) => {
    const r = request({ host: '127.0.0.1', port, path: '/', headers: { host: 'shop', ...headers } }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); });
    r.on('error', reject);
    r.end();
  });
}

test('through the edge: repeated x-api-key lines and IPv6 address rotation behind a trusted proxy are still limited', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-keys-'));
  const file = join(dir, 'keys.rules');
  writeFileSync(file, `version 1
counter per_key { key = http.headers["x-api-key"]  window = 10s }
counter per_ip  { key = ip.src  window = 10s }
rule "key-limit" { when rate(per_key) > 3 then deny(429) }
rule "ip-limit"  { when rate(per_ip) > 5 then deny(430) }
`);
  const { o, px } = await startOriginAndEdge(t, {
    limits: 'client: { requests: { limit: 0 }, in_flight: 0 }',
    more: `trusted_proxies: ["127.0.0.1/32"]\nrules: { files: ["${file}"], watch: false }`,
  });
  // one key, each request with a different junk second line and from a different IPv4 client
  const keyStatuses: number[] = [];
  for (let i = 0; i < 5; i++) keyStatuses.push(await send(px.port, { 'x-api-key': ['abc', `junk${i}`], 'x-forwarded-for': `192.0.2.${i + 1}` }));
  assert.deepEqual(keyStatuses, [200, 200, 200, 429, 429]);
  const forwarded = o.seen.map((r) => r.headers['x-api-key']);
  assert.equal(forwarded.length, 3);
  // IPv6 rotation inside one /64
  const v6Statuses: number[] = [];
  for (let i = 0; i < 7; i++) v6Statuses.push(await send(px.port, { 'x-forwarded-for': `2001:db8:aa:bb:${(i + 1).toString(16)}::${i + 7}` }));
  assert.deepEqual(v6Statuses, [200, 200, 200, 200, 200, 430, 430]);
  // the IPv4-mapped spelling of an address already counted is the same client
  const v4: number[] = [];
  for (let i = 0; i < 3; i++) v4.push(await send(px.port, { 'x-forwarded-for': '198.51.100.20' }));
  for (let i = 0; i < 3; i++) v4.push(await send(px.port, { 'x-forwarded-for': '::ffff:198.51.100.20' }));
  assert.deepEqual(v4, [200, 200, 200, 200, 200, 430]);
});
