// Counters summed across edge nodes through Redis, without a Redis round trip on the request path.
//
// Every `sync_interval` (200 ms) one pipeline carries, for each stick-table slot whose shared
// counters changed or were read since the last tick, one small Lua call per rate column:
//   INCRBY <bucket key> <our new events>; INCRBY <previous bucket key> <late events>; read both totals.
// Bucket keys are aligned on the wall clock (`floor(now / period)`), so all nodes add into the same
// key and the reply is the global total; keys expire by themselves (2 periods + 10 s).
// The request path then decides on: global total from the last sync + our unsynced delta (see
// RateColumn.projected).
//
// Redis trouble never fails a request: commands never queue (enableOfflineQueue: false), time out
// after `command_timeout`, a sync never overlaps the previous one, and while Redis is unreachable
// the share reports `degraded` and callers enforce limit / node_count on local counts. Unsynced
// deltas stay pending and are pushed once Redis answers again, so summing resumes by itself.
//
// Config (`shared:`), documented for the README:
//   redis: "redis://[:password@]host:port[/db]"        single Redis (rediss:// for TLS)
//        | { sentinels: ["h1:26379", …], name: mymaster, password?, sentinel_password? }
//        | { cluster: ["h1:7000", …], password? }      all keys of one `prefix` use one hash slot
//   node_count: 1          edge nodes sharing the Redis (local limit = limit / node_count while degraded)
//   node_id: hostname-pid  name of this node in events
//   sync_interval: 200ms   command_timeout: 250ms   ban_refresh: 5s   prefix: portcullis
import { Redis, Cluster } from 'ioredis';
import type { RedisOptions, ClusterOptions } from 'ioredis';
import type { EventBus } from '../events.js';
import type { SharedConfig } from './config.js';
import type { StickTable } from './table.js';
import type { RateColumn } from './rate.js';

export type RedisClient = Redis | Cluster;

const SYNC_LUA = `
local d1 = tonumber(ARGV[1])
local d2 = tonumber(ARGV[2])
local c, p
if d1 > 0 then
  c = redis.call('INCRBY', KEYS[1], d1)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
else
  c = tonumber(redis.call('GET', KEYS[1]) or '0')
end
if d2 > 0 then
  p = redis.call('INCRBY', KEYS[2], d2)
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
else
  p = tonumber(redis.call('GET', KEYS[2]) or '0')
end
return {c, p}
`;

interface SyncCommands {
  pcsync(curKey: string, prevKey: string, dCur: number, dPrev: number, ttlMs: number): unknown;
}

/** Creates an ioredis client that can never stall a caller: no offline queue, short timeouts. */
export function createRedis(cfg: Pick<SharedConfig, 'redis' | 'commandTimeoutMs'>, extra: Partial<RedisOptions> = {}): RedisClient {
  const common: RedisOptions = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: cfg.commandTimeoutMs,
    connectTimeout: Math.max(500, cfg.commandTimeoutMs * 4),
    retryStrategy: (times: number) => Math.min(100 * times, 1000),
    enableReadyCheck: true,
    ...extra,
  };
  const t = cfg.redis;
  let client: RedisClient;
  if (t.kind === 'url') client = new Redis(t.url, common);
  else if (t.kind === 'sentinel') {
    client = new Redis({
      ...common, sentinels: t.sentinels, name: t.name,
      ...(t.password !== undefined ? { password: t.password } : {}),
      ...(t.sentinelPassword !== undefined ? { sentinelPassword: t.sentinelPassword } : {}),
      sentinelRetryStrategy: (times: number) => Math.min(100 * times, 1000),
    });
  } else {
    const opts: ClusterOptions = {
      enableOfflineQueue: false,
      redisOptions: { ...common, ...(t.password !== undefined ? { password: t.password } : {}) },
      clusterRetryStrategy: (times: number) => Math.min(100 * times, 1000),
      slotsRefreshTimeout: Math.max(500, cfg.commandTimeoutMs * 4),
    };
    client = new Cluster(t.nodes, opts);
  }
  // An unhandled 'error' event would crash the process; connection errors are reported via state.
  client.on('error', () => { /* state changes are tracked through 'ready'/'close' and sync results */ });
  client.defineCommand('pcsync', { numberOfKeys: 2, lua: SYNC_LUA });
  return client;
}

