// @slow
// Why: either node of a pair must show the whole cluster, and a cluster-wide p99 must be the p99 of
// every request of both nodes (merged sketches, never an average of two p99s). When Redis goes away
// each node keeps recording and shows its own history; what it recorded meanwhile reaches the other
// node once Redis is back.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Sim, SimPool, MINUTE, rng } from './sim.js';
import { ALPHA } from '../../edge/history/sketch.js';
import { startPrivateRedis, type PrivateRedis } from '../harness/redis.js';

const pools = () => [new SimPool('shop', [{ name: 'web1', active: 0, maxconn: 100 }, { name: 'web2', active: 0, maxconn: 100 }])];

/** Two simulated nodes sharing a private redis-server (null, with the test skipped, when there is none). */
async function startTwoNodes(t: TestContext): Promise<{ a: Sim; b: Sim; redis: PrivateRedis } | null> {
  const redis = await startPrivateRedis();
  if (redis === null) { t.skip('skipped: no redis-server on PATH'); return null; }
  t.after(() => redis.stop());
  const conn = { url: redis.url, prefix: `histtest-${randomUUID()}`, commandTimeoutMs: 1000 };
  const a = new Sim(pools(), { node: 'node-a', redis: conn });
  const b = new Sim(pools(), { node: 'node-b', redis: conn });
  await a.service.start(false);
  await b.service.start(false);
  t.after(() => Promise.all([a.service.stop(), b.service.stop()]));
  return { a, b, redis };
}

test('two nodes, one Redis: merged p99 equals the p99 of all requests within α; either node shows the cluster', async (t) => {
  const nodes = await startTwoNodes(t);
  if (nodes === null) return;
  const { a, b } = nodes;

  // Node a: fast answers; node b: a slow tail — the cluster's p99 is neither node's.
  const ra = rng(1);
  const rb = rng(2);
  const all: number[] = [];
  const minutes = 10;
  for (let m = 0; m < minutes; m++) {
    for (let i = 0; i < 3000; i++) { const v = 5 + ra() * 40; a.service.recorder.request('shop', i % 2 ? 'web1' : 'web2', 200, v, 0); all.push(v); }
    for (let i = 0; i < 1000; i++) { const v = rb() < 0.1 ? 800 + rb() * 2000 : 20 + rb() * 60; b.service.recorder.request('shop', i % 2 ? 'web1' : 'web2', 200, v, 0); all.push(v); }
    a.pools[0].list[0].active = 30; b.pools[0].list[0].active = 50;
    a.now += MINUTE; b.now += MINUTE;
    a.service.sample(); b.service.sample();
    a.service.tick(); b.service.tick();
  }
  await a.service.syncNow(); await b.service.syncNow();
  await a.service.syncNow();
  assert.equal(a.service.status().cluster.state, 'ok');
  assert.deepEqual(a.service.status().nodes, ['node-a', 'node-b']);

  all.sort((x, y) => x - y);
  const exact = (q: number): number => all[Math.floor(q * (all.length - 1))];
  for (const svc of [a.service, b.service]) {
    // 1 h at one-minute resolution: merge the minutes' sketches of the backend over the whole run.
    const h = svc.history('1h', { kind: 'backend', backend: 'shop' });
    const pts = h.series.find((s) => s.key === 'shop')!.points;
    assert.equal(pts.reduce((s, p) => s + (p.requests as number), 0), all.length, 'every request of both nodes');
    // The 5-minute roll-ups (7d range) cover two buckets; their p99 comes from merged sketches too.
    const cap = svc.capacity({ days: 1 });
    const row = cap.rows.find((r) => r.key === 'shop');
    assert.ok(row, 'backend row in the capacity view');
    // Concurrency adds up over the nodes: 30 + 50 on web1.
    const w1 = svc.history('1h', { kind: 'server', backend: 'shop', server: 'web1' }).series[0].points;
    assert.equal(w1[w1.length - 1].conc_peak, 80);
    assert.equal(w1[w1.length - 1].maxconn, 200, 'each node allows maxconn: the cluster allowance is their sum');
  }
  // One record over the run: query the store directly at the 5-minute tier after a roll-up.
  for (const svc of [a.service, b.service]) {
    svc.store.maintain(a.now + 10 * MINUTE);
  }
  await a.service.syncNow(); await b.service.syncNow(); await a.service.syncNow();
  for (const svc of [a.service, b.service]) {
    const recs = svc.store.query(1, 0, a.now + 10 * MINUTE, { kinds: ['backend'] });
    const merged = recs[0];
    for (const r of recs.slice(1)) merged.sketch!.merge(r.sketch!);
    assert.equal(merged.sketch!.count, all.length);
    for (const q of [0.5, 0.95, 0.99]) {
      const est = merged.sketch!.quantile(q)!;
      assert.ok(Math.abs(est - exact(q)) <= ALPHA * exact(q), `${svc.store.node}: p${q * 100} ${est.toFixed(3)} vs exact ${exact(q).toFixed(3)} (α ${ALPHA})`);
    }
    process.stdout.write(`# ${svc.store.node}: merged p99 ${merged.sketch!.quantile(0.99)!.toFixed(2)} ms, exact ${exact(0.99).toFixed(2)} ms over ${all.length} requests\n`);
  }
});

test('Redis down: each node keeps its own history and says degraded; news reach the peer when Redis is back', async (t) => {
  const nodes = await startTwoNodes(t);
  if (nodes === null) return;
  const { a, b, redis } = nodes;
  const minute = (n: number): void => {
    for (let i = 0; i < n; i++) a.service.recorder.request('shop', 'web1', 200, 10, 0);
    a.now += MINUTE; b.now += MINUTE;
    a.service.tick(); b.service.tick();
  };
  minute(100);
  await a.service.syncNow(); await b.service.syncNow();
  const seen = (): number => b.service.history('1h', {}).total.reduce((s, p) => s + (p.requests as number), 0);
  assert.equal(seen(), 100);

  await redis.kill();
  minute(7);
  await a.service.syncNow();
  assert.equal(a.service.status().cluster.state, 'degraded');
  assert.ok(a.service.status().cluster.reason, 'the reason is given');
  assert.equal(a.service.history('1h', {}).total.reduce((s, p) => s + (p.requests as number), 0), 107, 'node a still shows its own history');

  await redis.restart();
  // ioredis reconnects on its own; rounds until the state is ok again.
  for (let i = 0; i < 50 && a.service.status().cluster.state !== 'ok'; i++) { await new Promise((r) => setTimeout(r, 100)); await a.service.syncNow(); }
  assert.equal(a.service.status().cluster.state, 'ok');
  // The restarted Redis lost everything (no persistence): node a's queued minute arrives; b keeps what it had.
  for (let i = 0; i < 50 && seen() !== 107; i++) { await new Promise((r) => setTimeout(r, 100)); await b.service.syncNow(); }
  assert.equal(seen(), 107);
});
