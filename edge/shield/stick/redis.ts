// Counters summed across edge nodes through Redis, without a Redis round trip on the request path.
//
// The request path decides locally (RateColumn.projected) and never waits for Redis. Every
// `sync_interval` (200 ms) one background round, on its own connection (`sync_timeout`, 1 s), sends
// one pipeline holding one Lua call per <= 1,000 keys per shared column. For each key that changed or
// was read recently (SyncPool: hot keys only) the script adds our new events into the current slice
// of the key's Redis hash (field = slice index, period / 10 per slice) and returns the sum of the
// slices still in the window: the global count, every node included. Slices are aligned on the
// wall clock, so every node adds into the same fields; old fields are dropped by the script and
// each hash expires by itself (2 periods + 10 s after its last write).
//
// Redis trouble never fails a request: commands never queue (enableOfflineQueue: false), a round
// never overlaps the previous one and is abandoned after `sync_timeout`, and while Redis is
// unreachable the share reports `degraded` and callers enforce limit / node_count on local counts.
// Unsent events stay pending and are pushed once Redis answers again, so summing resumes by itself.
//
// Config (`shared:`), documented for the README:
//   redis: "redis://[:password@]host:port[/db]"        single Redis (rediss:// for TLS)
//        | { sentinels: ["h1:26379", ...], name: mymaster, password?, sentinel_password? }
//        | { cluster: ["h1:7000", ...], password? }    all counter keys of one `prefix` use one hash slot
//   node_count: 1          edge nodes sharing the Redis (local limit = limit / node_count while degraded)
//   node_id: hostname-pid  name of this node in events
//   sync_interval: 200ms   command_timeout: 250ms   sync_timeout: 1s   sync_keys: 100000
//   ban_refresh: 5s        prefix: portcullis
import { Redis, Cluster } from 'ioredis';
import type { RedisOptions, ClusterOptions } from 'ioredis';
import type { EventBus } from '../../observe/events/bus.js';
import { redisEvent } from '../../observe/events/build.js';
import type { SharedConfig } from './config.js';
import type { StickTable } from './table.js';
import type { RateColumn } from './rate.js';
import { SLICES } from './rate.js';
import type { SyncPool } from './sync-pool.js';
import { classifyRedisError, describeFault, probeGreeting, type RedisFault } from './redis-fault.js';

export type RedisClient = Redis | Cluster;

/** Keys per Lua call: bounds how long one call holds Redis (a few ms). */
const CHUNK = 1000;

// KEYS: one hash per key. ARGV: current slice, slices per window, ttl ms, then one delta per key.
// Returns, per key, the sum of its slices from (current - SLICES) on (a node whose clock runs ahead
// may have written a "future" slice: counted, which errs on the safe side).
const SYNC_LUA = `
local slice = tonumber(ARGV[1])
local oldest = slice - tonumber(ARGV[2])
local ttl = ARGV[3]
local out = {}
for i = 1, #KEYS do
  local k = KEYS[i]
  local d = tonumber(ARGV[3 + i])
  if d > 0 then
    redis.call('HINCRBY', k, ARGV[1], d)
    redis.call('PEXPIRE', k, ttl)
  end
  local f = redis.call('HGETALL', k)
  local sum = 0
  for j = 1, #f, 2 do
    if tonumber(f[j]) < oldest then redis.call('HDEL', k, f[j]) else sum = sum + tonumber(f[j + 1]) end
  end
  out[i] = sum
end
return out
`;

interface SyncCommands {
  pcwin(numKeys: number, keys: string[], args: (string | number)[]): unknown;
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
  client.defineCommand('pcwin', { lua: SYNC_LUA });
  return client;
}

export interface RedisShareOptions {
  bus?: EventBus;
  /** Counting parties per node (uWS workers each sync on their own): projected = … × node_count × workers. */
  workers?: number;
  /** Use this client for general commands (ban list, tests) instead of creating one. */
  client?: RedisClient;
  /** Connection for sync rounds; default: a dedicated one (created, or duplicated from `client`). */
  syncClient?: RedisClient;
  now?: () => number;
}

/** Per attached table: its shared columns and the reusable buffers of one round. */
interface TableSync {
  table: StickTable;
  pool: SyncPool;
  cols: RateColumn[];
  /** Redis key prefix per column. */
  prefixes: string[];
  /** Relative slice each column was pushed in this round. */
  slices: Int32Array;
  entries: Int32Array;
  gens: Uint32Array;
  n: number;
  /** table.rates.size when cols was computed. */
  colCount: number;
}

