// Why: a rate window and its Retry-After are time, and time in a test is a clock the test drives
// (lib/clock.ts ManualClock injected into the edge): the 4th request inside the window is refused
// with a Retry-After (an upper bound: the guard never tells a client to come back too early), still
// refused while the clock has not moved, and served once Retry-After has passed. No sleeping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../lib/clock.js';
import { edgeYaml, startTestEdge } from '../harness/edge.js';
import { startOrigin } from '../harness/origin.js';
import { httpClient } from '../harness/client.js';

test('client rate 3 per 10s: the 4th request gets 429 + Retry-After and an event; the 5th at the same instant too; served once Retry-After has passed', async (t) => {
  const o = await startOrigin('web');
  t.after(() => o.close());
  const clock = new ManualClock();
  const px = await startTestEdge(edgeYaml({
    servers: [{ name: 'web', url: o.url }],
    limits: 'client: { requests: { limit: 3, window: 10s }, in_flight: 0 }, connection: { in_process: off }',
  }), { clock });
  t.after(() => px.stop());
  const c = httpClient();
  t.after(() => c.close());
  for (let i = 0; i < 3; i++) assert.equal((await c.get(`${px.url}/`)).status, 200, `request ${i + 1}`);
  const refused = await c.get(`${px.url}/`);
  assert.equal(refused.status, 429);
  const retryAfter = Number(refused.headers['retry-after']);
  // A sliding window (HAProxy's http_req_rate): the previous window still weighs, so up to 2 windows.
  assert.ok(retryAfter >= 1 && retryAfter <= 20, `Retry-After ${refused.headers['retry-after']}`);
  await px.collector.expect({ type: 'rate_limit', status: 429, term: 'PR' });
  assert.equal((await c.get(`${px.url}/`)).status, 429, 'still refused while no time has passed');
  clock.tick(retryAfter * 1000);
  assert.equal((await c.get(`${px.url}/`)).status, 200, 'served again at Retry-After');
});
