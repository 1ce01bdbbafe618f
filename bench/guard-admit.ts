// Cost of ClientGuard.admit() + finish() per request: local-only vs Redis-shared (sync running).
// Run: node dist/bench/guard-admit.js [rounds=5] [ms=1000]   (REDIS_URL, default redis://127.0.0.1:6379)
// 10,000 distinct clients round-robin, limits high enough that everything is admitted. The machine
// may be shared with other work, so local and shared runs are interleaved (L S L S …) and the ratio
// is taken per pair; the median pair ratio is the figure to compare with the ≥ 0.85 target.
import { ClientGuard, guardConfigFrom } from '../edge/shield/guard.js';
import { normalizeShared } from '../edge/shield/stick/config.js';
import { RedisShare } from '../edge/shield/stick/redis.js';
import { BanList } from '../edge/shield/stick/bans.js';

const CLIENTS = 10_000;
const nums = process.argv.slice(2).filter((a) => /^\d+$/.test(a)).map(Number);
const ROUNDS = nums[0] ?? 5;
const MS = nums[1] ?? 1000;
const keys = Array.from({ length: CLIENTS }, (_, i) => `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`);
const limits = { client: { requests: { limit: 1_000_000, window: '10s' }, in_flight: 100 }, global: { in_flight: 0 } };

let cursor = 0;
async function run(guard: ClientGuard, ms: number): Promise<number> {
  let ops = 0;
  const start = performance.now();
  const end = start + ms;
  while (performance.now() < end) {
    // Batches of 5,000 then yield, so the Redis sync timer runs as it would between uWS callbacks.
    for (let i = 0; i < 5000; i++) {
      const k = keys[cursor++ % CLIENTS];
      const now = Date.now();
      if (guard.admit(k, now) === 0) guard.finish(k, 200, 0, 512, now);
    }
    ops += 5000;
    await new Promise((r) => setImmediate(r));
  }
  return ops / ((performance.now() - start) / 1000);
}

const local = new ClientGuard(guardConfigFrom(limits, null), { bans: new BanList() });
const cfg = normalizeShared({ redis: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', node_count: 2, prefix: `pcbench${process.pid}` })!;
const share = new RedisShare(cfg);
const sharedBans = new BanList({ shared: cfg, client: share.client });
await sharedBans.start();
share.start();
const t0 = Date.now();
while (share.degraded && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 20));
const note = share.degraded ? 'redis unreachable: shared figure is the degraded path' : '';
const shared = new ClientGuard(guardConfigFrom(limits, cfg), { share, bans: sharedBans });

await run(local, 300); // warm-up (JIT) of both paths
await run(shared, 300);
const pairs: { local: number; shared: number; ratio: number }[] = [];
let maxSyncMs = 0;
const failures0 = share.syncFailures, cpu0 = share.syncCpuMs, syncs0 = share.syncs;
let sharedWallMs = 0;
for (let r = 0; r < ROUNDS; r++) {
  // The share's timer is stopped during local runs, so they carry no sync work.
  share.stop();
  while (share.syncInFlight) await new Promise((res) => setTimeout(res, 1));
  const l = await run(local, MS);
  share.start();
  const w = performance.now();
  const s = await run(shared, MS);
  sharedWallMs += performance.now() - w;
  maxSyncMs = Math.max(maxSyncMs, share.lastSyncMs);
  pairs.push({ local: Math.round(l), shared: Math.round(s), ratio: Math.round((s / l) * 100) / 100 });
}
const ratios = pairs.map((p) => p.ratio).sort((a, b) => a - b);
const best = Math.max(...pairs.map((p) => p.local));
console.log(JSON.stringify({
  clients: CLIENTS, rounds: ROUNDS, ms_per_run: MS, pairs,
  median_shared_vs_local: ratios[Math.floor(ratios.length / 2)],
  best_ns_per_admit_finish_local: Math.round(1e9 / best),
  best_ns_per_admit_finish_shared: Math.round(1e9 / Math.max(...pairs.map((p) => p.shared))),
  redis_state: share.state, syncs: share.syncs - syncs0, sync_failures: share.syncFailures - failures0,
  // Event-loop time the sync itself took (building rounds + applying replies; ioredis encoding and
  // reply parsing partly run outside these spans), per second of shared run — its cost on this node.
  sync_loop_ms_per_s: Math.round(((share.syncCpuMs - cpu0) / (sharedWallMs / 1000)) * 10) / 10,
  sync_loop_ms_per_round: Math.round(((share.syncCpuMs - cpu0) / Math.max(1, share.syncs - syncs0)) * 10) / 10,
  last_sync_ms: share.lastSyncMs, max_sync_ms_seen: maxSyncMs, last_sync_keys: share.lastSyncKeys, last_sync_lua_calls: share.lastSyncCommands,
  sync_pool_overflows: shared.table.pool?.overflows ?? 0,
  ...(note ? { note } : {}),
}));
await sharedBans.close();
await share.close();