export class RedisShare {
  readonly cfg: SharedConfig;
  /** General-purpose connection (ban list, admin). */
  readonly client: RedisClient;
  /** Dedicated connection for sync rounds (its own, longer timeout). */
  readonly syncClient: RedisClient;
  readonly nodeId: string;
  /** Parties whose unsynced counts the projection assumes (node_count × workers). */
  readonly contributors: number;
  private readonly ownsClient: boolean;
  private readonly ownsSync: boolean;
  private readonly bus: EventBus | undefined;
  private readonly now: () => number;
  private readonly tables: TableSync[] = [];
  private timer: NodeJS.Timeout | null = null;
  private syncing = false;
  private syncStarted = 0;
  private okState = false;
  private everOk = false;
  private closed = false;
  /** When this share was created: a first connection still under way is not trouble for a while. */
  private readonly createdAt = Date.now();
  private reported: 'ok' | 'degraded' | null = null;
  /** Why we are degraded now (null while ok). */
  private fault: RedisFault | null = null;
  /** The last error a connection or a command reported, and when: it explains a generic state change. */
  private lastError: RedisFault | null = null;
  private lastErrorAt = 0;
  private reportedCode: string | null = null;
  /** Times Redis became unusable, by fault code (portcullis_redis_faults_total). */
  readonly faultCounts = new Map<string, number>();

  // Sync statistics: syncs and syncFailures are portcullis_redis_sync_rounds_total{result}.
  syncs = 0;
  syncFailures = 0;
  lastSyncMs = 0;
  /** Lua calls in the last round. */
  lastSyncCommands = 0;
  /** Keys pushed/pulled in the last round. */
  lastSyncKeys = 0;
  /** Event-loop time spent building rounds and applying replies, in total (ms): the sync's cost here. */
  syncCpuMs = 0;

  constructor(cfg: SharedConfig, opts: RedisShareOptions = {}) {
    this.cfg = cfg;
    this.nodeId = cfg.nodeId;
    this.bus = opts.bus;
    this.now = opts.now ?? Date.now;
    this.contributors = cfg.nodeCount * Math.max(1, opts.workers ?? 1);
    this.ownsClient = opts.client === undefined;
    this.client = opts.client ?? createRedis(cfg);
    this.ownsSync = opts.syncClient === undefined;
    this.syncClient = opts.syncClient ?? (opts.client !== undefined ? duplicateForSync(opts.client, cfg) : createRedis(cfg, { commandTimeout: cfg.syncTimeoutMs }));
    this.syncClient.on('close', () => { this.explainClose(); this.setState(false, 'connection closed'); });
    this.syncClient.on('ready', () => { void this.syncNow(); });
    // Errors explain the state changes that follow them (NOAUTH before the close it causes …).
    for (const c of new Set([this.client, this.syncClient])) {
      c.on('error', (err: unknown) => this.noteError(err));
      c.on('sentinelError', (err: unknown) => this.noteError(err));
    }
  }

  private probing = false;
  private lastProbe = 0;
  /**
   * A connection that closed with no error said: look at what the server greets a new connection
   * with (protected mode's -DENIED is only seen this way). Single-URL targets, plain TCP, every 2 s at most.
   */
  private explainClose(): void {
    const t = this.cfg.redis;
    if (t.kind !== 'url' || this.probing || this.closed || Date.now() - this.lastProbe < 2000) return;
    if (this.lastError !== null && Date.now() - this.lastErrorAt < 1000) return;
    let u: URL;
    try { u = new URL(t.url); } catch { return; }
    if (u.protocol !== 'redis:') return;
    this.probing = true;
    this.lastProbe = Date.now();
    const host = u.hostname.replace(/^\[|\]$/g, '');
    probeGreeting(host, Number(u.port || 6379)).then((line) => {
      this.probing = false;
      if (line === null || this.okState || this.closed) return;
      this.noteError(line);
      this.setState(false, line);
    }, () => { this.probing = false; });
  }

  private noteError(err: unknown): void {
    this.lastError = classifyRedisError(err);
    this.lastErrorAt = Date.now();
  }

  /** Why counts are not summed now ('NOAUTH: …', 'refused: connect ECONNREFUSED …'); null while ok. */
  get reason(): string | null { return this.okState ? null : this.fault !== null ? describeFault(this.fault) : 'connecting'; }
  /** Short code of the current fault (metric label); null while ok. */
  get faultCode(): string | null { return this.okState ? null : this.fault?.code ?? 'connecting'; }

  /** `true` while counts are not being summed (Redis down, slow or not yet reached). */
  get degraded(): boolean { return !this.okState; }
  /** 'ok' | 'degraded', for metrics and the admin API. */
  get state(): 'ok' | 'degraded' { return this.okState ? 'ok' : 'degraded'; }

