// Per-connection costs of issue 12's accept path: ConnectionGuard.open() + close() (local, and with
// the Redis share syncing conn_rate in the background), and parseProxyHeader() on a v1 and a v2
// header. None of it runs per request.
// Run: node dist/bench/conn-guard-open.js [rounds=5] [ms=1000]   (REDIS_URL, default redis://127.0.0.1:6379)
// 10,000 distinct clients round-robin, limits high enough that everything is admitted; best round wins.
import { ClientGuard, guardConfigFrom } from '../edge/shield/guard.js';
import { ConnectionGuard, connectionGuardConfig } from '../edge/shield/connection-guard.js';
import { normalizeConnectionLimits } from '../edge/shield/firewall/config.js';
import { normalizeShared } from '../edge/shield/stick/config.js';
import { RedisShare } from '../edge/shield/stick/redis.js';
import { parseProxyHeader } from '../edge/http1/proxy-protocol.js';
import { buildProxyV2Header } from '../edge/upstream/h1-proxy-v2.js';

const CLIENTS = 10_000;
const nums = process.argv.slice(2).filter((a) => /^\d+$/.test(a)).map(Number);
const ROUNDS = nums[0] ?? 5;
const MS = nums[1] ?? 1000;
const keys = Array.from({ length: CLIENTS }, (_, i) => `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`);
const connection = { rate: { limit: 1_000_000, window: '1s' }, concurrent: 1000, global: 20_000, exempt: ['192.0.2.0/24'] };

async function run(fn: (i: number) => void, ms: number): Promise<number> {
  let ops = 0, i = 0;
  const start = performance.now();
  const end = start + ms;
  while (performance.now() < end) {
    for (let k = 0; k < 5000; k++) fn(i++);
    ops += 5000;
    await new Promise((r) => setImmediate(r)); // let the sync timer run, as between socket callbacks
  }
  return ops / ((performance.now() - start) / 1000);
}

function connGuard(share: RedisShare | null): ConnectionGuard {
  const limits = { client: { requests: { limit: 0 } }, connection };
  const guard = new ClientGuard(guardConfigFrom(limits, share?.cfg ?? null), { share: share ?? undefined });
  return new ConnectionGuard(connectionGuardConfig(normalizeConnectionLimits(connection), { nodeCount: share ? 2 : 1 }), { guard, share });
}

const local = connGuard(null);
const cfg = normalizeShared({ redis: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', node_count: 2, prefix: `pcconnbench${process.pid}` })!;
const share = new RedisShare(cfg);
share.start();
const t0 = Date.now();
while (share.degraded && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 20));
const shared = connGuard(share);

const openClose = (g: ConnectionGuard) => (i: number): void => {
  const k = keys[i % CLIENTS];
  const now = Date.now();
  if (g.open(k, k, 'main', now) === 0) g.close(k, now);
};
const v1 = Buffer.from('PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\nGET / HTTP/1.1\r\n\r\n', 'latin1');
const v1six = Buffer.from('PROXY TCP6 2001:db8:1:2::7 2001:db8::1 56324 443\r\n', 'latin1');
const v2 = buildProxyV2Header({ srcAddress: '203.0.113.7', srcPort: 56324, dstAddress: '192.0.2.1', dstPort: 443 });
let sink = 0;
const parse = (b: Buffer) => (): void => { const r = parseProxyHeader(b); if (r.state === 'done') sink += r.consumed; };

const cases: [string, (i: number) => void][] = [
  ['open_close_local', openClose(local)],
  ['open_close_shared', openClose(shared)],
  ['proxy_v1_tcp4', parse(v1)],
  ['proxy_v1_tcp6', parse(v1six)],
  ['proxy_v2_tcp4', parse(v2)],
];
for (const [, fn] of cases) await run(fn, 200); // warm-up
const best: Record<string, number> = {};
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, fn] of cases) best[name] = Math.max(best[name] ?? 0, await run(fn, MS));
}
const out: Record<string, number | string> = { clients: CLIENTS, rounds: ROUNDS, ms_per_run: MS };
for (const [name, ops] of Object.entries(best)) out[`${name}_ns`] = Math.round(1e9 / ops);
out.redis_state = share.state;
out.sync_failures = share.syncFailures;
if (sink < 0) out.sink = sink;
console.log(JSON.stringify(out));
await share.close();
