import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { backend, req, server, waitFor } from './helpers.js';
import { holdHandler, startOrigin } from '../harness/origin.js';
import { createBackendPool } from '../../edge/backend/pool.js';
import { createSharedActiveCounts } from '../../edge/backend/shared.js';
import { EventBus } from '../../edge/observe/events/bus.js';
import { systemClock } from '../../lib/clock.js';
import type { AcquireResult } from '../../edge/backend/types.js';

test('two pools sharing active counts never exceed maxconn together; a slot freed by one serves the other\'s queue', async () => {
  const cfg = backend([server('a', { maxconn: 3 })]);
  const shared = createSharedActiveCounts(cfg);
  const deps = { bus: new EventBus(), clock: systemClock };
  const p1 = createBackendPool(cfg, deps, shared);
  const p2 = createBackendPool(cfg, deps, shared);
  const got: AcquireResult[] = [];
  try {
    for (let i = 0; i < 2; i++) p1.acquire(req(), (r) => got.push(r));
    p2.acquire(req(), (r) => got.push(r));
    assert.equal(got.filter((r) => r.server !== null).length, 3);
    let late: AcquireResult | null = null;
    p2.acquire(req(), (r) => { late = r; });
    assert.equal(late, null, 'the 4th waits although p2 itself holds only 1');
    assert.equal(p2.servers()[0]!.active, 3, 'active is the total across pools');
    assert.equal(p2.servers()[0]!.activeLocal, 1);
    p1.release(got[0]!.server!, 'ok');
    await waitFor('p2 polls the shared slot', () => late !== null, 1000);
    assert.equal((late as AcquireResult | null)?.server?.name, 'a');
  } finally {
    p1.stop();
    p2.stop();
  }
  assert.throws(() => createBackendPool(backend([server('a'), server('b')]), deps, shared), /PCL_E_SHARED_COUNTS/);
});

const WORKER_SRC = `
const { workerData, parentPort } = require('node:worker_threads');
const http = require('node:http');
(async () => {
  const { createBackendPool } = await import(workerData.poolUrl);
  const { EventBus } = await import(workerData.eventsUrl);
  const { systemClock } = await import(workerData.clockUrl);
  const pool = createBackendPool(workerData.cfg, { bus: new EventBus(), clock: systemClock }, workerData.shared);
  const view = new Int32Array(workerData.shared.buffer);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  let over = 0, done = 0, failed = 0;
  await new Promise((resolve) => {
    for (let i = 0; i < workerData.n; i++) {
      pool.acquire({ clientKey: 'w' + i, stickyCookie: undefined, priority: 1, exclude: null }, (r) => {
        if (r.server === null) { failed++; if (++done === workerData.n) resolve(); return; }
        const s = r.server;
        for (let k = 0; k < view.length; k++) if (view[k] > workerData.maxconn) over++;
        http.get(s.url + '/work?ms=' + Math.floor(Math.random() * 6), { agent }, (res) => {
          res.resume();
          res.on('end', () => { pool.release(s, 'ok'); if (++done === workerData.n) resolve(); });
        }).on('error', () => { pool.release(s, 'connect_error'); failed++; if (++done === workerData.n) resolve(); });
      });
    }
  });
  pool.stop();
  agent.destroy();
  parentPort.postMessage({ over, failed });
})().catch((e) => parentPort.postMessage({ error: String(e && e.stack || e) }));
`;

test('worker threads sharing one SharedArrayBuffer: the origin never sees more than maxconn in total', async () => {
  const origins = await Promise.all([startOrigin('o1', holdHandler), startOrigin('o2', holdHandler)]);
  const maxconn = 8;
  const cfg = backend(origins.map((o, i) => server(`s${i}`, { url: o.url, maxconn })), {
    balance: 'random',
    queue: { max: 1000, timeoutMs: 30_000 },
  });
  const shared = createSharedActiveCounts(cfg);
  const base = new URL('../../', import.meta.url).href;
  const workers = Array.from({ length: 4 }, () => new Worker(WORKER_SRC, {
    eval: true,
    workerData: { cfg, shared, n: 300, maxconn, poolUrl: `${base}edge/backend/pool.js`, eventsUrl: `${base}edge/observe/events/bus.js`, clockUrl: `${base}lib/clock.js` },
  }));
  try {
    const results = await Promise.all(workers.map((w) => new Promise<{ over?: number; failed?: number; error?: string }>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
      w.once('exit', (code) => reject(new Error(`worker exited (${code}) without reporting`)));
    })));
    for (const r of results) {
      assert.equal(r.error, undefined, r.error);
      assert.equal(r.over, 0);
      assert.equal(r.failed, 0);
    }
    for (const o of origins) assert.ok(o.maxActive <= maxconn, `origin saw ${o.maxActive} concurrent (maxconn ${maxconn}, 4 workers)`);
    assert.ok(origins.some((o) => o.maxActive === maxconn), 'the limit was actually reached');
    assert.deepEqual([...new Int32Array(shared.buffer)], [0, 0], 'every slot was given back');
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
    await Promise.all(origins.map((o) => o.close()));
  }
});
