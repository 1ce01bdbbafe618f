// The built-in per-client policy: in-flight and rate limits per client, global cap, worker threads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import {
  ClientGuard, guardConfigFrom, GUARD_ADMIT, GUARD_CLIENT_IN_FLIGHT, GUARD_CLIENT_RATE, GUARD_GLOBAL_IN_FLIGHT, GUARD_REASONS,
} from '../../edge/shield/guard.js';
import { ManualClock } from '../../lib/clock.js';

const acceptance = { client: { requests: { limit: 100, window: '10s', status: 429 }, in_flight: 20 } };

test('per-client in flight: the 21st concurrent request of one client gets 429, others pass', () => {
  const clock = new ManualClock(1_700_000_000_000);
  const g = new ClientGuard(guardConfigFrom(acceptance, null), { now: clock.now() });
  for (let i = 0; i < 20; i++) assert.equal(g.admit('203.0.113.1', clock.now()), GUARD_ADMIT);
  assert.equal(g.admit('203.0.113.1', clock.now()), GUARD_CLIENT_IN_FLIGHT);
  assert.equal(g.statusOf(GUARD_CLIENT_IN_FLIGHT), 429);
  assert.equal(GUARD_REASONS[GUARD_CLIENT_IN_FLIGHT].reason, 'client_in_flight');
  assert.equal(g.admit('203.0.113.2', clock.now()), GUARD_ADMIT, 'another client passes');
  g.finish('203.0.113.1', 200, 10, 100, clock.now());
  assert.equal(g.admit('203.0.113.1', clock.now()), GUARD_ADMIT, 'a finished request frees a place');
  assert.equal(g.inFlightOf('203.0.113.1'), 20);
  assert.equal(g.inFlightTotal, 21);
});

test('per-client request rate: 100 per 10 s, then 429 with Retry-After; the window slides', () => {
  const clock = new ManualClock(1_700_000_000_000);
  const g = new ClientGuard(guardConfigFrom(acceptance, null), { now: clock.now() });
  let admitted = 0;
  for (let i = 0; i < 300; i++) {
    const v = g.admit('198.51.100.7', clock.now());
    if (v === GUARD_ADMIT) { admitted++; g.finish('198.51.100.7', 200, 0, 0, clock.now()); }
    else {
      assert.equal(v, GUARD_CLIENT_RATE);
      assert.ok(g.retryAfter >= 1 && g.retryAfter <= 20, `Retry-After ${g.retryAfter}`);
    }
    clock.tick(10);
  }
  assert.equal(admitted, 100, 'exactly the limit in the first 3 s');
  assert.equal(g.admit('198.51.100.8', clock.now()), GUARD_ADMIT, 'another client is not affected');
  clock.tick(10_000);
  assert.equal(g.admit('198.51.100.7', clock.now()), GUARD_ADMIT, 'allowed again after the window');
  const e = g.table.entry('198.51.100.7', clock.now())!;
  assert.ok(e.http_err_rate >= 100, 'rejections count as errors of the client');
});

test('global in-flight cap answers 503', () => {
  const clock = new ManualClock(1_700_000_000_000);
  const g = new ClientGuard(guardConfigFrom({ client: { in_flight: 0 }, global: { in_flight: 5 } }, null), { now: clock.now() });
  for (let i = 0; i < 5; i++) assert.equal(g.admit(`10.0.0.${i}`, clock.now()), GUARD_ADMIT);
  assert.equal(g.admit('10.0.0.9', clock.now()), GUARD_GLOBAL_IN_FLIGHT);
  assert.equal(g.statusOf(GUARD_GLOBAL_IN_FLIGHT), 503);
  g.finish('10.0.0.1', 500, 0, 0, clock.now());
  assert.equal(g.admit('10.0.0.9', clock.now()), GUARD_ADMIT);
});

