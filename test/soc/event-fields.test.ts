// Why: what a SOC reads in events must match what happened. A log_only event reports the status
// the client got, with what the rule would have done in its own field; request paths keep their
// query (bounded, escaped) because a probe's payload is usually there; a failed admin login is not
// a "block" of shop traffic and its source is not a "top blocked client" to ban.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLIENT_LIMITS_OFF, startOriginAndEdge } from '../harness/edge.js';
import { rawRequest } from '../harness/client.js';
import { EventBus } from '../../edge/observe/events/bus.js';
import { Metrics } from '../../edge/observe/metrics.js';
import { startAdminServer } from '../../edge/admin/server.js';
import { EVENT_TARGET_MAX, eventTarget } from '../../edge/observe/events/build.js';
import { TOKEN, fakeTargets } from './fakes.js';
import { eventValidator, send, waitFor } from './e2e-support.js';

const RULES = `version 1
rule "php-probe" { mode = log_only  when http.path ends_with ".php"  then deny(404) }
rule "sqli"      { when http.query contains "union+select"  then deny(403) }
`;

test('log_only events: status is what the client got, `would` what the rule would have done; paths keep the query', { timeout: 30_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-event-fields-'));
  const rules = join(dir, 'e.rules');
  writeFileSync(rules, RULES);
  const { px } = await startOriginAndEdge(t, { limits: CLIENT_LIMITS_OFF, more: `rules: { files: ["${rules}"], watch: false }` });
  const valid = eventValidator();

  const r = await rawRequest(px.port, 'GET /wp-login.php?user=admin&redirect_to=%2Fwp-admin HTTP/1.1\r\nHost: shop\r\n\r\n');
  assert.equal(r.status, 200, 'a log_only rule lets the request through');
  const ev = await waitFor('the log_only event', () => px.events.find((e) => e.type === 'log_only'));
  assert.equal(ev.status, 200, 'the status the client got, not the 404 the rule would have sent');
  assert.equal(ev.term, '--');
  assert.equal(ev.action, 'log', 'what the edge did');
  assert.deepEqual(ev.would, { action: 'deny', status: 404 }, 'what the rule would have done');
  assert.equal(ev.reason, 'would have deny(404)');
  assert.equal((ev.request as { path: string }).path, '/wp-login.php?user=admin&redirect_to=%2Fwp-admin', 'query kept as sent');
  assert.equal(valid(ev), null);

  const d = await rawRequest(px.port, 'GET /search?q=1+union+select+password HTTP/1.1\r\nHost: shop\r\n\r\n');
  assert.equal(d.status, 403);
  const deny = await waitFor('the deny event', () => px.events.find((e) => e.type === 'deny'));
  assert.equal((deny.request as { path: string }).path, '/search?q=1+union+select+password');
  assert.equal(valid(deny), null);

  // A long query is cut with a marker that says how much was left out.
  const long = `/p.php?${'a'.repeat(3000)}`;
  assert.equal((await rawRequest(px.port, `GET ${long} HTTP/1.1\r\nHost: shop\r\n\r\n`)).status, 200);
  const cut = await waitFor('the long log_only event', () => px.events.find((e) => e.type === 'log_only' && (e.request as { path: string }).path.startsWith('/p.php')));
  const path = (cut.request as { path: string }).path;
  assert.equal(path, `${long.slice(0, EVENT_TARGET_MAX)}…(${long.length - EVENT_TARGET_MAX} more)`);
});

test('eventTarget: printable targets as sent, anything else percent-encoded, bounded', () => {
  assert.equal(eventTarget('/a', ''), '/a');
  assert.equal(eventTarget('/a', 'b=1'), '/a?b=1');
  assert.equal(eventTarget('/caf\u00e9', 'x=\u0001 y'), '/caf%C3%A9?x=%01%20y', 'no control bytes or raw UTF-8 in a log line');
  assert.equal(eventTarget('/x'.repeat(2000)).length, EVENT_TARGET_MAX + '…(1952 more)'.length);
});

test('a failed admin login is its own category: not a block, not a top blocked client', async (t) => {
  const bus = new EventBus({ node: 'n' });
  const f = fakeTargets(bus);
  const admin = await startAdminServer({ address: '127.0.0.1:0', token: TOKEN }, f.targets, bus, new Metrics());
  t.after(() => admin.close());
  for (let i = 0; i < 3; i++) assert.equal((await send(`${admin.url}/api/stats`, { headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status, 401);
  const stats = await waitFor('a sampler second with the failures', async () => {
    const s = JSON.parse((await send(`${admin.url}/api/stats`, { headers: { authorization: `Bearer ${TOKEN}` } })).body) as {
      blocks: { blocked: number; authFailures: number; topClients: unknown[]; topRules: { key: string }[]; topAuthClients: { key: string; count: number }[]; history: { authFailures: number; blocked: number }[] };
    };
    return s.blocks.authFailures >= 3 ? s : null;
  }, 5000);
  assert.equal(stats.blocks.blocked, 0, 'failed logins are not blocks');
  assert.deepEqual(stats.blocks.topClients, [], 'nor top blocked clients (no ban button for the operator\'s own address)');
  assert.ok(!stats.blocks.topRules.some((r) => r.key.includes('auth')), 'nor a block "rule" in the chart');
  assert.deepEqual(stats.blocks.topAuthClients, [{ key: '127.0.0.1', count: 3 }]);
  assert.equal(stats.blocks.history.reduce((a, h) => a + h.authFailures, 0), 3);
  assert.equal(stats.blocks.history.reduce((a, h) => a + h.blocked, 0), 0);
});
