// Counters summed across nodes and bans shared through a real Redis (REDIS_URL or 127.0.0.1:6379).
// Two independent node instances in one process, each with its own ioredis connections and node id.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { GUARD_ADMIT, GUARD_BANNED } from '../../edge/shield/guard.js';
import { normalizeShared } from '../../edge/shield/stick/config.js';
import type { SharedConfig } from '../../edge/shield/stick/config.js';
import { RedisShare } from '../../edge/shield/stick/redis.js';
import { StickCounterStore } from '../../edge/shield/stick/counter-store.js';
import { REDIS_URL, redisReachable } from '../harness/redis.js';
import { startSharedNode, stopSharedNodes, type SharedNode } from './helpers.js';
import { sleep } from '../harness/wait.js';

const prefix = `pctest${process.pid}x${Date.now()}`;

type Node = SharedNode & { cfg: SharedConfig };

async function startNode(id: string, limits: unknown, extraPrefix = '', syncMs = 100, extra: Record<string, unknown> = {}): Promise<Node> {
  const cfg = normalizeShared({ redis: REDIS_URL, node_count: 2, node_id: id, sync_interval: syncMs, prefix: prefix + extraPrefix, ...extra })!;
  const node = await startSharedNode(cfg, limits as { client?: unknown });
  const t0 = Date.now();
  while (node.share.degraded && Date.now() - t0 < 3000) await sleep(20);
  assert.equal(node.share.state, 'ok', `node ${id} reached Redis`);
  return { ...node, cfg };
}

