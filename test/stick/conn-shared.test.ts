// Why: a client that spreads its new connections over several edge nodes must meet one conn_rate
// limit, not one per node: the connection guard's conn_rate is summed across nodes through Redis
// (the same RedisShare and `client` table as http_req_rate). Two nodes in one process, each with its
// own Redis connections, against a real Redis (REDIS_URL or 127.0.0.1:6379).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeShared, type SharedConfig } from '../../edge/shield/stick/config.js';
import { ConnectionGuard, connectionGuardConfig, CONN_ADMIT, CONN_RATE } from '../../edge/shield/connection-guard.js';
import { normalizeConnectionLimits } from '../../edge/shield/firewall/config.js';
import { EventBus, type EdgeEvent } from '../../edge/observe/events/bus.js';
import { REDIS_URL, redisReachable } from '../harness/redis.js';
import { startSharedNode, stopSharedNodes, type SharedNode } from './helpers.js';
import { sleep } from '../harness/wait.js';

const prefix = `pcconn${process.pid}x${Date.now()}`;

type Node = SharedNode & { conn: ConnectionGuard; connEvents: EdgeEvent[] };

async function startNode(id: string, connection: Record<string, unknown>, tag: string): Promise<Node> {
  const cfg: SharedConfig = normalizeShared({ redis: REDIS_URL, node_count: 2, node_id: id, sync_interval: 100, prefix: prefix + tag })!;
  const node = await startSharedNode(cfg, { client: { in_flight: 0 }, connection } as { client?: unknown });
  const t0 = Date.now();
  while (node.share.degraded && Date.now() - t0 < 3000) await sleep(20);
  assert.equal(node.share.state, 'ok', `node ${id} reached Redis`);
  const bus = new EventBus({ node: id });
  const connEvents: EdgeEvent[] = [];
  bus.subscribe((e) => connEvents.push(e));
  const conn = new ConnectionGuard(connectionGuardConfig(normalizeConnectionLimits(connection), { nodeCount: 2 }), { guard: node.guard, share: node.share, bus });
  return { ...node, conn, connEvents };
}

/** Two sync rounds on each node: each has pushed its counts and pulled the other's. */
async function syncBoth(a: Node, b: Node): Promise<void> {
  for (let i = 0; i < 2; i++) {
    for (const n of [a, b]) {
      while (n.share.syncInFlight) await sleep(5);
      await n.share.syncNow();
    }
  }
}

test('conn_rate is summed across two nodes sharing Redis', async (t) => {
  if (!(await redisReachable())) { t.skip('skipped: no redis'); return; }

  await t.test('both nodes\' client tables show the sum of the connections each admitted', async () => {
    const connection = { rate: { limit: 1000, window: '10s' }, concurrent: false };
    const a = await startNode('node-a', connection, ':sum');
    const b = await startNode('node-b', connection, ':sum');
    try {
      const key = '203.0.113.50';
      const now = Date.now();
      for (let i = 0; i < 30; i++) assert.equal(a.conn.open(key, key, 'main', now), CONN_ADMIT);
      for (let i = 0; i < 20; i++) assert.equal(b.conn.open(key, key, 'main', now), CONN_ADMIT);
      await syncBoth(a, b);
      const later = Date.now();
      for (const n of [a, b]) {
        const e = n.guard.table.entry(key, later);
        assert.equal(e?.conn_rate, 50, `${n.share.nodeId}: conn_rate summed over both nodes`);
        assert.equal(n.conn.connRateOf(key, later), 50);
      }
      assert.equal(a.guard.table.entry(key, later)?.conn_cur, 30, 'conn_cur stays per node');
      assert.equal(b.guard.table.entry(key, later)?.conn_cur, 20);
    } finally { await stopSharedNodes(a, b); }
  });

  await t.test('a client over the summed limit is refused on the node it had not used yet', async () => {
    const L = 50;
    const connection = { rate: { limit: L, window: '10s' }, concurrent: false };
    const a = await startNode('node-a', connection, ':limit');
    const b = await startNode('node-b', connection, ':limit');
    try {
      const key = '203.0.113.51';
      // Node A alone: until its first pull it holds the client to limit / node_count.
      let onA = 0;
      for (let i = 0; i < L; i++) if (a.conn.open(key, key, 'main', Date.now()) === CONN_ADMIT) onA++;
      assert.equal(onA, L / 2, 'a key not yet summed is held to limit / node_count');
      await syncBoth(a, b);
      // Node B has never seen the client, but knows A's 25: it admits only what is left of the limit.
      let onB = 0, refused = 0;
      for (let i = 0; i < L; i++) {
        const v = b.conn.open(key, key, 'main', Date.now());
        if (v === CONN_ADMIT) onB++; else { assert.equal(v, CONN_RATE); refused++; }
      }
      assert.ok(onB >= 1 && onA + onB <= L, `A admitted ${onA}, B ${onB}: together within the limit of ${L}`);
      assert.ok(refused > 0);
      const ev = b.connEvents.filter((e) => e.type === 'guard');
      assert.equal(ev.length, refused);
      assert.equal(ev[0].reason, 'conn_rate');
      assert.ok((ev[0].counters as Record<string, number>).conn_rate >= onA, `event counters show the summed rate: ${JSON.stringify(ev[0].counters)}`);
      await syncBoth(a, b);
      // Now A knows B's connections too: it refuses the client as well.
      assert.equal(a.conn.open(key, key, 'main', Date.now()), CONN_RATE);
      // A's entry may have gone cold meanwhile (pulled only 5 rounds after its last use, and the
      // background timer adds rounds on a slow machine): then it shows A's own count until the key —
      // touched again by the refused open — is pulled once more. After that pull it shows the sum.
      await syncBoth(a, b);
      assert.equal(a.guard.table.entry(key, Date.now())?.conn_rate, onA + onB);
    } finally { await stopSharedNodes(a, b); }
  });
});