test('workers: one client spread over 4 threads is limited once, not per thread', async () => {
  const cfg = guardConfigFrom({ client: { requests: { limit: 200, window: '10s' }, in_flight: 8 } }, null, 4);
  const memory = ClientGuard.createShared(cfg);
  const guardUrl = pathToFileURL(path.resolve(import.meta.dirname, '../../edge/shield/guard.js')).href;
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.guardUrl).then(({ ClientGuard }) => {
      const g = new ClientGuard(workerData.cfg, { memory: workerData.memory });
      const now = Date.now();
      let admitted = 0, inflightRejects = 0, held = 0;
      // 2 requests held open per thread (4 threads × 2 = 8 = in_flight limit), then a flood.
      for (let i = 0; i < 2; i++) if (g.admit('192.0.2.50', now) === 0) held++;
      parentPort.postMessage({ held });
      parentPort.on('message', (phase) => {
        if (phase === 'check') {
          if (g.admit('192.0.2.50', now) === 3) inflightRejects++;
          parentPort.postMessage({ inflightRejects });
          return;
        }
        for (let i = 0; i < held; i++) g.finish('192.0.2.50', 200, 0, 0, now);
        for (let i = 0; i < 1000; i++) {
          if (g.admit('192.0.2.50', now) === 0) { admitted++; g.finish('192.0.2.50', 200, 0, 0, now); }
        }
        parentPort.postMessage({ admitted });
      });
    });`;
  const workers = Array.from({ length: 4 }, () => new Worker(code, { eval: true, workerData: { cfg, memory, guardUrl } }));
  const first = (w: Worker): Promise<{ held: number; admitted: number; inflightRejects: number }> => new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
  const held = await Promise.all(workers.map(first));
  assert.equal(held.reduce((a, r) => a + r.held, 0), 8, 'the 8 in-flight places are shared');
  const checked = Promise.all(workers.map(first));
  for (const w of workers) w.postMessage('check');
  assert.equal((await checked).reduce((a, x) => a + x.inflightRejects, 0), 4, 'a 9th concurrent request on any thread is refused');
  const results = Promise.all(workers.map(first));
  for (const w of workers) w.postMessage('flood');
  const r = await results;
  await Promise.all(workers.map((w) => w.terminate()));
  const admitted = r.reduce((a, x) => a + x.admitted, 0);
  // 8 admits were already counted by the held requests; the flood gets the rest of the 200.
  assert.ok(admitted >= 190 && admitted <= 196, `admitted ${admitted} over 4 threads (limit 200, 8 used before)`);
});

// Issue 13, item 6: a client that waits exactly the Retry-After it was given must be admitted —
// wherever in the window its burst started, however it paced itself, alone or with its earlier
// traffic still sliding out. Many shapes, a manual clock: the first request after the wait passes.
test('Retry-After is enough: a client that waits exactly that long is admitted (many burst shapes)', () => {
  const limits = { client: { requests: { limit: 20, window: '2s', status: 429 }, in_flight: 0 } };
  let seed = 12345;
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  let cases = 0;
  for (let round = 0; round < 400; round++) {
    const clock = new ManualClock(1_700_000_000_000 + rnd(2000));
    const g = new ClientGuard(guardConfigFrom(limits, null), { now: clock.now() });
    const key = `198.51.100.${round % 250}`;
    // Earlier traffic: a few requests spread over the previous window or so.
    const early = rnd(25);
    for (let i = 0; i < early; i++) { if (g.admit(key, clock.now()) === GUARD_ADMIT) g.finish(key, 200, 0, 0, clock.now()); clock.tick(rnd(150)); }
    clock.tick(rnd(2500));
    // Then a burst, paced 0–50 ms, until the guard says 429.
    const pace = rnd(50);
    let refused = false;
    for (let i = 0; i < 200 && !refused; i++) {
      const v = g.admit(key, clock.now());
      if (v === GUARD_ADMIT) { g.finish(key, 200, 0, 0, clock.now()); clock.tick(pace); continue; }
      assert.equal(v, GUARD_CLIENT_RATE);
      refused = true;
    }
    if (!refused) continue;
    cases++;
    const wait = g.retryAfter;
    assert.ok(Number.isInteger(wait) && wait >= 1 && wait <= 5, `Retry-After ${wait} for a 2 s window`);
    clock.tick(wait * 1000);
    const v = g.admit(key, clock.now());
    assert.equal(v, GUARD_ADMIT, `round ${round}: refused again after waiting exactly Retry-After ${wait} s (early ${early}, pace ${pace} ms)`);
    g.finish(key, 200, 0, 0, clock.now());
  }
  assert.ok(cases > 300, `only ${cases} bursts reached the limit`);
});
