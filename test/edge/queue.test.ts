// Why: at peak the queue is what keeps the shop under its capacity. It must never let a server
// exceed maxconn, must be FIFO, and must answer 503 + Retry-After on timeout or when full.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startOrigin } from '../harness/origin.js';
import { CLIENT_LIMITS_OFF, edgeYaml, startOriginAndEdge, startTestEdge } from '../harness/edge.js';
import { httpClient } from '../harness/client.js';
import { waitFor } from '../harness/wait.js';

test('concurrency far above maxconn: servers never exceed maxconn, everyone served', async (t) => {
  const slow = (name: string) => startOrigin(name, (_req, res) => { setTimeout(() => res.end(name), 40); });
  const a = await slow('a');
  const b = await slow('b');
  t.after(() => Promise.all([a.close(), b.close()]));
  const px = await startTestEdge(edgeYaml({
    limits: CLIENT_LIMITS_OFF,
    backendMore: 'queue: { max: 1000, timeout: 20s }',
    servers: [{ name: 'a', url: a.url, more: 'maxconn: 3' }, { name: 'b', url: b.url, more: 'maxconn: 2' }],
  }));
  t.after(() => px.stop());
  const c = httpClient({ connections: 100 });
  t.after(() => c.close());
  let maxQueued = 0;
  const probe = setInterval(() => { maxQueued = Math.max(maxQueued, px.edge.pools.get('shop')!.queueLength()); }, 10);
  const rs = await Promise.all(Array.from({ length: 200 }, () => c.get(`${px.url}/`)));
  clearInterval(probe);
  assert.ok(rs.every((r) => r.status === 200), `statuses ${[...new Set(rs.map((r) => r.status))]}`);
  assert.ok(a.maxActive <= 3, `a saw ${a.maxActive} at once`);
  assert.ok(b.maxActive <= 2, `b saw ${b.maxActive} at once`);
  assert.ok(a.maxActive === 3 && b.maxActive === 2, 'both servers were used up to their maxconn');
  assert.ok(maxQueued > 50, `requests waited in the queue (max ${maxQueued})`);
});

test('queue timeout answers 503 with Retry-After; beyond queue.max, 503 at once', async (t) => {
  const { o: hold, px } = await startOriginAndEdge(t, {
    origin: 'hold',
    handler: (_req, res) => { setTimeout(() => res.end('done'), 1500); },
    limits: CLIENT_LIMITS_OFF,
    backendMore: 'queue: { max: 2, timeout: 300ms }',
    serverMore: 'maxconn: 1',
  });
  const c = httpClient({ connections: 10 });
  t.after(() => c.close());
  const pool = px.edge.pools.get('shop')!;
  const first = c.get(`${px.url}/1`);
  await waitFor('the first request at the origin (maxconn 1 taken)', () => hold.active === 1, 5000);
  const queued = [c.get(`${px.url}/2`), c.get(`${px.url}/3`)];
  await waitFor('two requests in the queue (queue.max 2)', () => pool.queueLength() === 2, 5000);
  const t0 = Date.now();
  const over = await c.get(`${px.url}/4`);
  assert.equal(over.status, 503, 'queue full: 503 at once');
  assert.ok(Date.now() - t0 < 300, 'answered without waiting (a queued request waits the 300 ms queue timeout)');
  assert.ok(over.headers['retry-after']);
  const [q1, q2] = await Promise.all(queued);
  for (const q of [q1, q2]) {
    assert.equal(q.status, 503);
    assert.equal(q.headers['retry-after'], '5');
    assert.match(q.body, /Service Unavailable/);
  }
  assert.equal((await first).status, 200);
  assert.equal(hold.seen.length, 1, 'queued requests never reached the server');
  assert.ok(px.events.some((e) => e.type === 'queue' && e.reason === 'queue_timeout'));
});
