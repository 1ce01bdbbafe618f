import { test } from 'node:test';
import assert from 'node:assert/strict';
import { acquireNow, backend, countPicks, harness, health, pickName, req, server, sleep, waitFor } from './helpers.js';
import { startOrigin } from '../harness/origin.js';
import type { EdgeEvent } from '../../edge/observe/events/bus.js';
import type { BackendPool } from '../../edge/backend/types.js';

const stateOf = (pool: BackendPool, name: string): string => pool.servers().find((s) => s.name === name)!.state;
const healthEvents = (events: EdgeEvent[], server: string): EdgeEvent[] => events.filter((e) => e.type === 'health' && e.server === server);

test('active check: a killed server is marked down after `fall` failed checks, back up after `rise`, then ramps (slow start)', async () => {
  const a = await startOrigin('a');
  const b = await startOrigin('b');
  const { pool, events, clock } = harness(backend([
    server('a', { url: a.url, weight: 10 }),
    server('b', { url: b.url, weight: 10, slowstartMs: 10_000 }),
  ], { health: health({ intervalMs: 40, timeoutMs: 200, rise: 2, fall: 3 }) }));
  try {
    pool.start();
    await waitFor('first checks', () => a.healthHits >= 2 && b.healthHits >= 2, 2000);
    assert.equal(stateOf(pool, 'b'), 'up');
    assert.equal(pool.servers()[1]!.effectiveWeight, 10, 'no slow start at first start');
    assert.match(pool.servers()[1]!.checkStatus!, /^L7OK 200 in /);
    const killedAt = Date.now();
    await b.close();
    await waitFor('b down', () => stateOf(pool, 'b') === 'down', 3000);
    const tookMs = Date.now() - killedAt;
    assert.ok(tookMs >= 2 * 40, `down after ≥ fall-1 intervals (${tookMs}ms)`);
    const down = healthEvents(events, 'b');
    assert.equal(down.length, 1);
    assert.equal(down[0]!.backend, 'shop');
    assert.equal(down[0]!.from, 'up');
    assert.equal(down[0]!.to, 'down');
    assert.match(String(down[0]!.reason), /Layer4 connection problem: ECONNREFUSED; 3 consecutive failed checks/);
    assert.deepEqual((down[0]!.check as { status: string }).status, 'L4CON');
    assert.equal(typeof (down[0]!.check as { durationMs: number }).durationMs, 'number');
    // traffic moves to a
    assert.deepEqual([...countPicks(pool, 100).keys()], ['a']);

    await b.reopen(); // the same port
    const t0 = clock.now();
    await waitFor('b back up', () => stateOf(pool, 'b') === 'up', 3000);
    const up = healthEvents(events, 'b')[1]!;
    assert.equal(up.from, 'down');
    assert.equal(up.to, 'up');
    assert.match(String(up.reason), /2 consecutive successful checks/);
    assert.equal((up.check as { status: string }).status, 'L7OK');
    // slow start: starts near 1 % of its weight and ramps linearly (driven by the manual clock)
    assert.equal(clock.now(), t0);
    assert.ok(pool.servers()[1]!.effectiveWeight <= 0.1);
    const share = (): number => (countPicks(pool, 2000).get('b') ?? 0) / 2000;
    assert.ok(share() < 0.03, 'b gets a trickle right after coming back');
    clock.tick(5000);
    assert.equal(pool.servers()[1]!.effectiveWeight, 5);
    const mid = share();
    assert.ok(Math.abs(mid - 1 / 3) < 0.02, `half-way share ${mid} ≈ 5/15`);
    clock.tick(5000);
    assert.equal(pool.servers()[1]!.effectiveWeight, 10);
    const full = share();
    assert.ok(Math.abs(full - 0.5) < 0.02, `after slowstart share ${full} ≈ 1/2`);
  } finally {
    pool.stop();
    await a.close();
    await b.close();
  }
});