  attach(table: StickTable): void {
    if (!table.shared || table.pool === null) throw new Error(`table ${table.name}: create it with { shared: true } to share it`);
    if (this.tables.some((t) => t.table === table)) return;
    const cap = table.pool.capacity;
    const ts: TableSync = { table, pool: table.pool, cols: [], prefixes: [], slices: new Int32Array(0), entries: new Int32Array(cap), gens: new Uint32Array(cap), n: 0, colCount: -1 };
    this.tables.push(ts);
    this.columnsOf(ts);
  }

  /** Shared columns of a table (a rule counter may add one after attach). */
  private columnsOf(ts: TableSync): void {
    if (ts.colCount === ts.table.rates.size) return;
    ts.cols = [...ts.table.rates.values()].filter((c) => c.shared);
    ts.prefixes = ts.cols.map((c) => this.windowKey(ts.table.name, c, ''));
    ts.slices = new Int32Array(ts.cols.length);
    ts.colCount = ts.table.rates.size;
  }

  start(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => { void this.syncNow(); }, this.cfg.syncIntervalMs);
    this.timer.unref();
  }

  /** A sync round is on its way (its replies not applied yet). */
  get syncInFlight(): boolean { return this.syncing; }

  /** Stops the sync timer (start() resumes it); counts keep being taken and stay pending. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.ownsSync) this.syncClient.disconnect();
    if (this.ownsClient) this.client.disconnect();
  }

  /**
   * Redis hash holding the slices of one key of a shared column: `<prefix>:{<prefix>:w}:…` — found by
   * `SCAN MATCH <prefix>*`, and one Cluster hash slot (the `{…}` tag) for every key a round touches.
   */
  /** The canary key of idle rounds (same hash slot as the counters). */
  get probeKey(): string { return `${this.cfg.prefix}:{${this.cfg.prefix}:w}:probe:${this.nodeId}`; }

  windowKey(table: string, col: RateColumn, key: string): string {
    const p = this.cfg.prefix;
    return `${p}:{${p}:w}:${table}:${col.name}:${col.periodMs}:${key}`;
  }

  /** One sync round: push deltas, pull totals. Never throws; never overlaps itself. */
  async syncNow(): Promise<void> {
    const now = this.now();
    if (this.closed) return;
    if (this.syncing) {
      // A stuck round (should not happen with the timeout) still flips us to degraded.
      if (now - this.syncStarted > this.cfg.syncIntervalMs * 2 + this.cfg.syncTimeoutMs) this.setState(false, 'sync stalled');
      return;
    }
    if (this.syncClient.status !== 'ready') {
      const st = this.syncClient.status;
      // 'connect': the socket is open but the handshake got no answer (yet).
      this.setState(false, st === 'connect' ? 'connected, but Redis is not answering the handshake (timed out?)' : `redis ${st}`);
      return;
    }
    this.syncing = true;
    this.syncStarted = now;
    let calls = 0, keys = 0;
    const buildStart = performance.now();
    try {
      const pipe = this.syncClient.pipeline();
      const cmds = pipe as unknown as SyncCommands;
      for (const ts of this.tables) {
        this.columnsOf(ts);
        const { pool, table, entries, gens } = ts;
        const drained = pool.drain(entries);
        let n = 0;
        for (let i = 0; i < drained; i++) {
          const e = entries[i];
          if (pool.slotOf[e] < 0) continue; // freed while queued
          if (pool.hot[e] > 0) pool.hot[e]--;
          entries[n] = e; gens[n] = pool.gen[e]; n++;
        }
        ts.n = n;
        keys += n;
        for (let c = 0; c < ts.cols.length; c++) {
          const col = ts.cols[c];
          const rel = col.relSlice(now);
          ts.slices[c] = rel;
          const head = [col.sliceBase + rel, SLICES, col.periodMs * 2 + 10_000];
          for (let from = 0; from < n; from += CHUNK) {
            const to = Math.min(n, from + CHUNK);
            const ks = new Array<string>(to - from);
            const args: (string | number)[] = head.slice();
            for (let i = from; i < to; i++) {
              const e = entries[i];
              const d = Math.max(0, Math.floor(col.pending[e]));
              col.inflight[e] = d;
              ks[i - from] = ts.prefixes[c] + (table.keyAt(pool.slotOf[e]) as string);
              args.push(d);
            }
            cmds.pcwin(ks.length, ks, args);
            calls++;
          }
        }
      }
      // Nothing to sync: a canary write instead of a PING, so a Redis that answers but refuses our
      // work (NOPERM on EVALSHA, OOM at maxmemory, READONLY replica, LOADING, MOVED …) is found
      // before the first shopper's count needs it. One tiny hash of our own, expiring in 10 s.
      if (calls === 0) cmds.pcwin(1, [this.probeKey], [Math.floor(now / 1000), SLICES, 10_000, 1]);
      const started = Date.now();
      const sent = pipe.exec();
      this.syncCpuMs += performance.now() - buildStart;
      const replies = await withTimeout(sent, this.cfg.syncTimeoutMs);
      this.lastSyncMs = Date.now() - started;
      this.lastSyncCommands = calls;
      this.lastSyncKeys = keys;
      const applyStart = performance.now();
      const failed = this.apply(replies, calls, this.now());
      this.syncCpuMs += performance.now() - applyStart;
      if (failed) {
        this.syncFailures++;
        if (replies === null) this.noteError(`sync round timed out (no answer within sync_timeout ${this.cfg.syncTimeoutMs}ms)`);
        this.setState(false, replies === null ? 'sync timed out' : 'sync failed');
      }
      else { this.syncs++; this.setState(true, 'synced'); }
    } catch (err) {
      this.noteError(err);
      this.apply(null, calls, this.now());
      this.syncFailures++;
      this.setState(false, 'sync failed');
    } finally {
      this.syncing = false;
    }
  }

  /**
   * Takes a round's replies (null: none). A pushed delta leaves `pending` only once Redis has
   * acknowledged it, so a failed or timed-out round is simply sent again (an ack lost after Redis
   * applied it can over-count once — the safe direction). Returns whether anything failed.
   */
  private apply(replies: [Error | null, unknown][] | null, calls: number, now: number): boolean {
    let failed = replies === null || (calls === 0 && replies[0]?.[0] != null);
    if (replies !== null && calls === 0 && replies[0]?.[0] != null) this.noteError(replies[0][0]);
    let r = 0;
    for (const ts of this.tables) {
      const { pool, entries, gens, n } = ts;
      for (let c = 0; c < ts.cols.length; c++) {
        const col = ts.cols[c];
        const at = ts.slices[c];
        for (let from = 0; from < n; from += CHUNK) {
          const to = Math.min(n, from + CHUNK);
          const reply = replies?.[r++];
          const sums = reply && !reply[0] && Array.isArray(reply[1]) ? (reply[1] as unknown[]) : null;
          if (sums === null) { failed = true; if (reply?.[0]) this.noteError(reply[0]); }
          for (let i = from; i < to; i++) {
            const e = entries[i];
            if (gens[i] !== pool.gen[e]) continue; // entry given to another key meanwhile
            if (sums !== null) col.onPull(e, pool.slotOf[e], Number(sums[i - from]), col.inflight[e], at, now);
            col.inflight[e] = 0;
          }
        }
      }
      // Still hot or something left to push: next round again; else the entry goes back to the pool.
      for (let i = 0; i < n; i++) {
        const e = entries[i];
        if (gens[i] !== pool.gen[e]) continue;
        let left = pool.hot[e] > 0;
        for (let c = 0; !left && c < ts.cols.length; c++) if (ts.cols[c].pending[e] >= 1) left = true;
        if (left) pool.requeue(e); else pool.releaseEntry(e);
      }
      ts.n = 0;
    }
    return failed;
  }

  private setState(ok: boolean, why: string): void {
    if (this.closed) return; // our own shutdown is not Redis trouble
    this.okState = ok;
    if (ok) { this.everOk = true; this.fault = null; this.lastError = null; }
    else {
      // A generic change ("connection closed", "redis reconnecting") is explained by the error that
      // caused it, when there was one lately.
      this.fault = this.lastError !== null && Date.now() - this.lastErrorAt < 10_000 ? this.lastError : classifyRedisError(why);
      // The very first connection attempt is not "trouble" yet — until it reports an error.
      if (!this.everOk && this.lastError === null && Date.now() - this.createdAt < this.cfg.syncTimeoutMs * 2 &&
        (this.syncClient.status === 'connecting' || this.syncClient.status === 'connect')) return;
    }
    const st = ok ? 'ok' : 'degraded';
    const code = this.fault?.code ?? null;
    if (st === this.reported && code === this.reportedCode) return;
    if (!ok && code !== null) this.faultCounts.set(code, (this.faultCounts.get(code) ?? 0) + 1);
    this.reported = st;
    this.reportedCode = code;
    this.bus?.emit(redisEvent(st, ok ? why : describeFault(this.fault as RedisFault)));
  }
}

/** A second connection to the same target for sync rounds, with the sync timeout. */
function duplicateForSync(client: RedisClient, cfg: SharedConfig): RedisClient {
  const dup = client instanceof Cluster
    ? client.duplicate(undefined, { redisOptions: { ...client.options.redisOptions, commandTimeout: cfg.syncTimeoutMs } })
    : client.duplicate({ commandTimeout: cfg.syncTimeoutMs });
  dup.on('error', () => { /* state is tracked through 'ready'/'close' and round results */ });
  dup.defineCommand('pcwin', { lua: SYNC_LUA });
  return dup;
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
