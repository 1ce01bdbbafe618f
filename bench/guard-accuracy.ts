// Accuracy of the summed request limit: one client flooding two edge nodes (alternating) that share
// one Redis; prints the worst count admitted in ANY sliding window (target ≤ 1.1 × L + 5).
// Run: node dist/bench/guard-accuracy.js [limit=100] [window_ms=2000] [sync_ms=200] [duration_ms=8000]
// (REDIS_URL, default redis://127.0.0.1:6379)
import { ClientGuard, guardConfigFrom } from '../edge/shield/guard.js';
import { normalizeShared } from '../edge/shield/stick/config.js';
import { RedisShare } from '../edge/shield/stick/redis.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const [L = 100, W = 2000, SYNC = 200, DURATION = 8000] = process.argv.slice(2).map(Number);
const prefix = `pcacc${process.pid}`;

async function edgeNode(id: string): Promise<{ share: RedisShare; guard: ClientGuard }> {
  const cfg = normalizeShared({ redis: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', node_count: 2, node_id: id, sync_interval: SYNC, prefix })!;
  const share = new RedisShare(cfg);
  share.start();
  const t0 = Date.now();
  while (share.degraded && Date.now() - t0 < 3000) await sleep(10);
  if (share.degraded) throw new Error('redis unreachable');
  return { share, guard: new ClientGuard(guardConfigFrom({ client: { requests: { limit: L, window: W }, in_flight: 0 } }, cfg), { share }) };
}

const a = await edgeNode('a');
const b = await edgeNode('b');
const key = '203.0.113.9';
const admittedAt: number[] = [];
let attempts = 0;
const t0 = Date.now();
while (Date.now() - t0 < DURATION) {
  for (const n of [a, b]) {
    attempts++;
    const now = Date.now();
    if (n.guard.admit(key, now) === 0) { admittedAt.push(now); n.guard.finish(key, 200, 0, 0, now); }
  }
  await sleep(1);
}
let worst = 0, worstEnd = 0;
for (let i = 0, j = 0; i < admittedAt.length; i++) {
  while (admittedAt[i] - admittedAt[j] >= W) j++;
  if (i - j + 1 > worst) { worst = i - j + 1; worstEnd = admittedAt[i] - t0; }
}
console.log(JSON.stringify({
  limit: L, window_ms: W, sync_ms: SYNC, duration_ms: DURATION, attempts, admitted: admittedAt.length,
  admitted_per_window: Math.round((admittedAt.length / (DURATION / W)) * 10) / 10,
  worst_sliding_window: worst, worst_window_ends_at_ms: worstEnd, bound: 1.1 * L + 5, ok: worst <= 1.1 * L + 5,
  sync_failures: a.share.syncFailures + b.share.syncFailures,
}));
await a.share.close();
await b.share.close();
// Leave no keys behind: they expire by themselves (2 windows + 10 s).