test('active check: wrong status (L7STS) and no answer (L7TOUT) mark a server down; expectStatus is honoured', async () => {
  const wrong = await startOrigin('wrong');
  const hang = await startOrigin('hang');
  const only204 = await startOrigin('only204');
  wrong.healthStatus = 503;
  hang.healthStatus = 0;
  only204.healthStatus = 204;
  const { pool, events } = harness(backend([
    server('wrong', { url: wrong.url }),
    server('hang', { url: hang.url }),
    server('ok204', { url: only204.url }),
  ], { health: health({ intervalMs: 30, timeoutMs: 80, fall: 2, expectStatus: [204] }) }));
  try {
    pool.start();
    await waitFor('both down', () => stateOf(pool, 'wrong') === 'down' && stateOf(pool, 'hang') === 'down', 3000);
    const ev = (n: string): EdgeEvent => healthEvents(events, n)[0]!;
    assert.equal((ev('wrong').check as { status: string; code: number }).status, 'L7STS');
    assert.equal((ev('wrong').check as { code: number }).code, 503);
    assert.match(String(ev('wrong').reason), /Layer7 wrong status 503/);
    assert.equal((ev('hang').check as { status: string }).status, 'L7TOUT');
    await sleep(100);
    assert.equal(stateOf(pool, 'ok204'), 'up');
    assert.equal(healthEvents(events, 'ok204').length, 0);
  } finally {
    pool.stop();
    await Promise.all([wrong.close(), hang.close(), only204.close()]);
  }
});

test('passive: N consecutive connect failures mark a server down; a success in between resets the count', () => {
  const { pool, events } = harness(backend([server('a'), server('b')], { health: health({ intervalMs: 0, passiveFailures: 3 }) }));
  const failOn = (name: string, outcome: 'connect_error' | 'http_5xx' | 'ok'): void => {
    const r = acquireNow(pool, req({ exclude: [name === 'a' ? 'b' : 'a'] }));
    assert.equal(r.server!.name, name);
    pool.release(r.server!, outcome);
  };
  failOn('a', 'connect_error');
  failOn('a', 'http_5xx');
  failOn('a', 'ok');
  failOn('a', 'connect_error');
  failOn('a', 'connect_error');
  assert.equal(stateOf(pool, 'a'), 'up', '2 failures after a success');
  failOn('a', 'connect_error');
  assert.equal(stateOf(pool, 'a'), 'down');
  const ev = healthEvents(events, 'a');
  assert.equal(ev.length, 1);
  assert.match(String(ev[0]!.reason), /3 consecutive failures on live traffic \(last: connect_error\)/);
  assert.equal((ev[0]!.check as { status: string }).status, 'PASSIVE');
  assert.deepEqual([...countPicks(pool, 20).keys()], ['b']);
});

test('passive without active checks: the server comes back after the cool-down', async () => {
  const { pool, events, clock } = harness(backend([server('a'), server('b')], { health: health({ intervalMs: 0, passiveFailures: 2, passiveCooldownMs: 10_000 }) }));
  for (let i = 0; i < 2; i++) {
    const r = acquireNow(pool, req({ exclude: ['b'] }));
    pool.release(r.server!, 'reset');
  }
  assert.equal(stateOf(pool, 'a'), 'down');
  clock.tick(9_999);
  countPicks(pool, 4);
  assert.equal(stateOf(pool, 'a'), 'down');
  clock.tick(1);
  await waitFor('cool-down revival by the housekeeping tick', () => stateOf(pool, 'a') === 'up', 1000);
  const ev = healthEvents(events, 'a');
  assert.equal(ev[1]!.to, 'up');
  assert.equal((ev[1]!.check as { status: string }).status, 'COOLDOWN');
  assert.ok(countPicks(pool, 10).has('a'));
});

test('passive with active checks: down until the checks bring it back', async () => {
  const a = await startOrigin('a');
  const b = await startOrigin('b');
  const { pool } = harness(backend([server('a', { url: a.url }), server('b', { url: b.url })], {
    health: health({ intervalMs: 40, rise: 2, fall: 2, passiveFailures: 1 }),
  }));
  try {
    const r = acquireNow(pool, req({ exclude: ['b'] }));
    pool.release(r.server!, 'http_5xx');
    assert.equal(stateOf(pool, 'a'), 'down');
    const hitsAtDown = a.healthHits;
    pool.start();
    await waitFor('checks revive a', () => stateOf(pool, 'a') === 'up', 3000);
    assert.ok(a.healthHits - hitsAtDown >= 2, 'took `rise` successful checks');
  } finally {
    pool.stop();
    await a.close();
    await b.close();
  }
});