test('shared through Redis', async (t) => {
  if (!(await redisReachable())) { t.skip('skipped: no redis'); return; }

  // A flood of several windows from one client alternating between two nodes: every sliding window
  // (not just the first) must stay within 1.1 × L + 5, and the client still gets its budget.
  const flood = async (L: number, windowMs: number, syncMs: number, durationMs: number, tag: string): Promise<void> => {
    const limits = { client: { requests: { limit: L, window: windowMs }, in_flight: 0 } };
    const a = await startNode('node-a', limits, `:sum${tag}`, syncMs);
    const b = await startNode('node-b', limits, `:sum${tag}`, syncMs);
    try {
      const key = '203.0.113.77';
      const admittedAt: number[] = [];
      let attempts = 0;
      const t0 = Date.now();
      while (Date.now() - t0 < durationMs) {
        for (const n of [a, b]) {
          attempts++;
          const now = Date.now();
          if (n.guard.admit(key, now) === GUARD_ADMIT) { admittedAt.push(now); n.guard.finish(key, 200, 0, 0, now); }
        }
        await sleep(1);
      }
      let worst = 0, worstEnd = 0;
      for (let i = 0, j = 0; i < admittedAt.length; i++) {
        while (admittedAt[i] - admittedAt[j] >= windowMs) j++;
        if (i - j + 1 > worst) { worst = i - j + 1; worstEnd = admittedAt[i] - t0; }
      }
      const windows = durationMs / windowMs;
      assert.ok(attempts > 2 * (durationMs / windowMs) * L, `flood of ${attempts} attempts`);
      assert.ok(worst <= 1.1 * L + 5, `worst sliding ${windowMs} ms window admitted ${worst} (ending at +${worstEnd} ms), limit ${L}`);
      assert.ok(admittedAt.length >= 0.8 * L * Math.floor(windows), `admitted ${admittedAt.length} over ${windows} windows: the summed limit still lets the client use its budget`);
      assert.ok(a.share.syncFailures + b.share.syncFailures === 0, 'no failed sync round');
    } finally { await stopSharedNodes(a, b); }
  };

  await t.test('two nodes, one client split evenly, flood over 3+ windows: every sliding window ≤ 1.1 × L + 5', async () => {
    await flood(100, 2000, 100, 7000, 'a');
  });

  await t.test('same with a limit the flood reaches only gradually (uneven traffic inside buckets), 200 ms sync', async () => {
    await flood(1000, 2000, 200, 7000, 'b');
  });

  await t.test('a client seen by one node only reaches the whole summed limit within ~1 s (no margin for idle nodes)', async () => {
    const L = 200;
    const limits = { client: { requests: { limit: L, window: '4s' }, in_flight: 0 } };
    const a = await startNode('node-a', limits, ':one', 200);
    const b = await startNode('node-b', limits, ':one', 200);
    try {
      const key = '203.0.113.88';
      let admitted = 0;
      const t0 = Date.now();
      while (Date.now() - t0 < 1200) {
        for (let i = 0; i < 2; i++) if (a.guard.admit(key, Date.now()) === GUARD_ADMIT) { admitted++; a.guard.finish(key, 200, 0, 0, Date.now()); }
        await sleep(1);
      }
      assert.ok(admitted >= 0.9 * L && admitted <= 1.1 * L + 5, `one node admitted ${admitted} in 1.2 s (limit ${L} summed over 2 nodes)`);
      // Node B, which never saw the client, refuses it now: the count is global.
      b.guard.admit(key, Date.now()) === GUARD_ADMIT && b.guard.finish(key, 200, 0, 0, Date.now());
      await sleep(450);
      let onB = 0;
      for (let i = 0; i < 50; i++) if (b.guard.admit(key, Date.now()) === GUARD_ADMIT) { onB++; b.guard.finish(key, 200, 0, 0, Date.now()); }
      assert.ok(admitted + onB <= 1.1 * L + 5, `A ${admitted} + B ${onB} within the summed limit`);
    } finally { await stopSharedNodes(a, b); }
  });

  await t.test('beyond shared.sync_keys a client is held to limit / node_count locally; entries come back when keys cool', async () => {
    const L = 20;
    const limits = { client: { requests: { limit: L, window: '10s' }, in_flight: 0 } };
    const a = await startNode('node-a', limits, ':pool', 100, { sync_keys: 100 });
    try {
      const now = Date.now();
      for (let i = 0; i < 100; i++) { const k = `10.9.0.${i}`; assert.equal(a.guard.admit(k, now), GUARD_ADMIT); a.guard.finish(k, 200, 0, 0, now); }
      const pool = a.guard.table.pool!;
      assert.equal(pool.active, 100, 'pool full');
      let admitted = 0;
      for (let i = 0; i < 100; i++) if (a.guard.admit('10.9.1.1', Date.now()) === GUARD_ADMIT) { admitted++; a.guard.finish('10.9.1.1', 200, 0, 0, Date.now()); }
      assert.ok(pool.overflows > 0, 'the 101st key found the pool full');
      assert.equal(admitted, L / 2, `a key outside the pool gets limit / node_count = ${L / 2}`);
      // Unused keys cool down (5 rounds) and give their entries back once their events are pushed.
      const t0 = Date.now();
      while (pool.active > 10 && Date.now() - t0 < 3000) await sleep(50);
      assert.ok(pool.active <= 10, `pool entries in use after cooling: ${pool.active}`);
    } finally { await stopSharedNodes(a); }
  });

  await t.test('a ban set on node A blocks on node B within 1 s, survives a restart, expires by itself', async () => {
    const limits = { client: { in_flight: 0 } };
    const a = await startNode('node-a', limits, ':ban');
    const b = await startNode('node-b', limits, ':ban');
    try {
      const key = '198.51.100.66';
      assert.equal(b.guard.admit(key, Date.now()), GUARD_ADMIT);
      b.guard.finish(key, 200, 0, 0, Date.now());
      const t0 = Date.now();
      a.bans.add(key, 3000, { reason: 'scanner', ruleId: 'r42', by: 'test' });
      while (b.guard.admit(key, Date.now()) !== GUARD_BANNED) {
        b.guard.finish(key, 200, 0, 0, Date.now());
        assert.ok(Date.now() - t0 < 1000, 'ban not visible on node B within 1 s');
        await sleep(5);
      }
      const seenMs = Date.now() - t0;
      assert.ok(seenMs < 1000, `visible after ${seenMs} ms`);
      const info = b.bans.isBanned(key, Date.now())!;
      assert.deepEqual([info.reason, info.ruleId, info.by, info.node], ['scanner', 'r42', 'test', 'node-a']);
      assert.ok(a.events.some((e) => e.type === 'ban' && e.key === key && e.who === 'test'));
      // A restarted edge (fresh BanList) reloads it from Redis.
      const c = await startNode('node-c', limits, ':ban');
      assert.ok(c.bans.isBanned(key, Date.now()), 'ban reloaded after restart');
      assert.equal(c.bans.list().length, 1);
      await stopSharedNodes(c);
      // Removal propagates.
      a.bans.add('192.0.2.9', 60_000, { reason: 'x', by: 'test' });
      await sleep(200);
      assert.ok(b.bans.isBanned('192.0.2.9', Date.now()));
      a.bans.remove('192.0.2.9', 'admin');
      await sleep(200);
      assert.equal(b.bans.isBanned('192.0.2.9', Date.now()), null, 'unban reached node B');
      // Expiry by itself.
      await sleep(Math.max(0, 3100 - (Date.now() - t0)));
      assert.equal(b.bans.isBanned(key, Date.now()), null, 'expired on B');
      assert.equal(a.guard.admit(key, Date.now()), GUARD_ADMIT);
    } finally { await stopSharedNodes(a, b); }
  });

  await t.test('rule counters (CounterStore) are summed across nodes', async () => {
    const mk = async (id: string): Promise<{ share: RedisShare; store: StickCounterStore }> => {
      const cfg = normalizeShared({ redis: REDIS_URL, node_count: 2, node_id: id, sync_interval: 100, prefix: `${prefix}:cs` })!;
      const share = new RedisShare(cfg);
      share.start();
      const t0 = Date.now();
      while (share.degraded && Date.now() - t0 < 3000) await sleep(20);
      return { share, store: new StickCounterStore({ share }) };
    };
    const a = await mk('a'), b = await mk('b');
    try {
      const now = Date.now();
      for (let i = 0; i < 30; i++) a.store.add('login_fail', 'user:alice', 60_000, 1, now);
      for (let i = 0; i < 20; i++) b.store.add('login_fail', 'user:alice', 60_000, 1, now);
      b.store.rate('login_fail', 'user:alice', 60_000, now);
      a.store.rate('login_fail', 'user:alice', 60_000, now);
      await sleep(350);
      const ra = a.store.rate('login_fail', 'user:alice', 60_000, Date.now());
      const rb = b.store.rate('login_fail', 'user:alice', 60_000, Date.now());
      assert.equal(Math.round(ra), 50);
      assert.equal(Math.round(rb), 50);
    } finally { await a.share.close(); await b.share.close(); }
  });

  // Leave no test keys behind.
  const r = new Redis(REDIS_URL);
  const keys = await r.keys(`{${prefix}*`);
  if (keys.length) await r.del(...keys);
  r.disconnect();
});
