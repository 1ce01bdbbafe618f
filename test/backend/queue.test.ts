import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { acquireNow, backend, harness, req, server, sleep, waitFor } from './helpers.js';
import { holdHandler, startOrigin } from '../harness/origin.js';
import { createBackendPool } from '../../edge/backend/pool.js';
import { EventBus } from '../../edge/observe/events/bus.js';
import { systemClock } from '../../lib/clock.js';
import type { AcquireResult, BackendConfig } from '../../edge/backend/types.js';

function oneSlot(over: Partial<BackendConfig> = {}): BackendConfig {
  return backend([server('only', { maxconn: 1 })], over);
}

test('queue is FIFO within a priority class; release hands the slot to the head', () => {
  const { pool } = harness(oneSlot());
  const hold = acquireNow(pool);
  const order: number[] = [];
  const leases: AcquireResult[] = [];
  for (let i = 0; i < 5; i++) pool.acquire(req(), (r) => { order.push(i); leases.push(r); });
  assert.equal(pool.queueLength(), 5);
  assert.equal(pool.servers()[0]!.backendQueued, 5);
  pool.release(hold.server!, 'ok');
  for (let i = 0; i < 5; i++) {
    assert.equal(order.length, i + 1);
    assert.equal(pool.servers()[0]!.active, 1, 'never above maxconn');
    pool.release(leases[i]!.server!, 'ok');
  }
  assert.deepEqual(order, [0, 1, 2, 3, 4]);
  assert.equal(pool.queueLength(), 0);
});

test('lower priority class is served first (checkout before browsing before bots)', () => {
  const { pool } = harness(oneSlot());
  const hold = acquireNow(pool);
  const served: string[] = [];
  const leases: AcquireResult[] = [];
  const add = (tag: string, priority: number): void => {
    pool.acquire(req({ priority }), (r) => { served.push(tag); leases.push(r); });
  };
  add('bot1', 2); add('browse1', 1); add('checkout1', 0); add('bot2', 2); add('browse2', 1); add('checkout2', 0);
  add('odd', Number.NaN); // → default class 1
  pool.release(hold.server!, 'ok');
  while (leases.length > 0) pool.release(leases.shift()!.server!, 'ok');
  assert.deepEqual(served, ['checkout1', 'checkout2', 'browse1', 'browse2', 'odd', 'bot1', 'bot2']);
});

test('queue timeout: waiters past queue.timeout get queue_timeout, younger ones stay', async () => {
  const { pool, clock } = harness(oneSlot({ queue: { max: 10, timeoutMs: 1000 } }));
  const hold = acquireNow(pool);
  const results: (AcquireResult & { tag: string })[] = [];
  pool.acquire(req(), (r) => results.push({ ...r, tag: 'old' }));
  clock.tick(600);
  pool.acquire(req(), (r) => results.push({ ...r, tag: 'young' }));
  clock.tick(401); // old: 1001 ms, young: 401 ms
  await waitFor('expiry tick', () => results.length === 1, 1000);
  assert.equal(results[0]!.tag, 'old');
  assert.equal(results[0]!.error, 'queue_timeout');
  assert.equal(results[0]!.server, null);
  assert.equal(results[0]!.queuedMs, 1001);
  assert.equal(pool.queueLength(), 1);
  await sleep(120);
  assert.equal(results.length, 1, 'the younger waiter is still queued');
  pool.release(hold.server!, 'ok');
  assert.equal(results[1]!.tag, 'young');
  assert.equal(results[1]!.server!.name, 'only');
  assert.equal(results[1]!.queuedMs, 401);
  pool.release(results[1]!.server!, 'ok');
});

test('beyond queue.max waiting requests: queue_full at once', () => {
  const { pool } = harness(oneSlot({ queue: { max: 3, timeoutMs: 1000 } }));
  acquireNow(pool);
  for (let i = 0; i < 3; i++) pool.acquire(req(), () => { /* waits */ });
  const r = acquireNow(pool);
  assert.equal(r.error, 'queue_full');
  assert.equal(pool.queueLength(), 3);
  pool.stop();
});

test('queue.max 0 disables queueing', () => {
  const { pool } = harness(oneSlot({ queue: { max: 0, timeoutMs: 1000 } }));
  acquireNow(pool);
  assert.equal(acquireNow(pool).error, 'queue_full');
});

