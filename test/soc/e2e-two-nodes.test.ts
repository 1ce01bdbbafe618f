// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// Why: a SOC watches one screen for the whole edge. Two real edge processes share one Redis: what
// node B blocks must appear in node A's live WebSocket feed (through the shared Redis Stream), and a
// ban set on node B through its admin API must hold on node A.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { spawnEdge } from '../harness/process.js';
import { startOrigin } from '../harness/origin.js';
import { startPrivateRedis } from '../harness/redis.js';
import { ADMIN_TOKEN, admin, eventValidator, rulesDir, send, socEdgeYaml, waitFor, type Ev } from './e2e-support.js';

test('two nodes, one Redis: an event on node B appears in node A\'s WebSocket feed', { timeout: 60_000 }, async (t) => {
  const redis = await startPrivateRedis();
  if (redis === null) { t.skip('skipped: no redis'); return; }
  // Stopped last, after both edges (hooks below run in this order).
  const stops: (() => Promise<unknown>)[] = [];
  t.after(async () => { for (const s of stops.reverse()) await s(); await redis.stop(); });
  const { rulesFile } = rulesDir('pc-e2e-2nodes-', 'n.rules', 'version 1\nrule "deny-path" { when http.path == "/deny" then deny(403) }\n');
  const o1 = await startOrigin('s1');
  stops.push(() => o1.close());
  const yaml = (node: string): string => socEdgeYaml({ node, origins: [o1], rulesFile, more: `shared: { redis: "${redis.url}", node_count: 2 }` });
  const a = await spawnEdge(yaml('edge-a'));
  stops.push(() => a.stop());
  const b = await spawnEdge(yaml('edge-b'));
  stops.push(() => b.stop());

  // Node A's feed, filtered server-side to deny events (token in the sub-protocol, as the dashboard does).
  const got: Ev[] = [];
  const ws = new WebSocket(`ws://127.0.0.1:${a.adminPort}/api/events/ws?type=deny`, ['portcullis', `token.${ADMIN_TOKEN}`]);
  stops.push(async () => ws.close());
  await new Promise<void>((resolve, reject) => {
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString()) as Ev;
      if (m.kind === 'hello') { assert.equal(m.node, 'edge-a'); resolve(); return; }
      got.push(m);
    });
    ws.on('error', reject);
  });

  assert.equal((await send(`${b.url}/deny`, { from: '127.0.5.1' })).status, 403);
  assert.equal((await send(`${b.url}/`, { from: '127.0.5.1' })).status, 200, 'not a deny: filtered out of the feed');
  const ev = await waitFor('node B\'s deny in node A\'s feed', () => got.find((e) => e.node === 'edge-b' && e.rule === 'deny-path'), 5000);
  assert.equal(ev.client.ip, '127.0.5.1');
  assert.equal(ev.request.path, '/deny');
  assert.equal(eventValidator()(ev), null, 'the relayed event is schema-valid');
  assert.ok(got.every((e) => e.type === 'deny'), 'server-side type filter applies to remote events');

  // A ban set on node B holds on node A.
  assert.equal((await admin(b.adminPort, 'POST', '/api/bans', { key: '127.0.5.2', ttl: 60, reason: 'two nodes' })).status, 201);
  await waitFor('ban to reach node A', async () => (await send(`${a.url}/`, { from: '127.0.5.2' })).status === 403, 3000);
  // …and A's recent-events API shows B's events as well.
  const recent = (await admin(a.adminPort, 'GET', '/api/events/recent?type=deny')).body as Ev[];
  assert.ok(recent.some((e) => e.node === 'edge-b'), 'recent events include the other node');
});