test('backup servers take traffic only while every primary is down, drained or in maintenance', () => {
  const { pool } = harness(backend([server('web1'), server('web2'), server('dr1', { backup: true }), server('dr2', { backup: true })]));
  assert.deepEqual([...countPicks(pool, 100).keys()].sort(), ['web1', 'web2']);
  pool.setState('web1', 'down');
  assert.deepEqual([...countPicks(pool, 100).keys()], ['web2']);
  pool.setState('web2', 'drain');
  assert.deepEqual([...countPicks(pool, 100).keys()].sort(), ['dr1', 'dr2']);
  pool.setState('web2', 'maint');
  assert.deepEqual([...countPicks(pool, 100).keys()].sort(), ['dr1', 'dr2']);
  pool.setState('web1', 'up');
  assert.deepEqual([...countPicks(pool, 100).keys()], ['web1']);
  pool.setState('web1', 'down');
  pool.setState('dr1', 'down');
  pool.setState('dr2', 'down');
  assert.equal(pickName(pool), 'error:no_server');
});

test('a full primary queues rather than spilling to the backup', () => {
  const { pool } = harness(backend([server('web1', { maxconn: 1 }), server('dr1', { backup: true })]));
  acquireNow(pool);
  let queued = true;
  pool.acquire(req(), () => { queued = false; });
  assert.ok(queued);
  assert.equal(pool.queueLength(), 1);
  pool.stop();
});

test('admin states: drain and maint take no new traffic, maint ignores checks, every change is an event', async () => {
  const o = await startOrigin('o');
  const { pool, events } = harness(backend([server('a', { url: o.url }), server('b', { url: o.url })], {
    health: health({ intervalMs: 30, fall: 1, rise: 1 }),
  }));
  try {
    pool.start();
    const held = acquireNow(pool, req({ exclude: ['b'] })).server!;
    assert.ok(pool.setState('a', 'drain'));
    assert.deepEqual([...countPicks(pool, 20).keys()], ['b']);
    assert.equal(pool.servers()[0]!.active, 1, 'in-flight request on a drained server finishes');
    pool.release(held, 'ok');
    assert.equal(pool.servers()[0]!.active, 0);
    assert.ok(pool.setState('a', 'maint'));
    o.healthStatus = 500; // checks fail, but a is in maintenance: no report
    await waitFor('b is still checked and goes down', () => stateOf(pool, 'b') === 'down', 3000);
    const hits = o.healthHits;
    await waitFor('more checks on both', () => o.healthHits >= hits + 4, 3000);
    assert.equal(stateOf(pool, 'a'), 'maint');
    assert.ok(!pool.setState('a', 'bogus' as 'up'), 'unknown state refused');
    assert.ok(!pool.setState('nope', 'up'), 'unknown server refused');
    const seq = healthEvents(events, 'a').map((e) => `${String(e.from)}>${String(e.to)}`);
    assert.deepEqual(seq, ['up>drain', 'drain>maint']);
    assert.equal(healthEvents(events, 'a')[0]!.reason, 'admin: set state drain');
    assert.equal((healthEvents(events, 'a')[0]!.check as { status: string }).status, 'ADMIN');
    o.healthStatus = 200;
    pool.setState('a', 'up');
    await waitFor('b back', () => stateOf(pool, 'b') === 'up', 2000);
    await sleep(100);
    assert.equal(stateOf(pool, 'a'), 'up');
  } finally {
    pool.stop();
    await o.close();
  }
});

test('servers() reports what the admin API shows', () => {
  const { pool } = harness(backend([server('web1', { url: 'http://127.0.0.1:8081', weight: 10, maxconn: 100 }), server('dr1', { url: 'http://127.0.0.1:8083', backup: true })]));
  const l = acquireNow(pool).server!;
  const info = pool.servers();
  assert.deepEqual(info[0], {
    backend: 'shop', name: 'web1', url: 'http://127.0.0.1:8081', state: 'up', weight: 10, effectiveWeight: 10, backup: false, site: null,
    active: 1, activeLocal: 1, maxconn: 100, queued: 0, backendQueued: 0, total: 1, checkStatus: null, lastChange: null,
  });
  assert.equal(info[1]!.backup, true);
  pool.release(l, 'ok');
  pool.release(l, 'ok'); // double release is ignored, counts stay sane
  assert.equal(pool.servers()[0]!.active, 0);
});

test('bad backend config is refused with every problem and its key path', () => {
  assert.throws(
    () => harness(backend([server('a', { weight: 300 }), server('a', { maxconn: -1 }), server('c', { url: 'ftp://x' })], { queue: { max: -1, timeoutMs: 0 } })),
    (e: Error) => {
      for (const frag of ['servers[0].weight', 'servers[1].name: duplicate', 'servers[1].maxconn', 'servers[2].url', 'queue.max', 'queue.timeout']) {
        assert.ok(e.message.includes(`backends.shop.${frag}`), `missing ${frag} in ${e.message}`);
      }
      return true;
    },
  );
});
