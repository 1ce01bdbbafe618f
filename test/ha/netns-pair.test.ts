// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// Why: the shop's address must survive its edge node. Two Portcullis nodes ("site A", "site B"), each
// with keepalived, share one Redis inside network namespaces this test creates (and removes, also on
// failure); shoppers in a client namespace browse and add to cart through the virtual address.
// Portcullis on A is killed: B must serve within keepalived's detection window and nothing may fail
// after it does; A comes back and takes the address again (pre-emption, only once /healthz says ready); A is then drained for
// maintenance: not one request may fail. Every shopper keeps its server throughout (shared sticky
// secret, site-A servers honoured by B), and a ban made on A holds on B within 1 s.
// The longer run of all four scenarios, with numbers and a chart: `npm run loadtest -- ha-pair`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, labSkipReason, runPhases, stickiness } from '../../loadtest/ha/lab.js';

test('two nodes, one virtual address: kill, pre-emption and a drain in network namespaces', { timeout: 120_000 }, async (t) => {
  const skip = labSkipReason();
  if (skip !== null) { t.skip(`skipped: ${skip}`); return; }
  const lab = new Lab({ shoppers: 10, thinkMs: 150 });
  t.after(() => lab.close());
  await lab.start();

  const banMs = await lab.banPropagationMs('a', 'b');
  assert.ok(banMs !== null && banMs <= 1000, `a ban made on A holds on B within 1 s (took ${banMs} ms)`);

  await lab.shoppersStart();
  const [kill, back, drain] = await runPhases(lab, ['kill', 'drain'], { settleMs: 1000, restoreLast: false });
  await lab.shoppersStop();
  const summary = JSON.stringify({ kill, back, drain }, null, 1);

  // Crash: failures only until B serves (keepalived's detection: 2 failed checks at 1 s), none after.
  assert.ok(kill.servesAfterMs !== null, `B serves after the kill\n${summary}`);
  assert.ok(kill.servesAfterMs <= 8000, `B serves within the detection window (measured ${kill.servesAfterMs} ms; ≈ 3 s on an idle machine)\n${summary}`);
  assert.equal(kill.failedAfterMove, 0, `no failed request once B serves\n${summary}`);
  // Pre-emption: A, ready again, takes the address back (its failures are reported by the load scenario).
  assert.ok(back.servesAfterMs !== null, `A serves again after its restart\n${summary}`);
  // Planned drain: not one failed request.
  assert.ok(drain.servesAfterMs !== null, `B serves after the drain\n${summary}`);
  assert.equal(drain.failed, 0, `0 failed requests for a planned drain\n${summary}`);
  assert.ok(drain.requests > 20, 'shoppers kept shopping during the drain');

  const sticky = stickiness(await lab.records());
  assert.equal(sticky.shoppers, 10);
  assert.deepEqual(sticky.moved, [], 'every shopper kept its server across both moves');
});
