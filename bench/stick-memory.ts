// Memory of a stick table holding 1,000,000 keys with the default store
// (conn_cur, conn_rate, http_req_rate, http_err_rate, bytes_in_rate, bytes_out_rate, gpc(1), gpt(2)).
// Target: ≤ 200 MB. Run: node --expose-gc dist/bench/stick-memory.js [keys] [--shared] [--sync-keys=N]
// --shared: rate columns summed through Redis; per-key sync state lives only for the keys in Redis
// summing at once (shared.sync_keys, default 100,000), so the figure includes that pool.
import { StickTable } from '../edge/shield/stick/table.js';
import { normalizeTable } from '../edge/shield/stick/config.js';

const keys = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 1_000_000);
const shared = process.argv.includes('--shared');
const syncArg = process.argv.find((a) => a.startsWith('--sync-keys='));
const syncKeys = syncArg ? Number(syncArg.slice('--sync-keys='.length)) : 100_000;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) console.warn('run with --expose-gc for exact figures');

function mem(): { heap: number; ab: number; rss: number } {
  gc?.(); gc?.();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, ab: m.arrayBuffers, rss: m.rss };
}

const before = mem();
const now = Date.now();
const table = new StickTable(normalizeTable('mem', { size: keys }), { shared, syncKeys, now });
for (let i = 0; i < keys; i++) {
  // Realistic IPv4 keys: 10.x.y.z text, built per insert like the request path does.
  const key = `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;
  const s = table.slot(key, now);
  table.incConnCur(s);
  table.add(s, table.httpReqRate, 1, now);
  table.add(s, table.bytesOutRate, 1500, now);
}
const after = mem();
const mb = (n: number): string => (n / 1048576).toFixed(1);
const total = after.heap - before.heap + (after.ab - before.ab);
console.log(JSON.stringify({
  keys: table.count, shared,
  ...(table.pool ? { sync_keys: table.pool.capacity, keys_in_sync: table.pool.active, sync_pool_overflows: table.pool.overflows } : {}),
  heap_mb: mb(after.heap - before.heap), typed_arrays_mb: mb(after.ab - before.ab),
  total_mb: mb(total), rss_mb: mb(after.rss), bytes_per_key: Math.round(total / keys),
  target_mb: 200, ok: total <= 200 * 1048576,
}));