interface Pending {
  table: StickTable; slot: number; key: string; col: RateColumn; bucket: number; dCur: number; dPrev: number;
}

export interface RedisShareOptions {
  bus?: EventBus;
  /** Counting parties per node (uWS workers each sync on their own): projected = … × node_count × workers. */
  workers?: number;
  /** Use this client instead of creating one (tests, or to share one connection with BanList). */
  client?: RedisClient;
  now?: () => number;
}

export class RedisShare {
  readonly cfg: SharedConfig;
  readonly client: RedisClient;
  readonly nodeId: string;
  /** Parties whose unsynced counts the projection assumes (node_count × workers). */
  readonly contributors: number;
  private readonly ownsClient: boolean;
  private readonly bus: EventBus | undefined;
  private readonly now: () => number;
  private readonly tables: StickTable[] = [];
  private timer: NodeJS.Timeout | null = null;
  private syncing = false;
  private syncStarted = 0;
  private okState = false;
  private everOk = false;
  private closed = false;
  private reported: 'ok' | 'degraded' | null = null;

  // Metrics (the SOC issue exposes them).
  syncs = 0;
  syncFailures = 0;
  lastSyncMs = 0;
  lastSyncCommands = 0;

  constructor(cfg: SharedConfig, opts: RedisShareOptions = {}) {
    this.cfg = cfg;
    this.nodeId = cfg.nodeId;
    this.bus = opts.bus;
    this.now = opts.now ?? Date.now;
    this.contributors = cfg.nodeCount * Math.max(1, opts.workers ?? 1);
    this.ownsClient = opts.client === undefined;
    this.client = opts.client ?? createRedis(cfg);
    this.client.on('close', () => this.setState(false, 'connection closed'));
    this.client.on('ready', () => { void this.syncNow(); });
  }

  /** `true` while counts are not being summed (Redis down, slow or not yet reached). */
  get degraded(): boolean { return !this.okState; }
  /** 'ok' | 'degraded', for metrics and the admin API. */
  get state(): 'ok' | 'degraded' { return this.okState ? 'ok' : 'degraded'; }

  attach(table: StickTable): void {
    if (!table.shared) throw new Error(`table ${table.name}: create it with { shared: true } to share it`);
    if (!this.tables.includes(table)) this.tables.push(table);
  }

