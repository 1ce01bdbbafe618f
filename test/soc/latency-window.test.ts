// Why: the p95 latency on the dashboard and in `portcullis top` must follow the traffic. Computed
// over every request since start (and read off a bucket bound) it stayed at one value while the
// traffic changed; it is now taken over the last minute, interpolated inside its bucket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventBus } from '../../edge/observe/events/bus.js';
import { BlockStats } from '../../edge/observe/events/stats.js';
import { Metrics } from '../../edge/observe/metrics.js';
import { RateSampler } from '../../edge/admin/sampler.js';

test('p95 latency is computed over a moving one-minute window and moves with the traffic', (t) => {
  const metrics = new Metrics();
  const blocks = new BlockStats(new EventBus({ node: 'n' }));
  t.after(() => blocks.stop());
  const sampler = new RateSampler(metrics, blocks, 120, 60);
  const t0 = Date.UTC(2026, 0, 1);
  let second = 0;
  const oneSecond = (fast: number, slow: number, slowSeconds = 0.4): void => {
    for (let i = 0; i < fast; i++) metrics.request('app', 's1', 200, 0.002);
    for (let i = 0; i < slow; i++) metrics.request('app', 's1', 200, slowSeconds);
    sampler.sample(t0 + 1000 * second++);
  };

  assert.equal(sampler.latency().p95, null, 'no request yet');
  for (let i = 0; i < 30; i++) oneSecond(100, 0);
  const calm = sampler.latency();
  assert.equal(calm.windowSec, 60);
  assert.ok(calm.p95 !== null && calm.p95 > 0.001 && calm.p95 <= 0.005, `calm p95 ${calm.p95}`);

  // A slow spike: 10 s with a third of the requests at 400 ms lifts p95 into that range.
  for (let i = 0; i < 10; i++) oneSecond(100, 50);
  const spike = sampler.latency();
  assert.ok(spike.p95 !== null && spike.p95 > 0.25 && spike.p95 <= 0.5, `p95 during the spike ${spike.p95}`);

  // A minute of calm traffic later the spike has left the window (since start it never would).
  for (let i = 0; i < 61; i++) oneSecond(100, 0);
  const after = sampler.latency();
  assert.ok(after.p95 !== null && after.p95 <= 0.005, `p95 a minute after the spike ${after.p95}`);
  assert.equal(after.count, 100 * 60, 'exactly the last 60 s of requests');

  // Within a bucket the value is interpolated: a little more slow traffic gives a higher p95.
  const mix = (slowPerSecond: number): number | null => {
    for (let i = 0; i < 60; i++) oneSecond(100 - slowPerSecond, slowPerSecond, 0.02);
    return sampler.latency().p95;
  };
  const p6 = mix(6);
  const p9 = mix(9);
  assert.ok(p6 !== null && p9 !== null && p9 > p6, `p95 follows the mix inside one bucket: ${p6} → ${p9}`);
});
