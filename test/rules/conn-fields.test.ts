// Why: a security team writes HAProxy's `sc_conn_cur(0) gt N` / `sc_conn_rate(0) gt N` as rules:
// client.conn_cur and client.conn_rate read the connection guard's per-client counts (the `client`
// stick table), are missing when nothing counted them (so `> N` is false, never a false block), can
// be set in inline tests, and reach the rules through the edge's RulesAdapter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadRulesetFromSources, MemoryCounterStore, runRuleTests, type RuleInput, type Ruleset } from '../../rules/index.js';
import { parseRequestJson } from '../../rules/cli.js';
import { RulesAdapter } from '../../edge/pipeline/stages.js';
import { ClientGuard, guardConfigFrom } from '../../edge/shield/guard.js';
import { ConnectionGuard, connectionGuardConfig, tableConnCounts } from '../../edge/shield/connection-guard.js';
import { normalizeConnectionLimits } from '../../edge/shield/firewall/config.js';
import { EventBus } from '../../edge/observe/events/bus.js';
import type { RuleManager } from '../../rules/manager.js';
import type { Transaction } from '../../edge/pipeline/transaction.js';

const RULES = `
rule "many-conns" { when client.conn_cur > 20 then deny(429) }
rule "conn-churn" { when client.conn_rate >= 30 then tarpit(5s) }
rule "no-count"   { when not client.conn_cur exists and http.path == "/probe" then deny(403) }
`;

function load(body: string): Ruleset {
  const r = loadRulesetFromSources([{ name: 'c.rules', text: `version 1\n${body}\n` }]);
  assert.ok(r.ruleset, r.diagnostics.map((d) => `${d.code} ${d.message}`).join('\n'));
  return r.ruleset;
}

function req(over: Partial<RuleInput> = {}): RuleInput {
  return { ip: '198.51.100.7', method: 'GET', host: 'shop.example', path: '/', query: '', headers: [], sni: null, listener: 'main', country: null, asn: null, contentLength: -1, ...over };
}

test('client.conn_cur / client.conn_rate decide like sc_conn_cur / sc_conn_rate, and are missing when not counted', () => {
  const rs = load(RULES);
  assert.equal(rs.needsConn, true);
  const env = { now: Date.now(), counters: new MemoryCounterStore() };
  const verdict = (over: Partial<RuleInput>): string | null => { const d = rs.evaluate(req(over), env); return d.action === null ? null : `${d.action.kind} ${d.ruleId}`; };
  assert.equal(verdict({ connCur: 20, connRate: 0 }), null);
  assert.equal(verdict({ connCur: 21, connRate: 0 }), 'deny many-conns');
  assert.equal(verdict({ connCur: 1, connRate: 29.6 }), 'tarpit conn-churn', 'a rate estimate is rounded to an integer');
  assert.equal(verdict({ connCur: 1, connRate: 29.4 }), null);
  assert.equal(verdict({ path: '/probe' }), 'deny no-count', 'absent: missing');
  assert.equal(verdict({ path: '/probe', connCur: -1, connRate: -1 }), 'deny no-count', '-1: missing');
  assert.equal(verdict({ path: '/probe', connCur: 0, connRate: 0 }), null);
  assert.equal(load('rule "x" { when http.path == "/" then deny(403) }').needsConn, false);
});

test('inline tests set conn_cur / conn_rate; a wrong type is a diagnostic', () => {
  const r = loadRulesetFromSources([{ name: 't.rules', text: `version 1\n${RULES}
test "held connections" { request { conn_cur = 21 } expect deny(429) by "many-conns" }
test "churn" { request { conn_rate = 30 conn_cur = 2 } expect tarpit(5s) by "conn-churn" }
test "quiet" { request { conn_rate = 3 conn_cur = 2 } expect allow }
` }]);
  assert.ok(r.ruleset, r.diagnostics.map((d) => `${d.code} ${d.message}`).join('\n'));
  const rep = runRuleTests(r.ruleset);
  assert.equal(rep.failed, 0, JSON.stringify(rep.results.filter((x) => !x.passed)));
  assert.equal(rep.passed, 3);
  const bad = loadRulesetFromSources([{ name: 'b.rules', text: `version 1\n${RULES}\ntest "t" { request { conn_cur = "many" } expect allow }\n` }]);
  assert.ok(bad.diagnostics.some((d) => d.code === 'E_TEST' && /conn_cur takes an integer/.test(d.message)));
  const parsed = parseRequestJson('{"ip":"192.0.2.1","conn_cur":5,"connRate":7}');
  assert.ok(typeof parsed !== 'string');
  assert.deepEqual([parsed.connCur, parsed.connRate], [5, 7]);
});

test('the edge\'s RulesAdapter feeds the connection guard\'s counts to the rules', () => {
  const rs = load(RULES);
  const manager = { current: () => rs } as unknown as RuleManager;
  const connection = { concurrent: false, rate: { limit: 1000, window: '10s' } };
  const guard = new ClientGuard(guardConfigFrom({ connection }, null));
  const conn = new ConnectionGuard(connectionGuardConfig(normalizeConnectionLimits(connection)), { guard });
  const now = Date.now();
  for (let i = 0; i < 22; i++) conn.open('192.0.2.9', '192.0.2.9', 'main', now);
  const tx = { clientIp: '192.0.2.9', clientKey: '192.0.2.9', method: 'GET', host: 'shop.example', path: '/', query: '', headers: [], listener: 'main', country: null, asn: null, bodyLength: -1 } as unknown as Transaction;
  for (const counts of [conn, tableConnCounts(guard.table)]) {
    const adapter = new RulesAdapter(manager, new MemoryCounterStore(), null, new EventBus(), counts);
    const spec = adapter.evaluate(tx, now);
    assert.equal(spec?.kind, 'deny');
    assert.equal(spec?.ruleId, 'many-conns');
  }
  // Without a source the fields are missing: nothing fires on them.
  const none = new RulesAdapter(manager, new MemoryCounterStore(), null, new EventBus());
  assert.equal(none.evaluate(tx, now), null);
});