  start(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => { void this.syncNow(); }, this.cfg.syncIntervalMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.ownsClient) this.client.disconnect();
  }

  counterKey(table: string, col: RateColumn, absBucket: number, key: string): string {
    const p = this.cfg.prefix;
    return `{${p}}:c:${table}:${col.name}:${col.periodMs}:${absBucket}:${key}`;
  }

  /** One sync round: push deltas, pull totals. Never throws; never overlaps itself. */
  async syncNow(): Promise<void> {
    const now = this.now();
    if (this.closed) return;
    if (this.syncing) {
      // A stuck round (should not happen with commandTimeout) still flips us to degraded.
      if (now - this.syncStarted > this.cfg.syncIntervalMs * 2 + this.cfg.commandTimeoutMs) this.setState(false, 'sync stalled');
      return;
    }
    if (this.client.status !== 'ready') { this.setState(false, `redis ${this.client.status}`); return; }
    this.syncing = true;
    this.syncStarted = now;
    const pending: Pending[] = [];
    try {
      const pipe = this.client.pipeline();
      const cmds = pipe as unknown as SyncCommands;
      for (const table of this.tables) {
        const list = table.dirtyList;
        const n = table.dirtyCount;
        table.dirtyCount = 0;
        for (let i = 0; i < n; i++) {
          const s = list[i];
          table.dirtyFlag[s] = 0;
          const key = table.keyAt(s);
          if (key === undefined) continue;
          for (const col of table.rates.values()) {
            if (!col.shared) continue;
            const b = col.roll(s, now);
            const dCur = Math.floor(col.cur[s] - col.synced[s]);
            const dPrev = Math.floor(col.prev[s] - col.syncedPrev[s]);
            const abs = col.base + b;
            const ttl = col.periodMs * 2 + 10_000;
            cmds.pcsync(this.counterKey(table.name, col, abs, key), this.counterKey(table.name, col, abs - 1, key), Math.max(0, dCur), Math.max(0, dPrev), ttl);
            if (dCur > 0) col.synced[s] += dCur;
            if (dPrev > 0) col.syncedPrev[s] += dPrev;
            col.lastPush[s] = Math.max(0, dCur) + Math.max(0, dPrev);
            pending.push({ table, slot: s, key, col, bucket: b, dCur: Math.max(0, dCur), dPrev: Math.max(0, dPrev) });
          }
          table.cooled(s);
        }
      }
      if (pending.length === 0) pipe.ping();
      const started = Date.now();
      const replies = await withTimeout(pipe.exec(), this.cfg.commandTimeoutMs * 2);
      this.lastSyncMs = Date.now() - started;
      this.lastSyncCommands = pending.length;
      let failed = replies === null;
      for (let i = 0; i < pending.length; i++) {
        const r = replies?.[i];
        if (!r || r[0]) { failed = true; this.revert(pending[i]); continue; }
        this.apply(pending[i], r[1]);
      }
      if (pending.length === 0 && (!replies || replies[0]?.[0])) failed = true;
      if (failed) { this.syncFailures++; this.setState(false, 'sync failed'); }
      else { this.syncs++; this.setState(true, 'synced'); }
    } catch {
      for (const p of pending) this.revert(p);
      this.syncFailures++;
      this.setState(false, 'sync failed');
    } finally {
      this.syncing = false;
    }
  }

  private apply(p: Pending, reply: unknown): void {
    const { table, slot: s, col } = p;
    if (table.keyAt(s) !== p.key || !Array.isArray(reply)) return; // slot was reused meanwhile
    const c = Number(reply[0]), pr = Number(reply[1]);
    if (col.bucket[s] === p.bucket) {
      col.rCur[s] = Math.max(0, c - col.synced[s]);
      col.rPrev[s] = Math.max(0, pr - col.syncedPrev[s]);
    } else if (col.bucket[s] === p.bucket + 1) {
      col.rPrev[s] = Math.max(0, c - col.syncedPrev[s]);
    }
  }

  /** The push failed: the events are unsynced again and will go with the next round. */
  private revert(p: Pending): void {
    const { table, slot: s, col } = p;
    if (table.keyAt(s) !== p.key) return;
    col.lastPush[s] = 0;
    if (col.bucket[s] === p.bucket) {
      col.synced[s] -= p.dCur;
      col.syncedPrev[s] -= p.dPrev;
    } else if (col.bucket[s] === p.bucket + 1) {
      col.syncedPrev[s] -= p.dCur;
    }
    table.markDirty(s);
  }

  private setState(ok: boolean, why: string): void {
    this.okState = ok;
    if (ok) this.everOk = true;
    // The very first connection attempt is not "trouble" yet.
    else if (!this.everOk && this.client.status === 'connecting') return;
    const st = ok ? 'ok' : 'degraded';
    if (st === this.reported) return;
    this.reported = st;
    this.bus?.emit({ type: 'redis', state: st, node: this.nodeId, reason: why });
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<null>((resolve) => { timer = setTimeout(() => resolve(null), ms); });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}
