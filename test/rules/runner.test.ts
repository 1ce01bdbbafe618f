// The inline test runner: expectations that must fail do fail, virtual clock, maps and log marks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { explain, formatTestReport, loadRulesetFromSources, MemoryCounterStore, runRuleTests, type RuleInput } from '../../rules/index.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-rules-runner-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function report(body: string) {
  const r = loadRulesetFromSources([{ name: 't.rules', text: `version 1\n${body}\n`, configDir: dir }]);
  assert.ok(r.ruleset, r.diagnostics.map((d) => `${d.code} ${d.message}`).join('\n'));
  return runRuleTests(r.ruleset);
}

const RULES = `
counter per_ip { key = ip.src  window = 10s }
rule "trial" { mode = log_only when http.path ends_with ".php" then deny(404) }
rule "prio" { when http.path starts_with "/checkout" then priority(checkout) route("shop") set_request_header("x-c", "1") log("checkout") }
rule "rate" { when rate(per_ip) > 5 then rate_limit(10s) }
`;

test('passing and failing expectations of every kind', () => {
  const rep = report(RULES + `
test "ok" {
  request { path = "/a.php" }
  expect allow
  expect would deny(404) by "trial"
  request { path = "/checkout" }
  expect route "shop"
  expect priority checkout
  expect header "x-c" = "1"
  repeat 6 within 10s request { ip = "192.0.2.1" }
  expect rate_limit(10s) by "rate"
}
test "wrong would" { request { path = "/a.php" } expect would deny(403) by "trial" }
test "wrong route" { request { path = "/checkout" } expect route "other" }
test "wrong priority" { request { path = "/" } expect priority checkout }
test "wrong header" { request { path = "/checkout" } expect header "x-c" = "2" }
test "wrong retry" { repeat 6 within 10s request { ip = "192.0.2.1" } expect rate_limit(30s) by "rate" }
test "under the limit" { repeat 5 within 10s request { ip = "192.0.2.1" } expect rate_limit(10s) by "rate" }
`);
  const byName = Object.fromEntries(rep.results.map((r) => [r.name, r]));
  assert.ok(byName['ok'].passed, byName['ok'].failures.join('\n'));
  for (const n of ['wrong would', 'wrong route', 'wrong priority', 'wrong header', 'wrong retry', 'under the limit']) {
    assert.equal(byName[n].passed, false, n);
    assert.match(byName[n].failures[0], /^t\.rules:\d+: expected /);
  }
  assert.equal(rep.passed, 1);
  assert.equal(rep.failed, 6);
  assert.match(formatTestReport(rep), /\n1 passed, 6 failed$/);
});

test('wait advances the virtual clock past the window; time sets it', () => {
  const rep = report(RULES + `
test "window" {
  repeat 6 within 5s request { ip = "192.0.2.9" }
  expect rate_limit(10s) by "rate"
  wait 25s
  request { ip = "192.0.2.9" }
  expect allow
}
rule "night" { when time.hour < 6 then deny(503) }
test "night" { request { time = "2024-12-01T03:00:00Z" } expect deny(503) by "night" }
test "day" { request { time = "2024-12-01T13:00:00Z" } expect allow }
`);
  assert.equal(rep.failed, 0, formatTestReport(rep));
});

test('maps: longest prefix wins, lookups feed comparisons', () => {
  writeFileSync(join(dir, 'pop.map'), '10.0.0.0/8 generic\n10.1.0.0/16 berlin\n');
  const r = loadRulesetFromSources([{ name: 'm.rules', configDir: dir, text: `version 1
map pop : ip = file("pop.map")
rule "berlin" { when map($pop, ip.src) == "berlin" then route("berlin") }
rule "generic" { when map($pop, ip.src) == "generic" then route("generic") }
` }]);
  assert.ok(r.ruleset, r.diagnostics.map((d) => d.message).join());
  const input = (ip: string): RuleInput => ({ ip, method: 'GET', host: 'h', path: '/', query: '', headers: [], sni: null, listener: 'l', country: null, asn: null, contentLength: -1 });
  const env = { now: 0, counters: new MemoryCounterStore() };
  assert.equal(r.ruleset.evaluate(input('10.1.2.3'), env).backend, 'berlin');
  assert.equal(r.ruleset.evaluate(input('10.9.2.3'), env).backend, 'generic');
  assert.equal(r.ruleset.evaluate(input('192.0.2.1'), env).backend, null);
});

test('log marks and explain results through the API', () => {
  const r = loadRulesetFromSources([{ name: 'e.rules', text: `version 1\n${RULES}` }]);
  assert.ok(r.ruleset);
  const input: RuleInput = { ip: '192.0.2.1', method: 'GET', host: 'h', path: '/checkout/x', query: '', headers: [], sni: null, listener: 'l', country: null, asn: null, contentLength: -1 };
  const d = r.ruleset.evaluate(input, { now: 0, counters: new MemoryCounterStore() });
  assert.deepEqual(d.logs, [{ ruleId: 'prio', message: 'checkout' }]);
  const x = explain(r.ruleset, input, { now: 0 });
  const prio = x.rules.find((y) => y.id === 'prio');
  assert.equal(prio?.matched, true);
  assert.deepEqual(prio?.condition?.reads, ['http.path = "/checkout/x"']);
  const rate = x.rules.find((y) => y.id === 'rate');
  assert.equal(rate?.condition?.reads[0], 'rate(per_ip) = 1');
});