test('a cancelled waiter leaves the queue and its callback never runs', () => {
  const { pool } = harness(oneSlot());
  const hold = acquireNow(pool);
  let cancelledRan = false;
  let second: AcquireResult | null = null;
  const t = pool.acquire(req(), () => { cancelledRan = true; });
  pool.acquire(req(), (r) => { second = r; });
  assert.equal(pool.queueLength(), 2);
  t.cancel();
  t.cancel(); // idempotent
  assert.equal(pool.queueLength(), 1);
  pool.release(hold.server!, 'ok');
  assert.equal(cancelledRan, false);
  assert.ok(second !== null && (second as AcquireResult).server !== null);
});

test('no server up at all (and no backup): no_server at once, never queued', () => {
  const { pool } = harness(backend([server('a', { maxconn: 1 }), server('b', { maxconn: 1 })]));
  pool.setState('a', 'down');
  pool.setState('b', 'maint');
  assert.equal(acquireNow(pool).error, 'no_server');
  assert.equal(pool.queueLength(), 0);
});

test('waiters get no_server when every server goes down while they wait; stop() times the rest out', () => {
  const { pool } = harness(backend([server('a', { maxconn: 1 })]));
  acquireNow(pool);
  const got: AcquireResult[] = [];
  pool.acquire(req(), (r) => got.push(r));
  pool.setState('a', 'down');
  assert.equal(got[0]!.error, 'no_server');
  pool.setState('a', 'up');
  const h2 = harness(backend([server('a', { maxconn: 1 })]));
  acquireNow(h2.pool);
  h2.pool.acquire(req(), (r) => got.push(r));
  h2.pool.stop();
  assert.equal(got[1]!.error, 'queue_timeout');
});

test('1,000 concurrent acquirers, maxconn 10 per server, random hold times on a real origin: never above maxconn', async () => {
  const origins = await Promise.all([startOrigin('o1', holdHandler), startOrigin('o2', holdHandler)]);
  const cfg = backend(origins.map((o, i) => server(`s${i}`, { url: o.url, maxconn: 10 })), {
    balance: 'leastconn',
    queue: { max: 2000, timeoutMs: 30_000 },
  });
  const pool = createBackendPool(cfg, { bus: new EventBus(), clock: systemClock });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 100 });
  let overMax = 0;
  let maxQueue = 0;
  const perServerActive = new Map<string, number>();
  const one = (i: number): Promise<string> => new Promise((resolve, reject) => {
    pool.acquire(req({ clientKey: `k${i}`, priority: i % 3 }), (r) => {
      if (r.server === null) { reject(new Error(`acquire ${i}: ${r.error}`)); return; }
      const s = r.server;
      const n = (perServerActive.get(s.name) ?? 0) + 1;
      perServerActive.set(s.name, n);
      if (n > 10) overMax++;
      // At least 5 ms: the origin sees its 10 concurrent requests overlap even when a loaded machine delivers them late.
      const ms = 5 + Math.floor(Math.random() * 8);
      http.get(`${s.url}/work?ms=${ms}`, { agent }, (res) => {
        res.resume();
        res.on('end', () => {
          perServerActive.set(s.name, perServerActive.get(s.name)! - 1);
          pool.release(s, 'ok');
          resolve(s.name);
        });
      }).on('error', reject);
    });
    maxQueue = Math.max(maxQueue, pool.queueLength());
  });
  try {
    const names = await Promise.all(Array.from({ length: 1000 }, (_, i) => one(i)));
    assert.equal(names.length, 1000);
    assert.equal(overMax, 0);
    for (const o of origins) assert.ok(o.maxActive <= 10, `origin saw ${o.maxActive} concurrent requests`);
    assert.ok(origins.every((o) => o.maxActive === 10), `both servers were used to their maxconn: ${origins.map((o) => o.maxActive).join(', ')}`);
    assert.ok(maxQueue > 900, `requests really queued (max queue ${maxQueue})`);
    assert.equal(pool.queueLength(), 0);
    assert.deepEqual(pool.servers().map((s) => s.active), [0, 0]);
  } finally {
    pool.stop();
    agent.destroy();
    await Promise.all(origins.map((o) => o.close()));
  }
});

test('waiter callbacks that release at once (re-entrant) drain the whole queue in order; a throwing callback is reported', () => {
  const { pool, events } = harness(oneSlot());
  const hold = acquireNow(pool);
  const order: number[] = [];
  for (let i = 0; i < 4; i++) {
    pool.acquire(req(), (r) => {
      order.push(i);
      pool.release(r.server!, 'ok');
      if (i === 2) throw new Error('pipeline bug');
    });
  }
  pool.release(hold.server!, 'ok');
  assert.deepEqual(order, [0, 1, 2, 3]);
  assert.equal(pool.queueLength(), 0);
  assert.equal(pool.servers()[0]!.active, 0);
  const err = events.find((e) => e.type === 'error');
  assert.ok(err && String(err.reason).includes('pipeline bug'));
});
