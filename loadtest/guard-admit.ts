// Cost of ClientGuard.admit() + finish() per request: local-only vs Redis-shared (sync running).
// Run: node dist/loadtest/guard-admit.js   (REDIS_URL, default redis://127.0.0.1:6379)
// 10,000 distinct clients round-robin, limits high enough that everything is admitted.
import { ClientGuard, guardConfigFrom } from '../edge/guard.js';
import { normalizeShared } from '../edge/stick/config.js';
import { RedisShare } from '../edge/stick/redis.js';
import { BanList } from '../edge/stick/bans.js';

const CLIENTS = 10_000;
const keys = Array.from({ length: CLIENTS }, (_, i) => `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`);
const limits = { client: { requests: { limit: 1_000_000, window: '10s' }, in_flight: 100 }, global: { in_flight: 0 } };

async function run(guard: ClientGuard, ms: number): Promise<number> {
  let ops = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // Batches of 5,000 then yield, so the Redis sync timer runs as it would between uWS callbacks.
    for (let i = 0; i < 5000; i++) {
      const k = keys[ops++ % CLIENTS];
      const now = Date.now();
      if (guard.admit(k, now) === 0) guard.finish(k, 200, 0, 512, now);
    }
    await new Promise((r) => setImmediate(r));
  }
  return ops / (ms / 1000);
}

const bans = new BanList();
const local = new ClientGuard(guardConfigFrom(limits, null), { bans });
await run(local, 500); // warm-up
const localOps = await run(local, 3000);

let sharedOps = 0;
let note = '';
const cfg = normalizeShared({ redis: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', node_count: 2, prefix: `pcbench${process.pid}` })!;
const share = new RedisShare(cfg);
const sharedBans = new BanList({ shared: cfg, client: share.client });
await sharedBans.start();
share.start();
const t0 = Date.now();
while (share.degraded && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 20));
if (share.degraded) note = 'redis unreachable: shared figure is the degraded path';
const shared = new ClientGuard(guardConfigFrom(limits, cfg), { share, bans: sharedBans });
await run(shared, 500);
sharedOps = await run(shared, 3000);
const state = share.state;
console.log(JSON.stringify({
  clients: CLIENTS,
  local_ops_per_s: Math.round(localOps),
  shared_ops_per_s: Math.round(sharedOps),
  shared_vs_local: Math.round((sharedOps / localOps) * 100) / 100,
  redis_state: state, syncs: share.syncs, sync_failures: share.syncFailures,
  last_sync_ms: share.lastSyncMs, last_sync_keys: share.lastSyncKeys, last_sync_lua_calls: share.lastSyncCommands,
  ns_per_admit_finish_local: Math.round(1e9 / localOps), ns_per_admit_finish_shared: Math.round(1e9 / sharedOps),
  ...(note ? { note } : {}),
}));
await sharedBans.close();
await share.close();
