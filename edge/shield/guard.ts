// The built-in per-client policy (works without writing any rule), run in the first request handler:
//   1. banned client                     → limits.client.ban_status (403)
//   2. node-wide requests in flight      → limits.global.status (503)   [limits.global.in_flight]
//   3. client's requests in flight       → 429                          [limits.client.in_flight]
//   4. client's admitted request rate    → limits.client.requests.status (429) + Retry-After
// admit() returns a small numeric verdict (GUARD_ADMIT = 0 when the request may go on) and allocates
// nothing when it admits; GUARD_REASONS / guard.statusOf() turn a verdict into status and reason.
// Every GUARD_ADMIT must be paired with exactly one finish() (response done, aborted or failed).
//
// Where the counts live:
// - In flight and a node-wide request rate: a SharedArrayBuffer count-min sketch shared by all
//   worker threads of the node (create it once with ClientGuard.createShared(cfg) in the main
//   thread, pass `memory` to each worker via workerData, then `new ClientGuard(cfg, { memory })`).
// - With `shared:` (Redis): the request rate is summed across nodes. Each worker keeps a `client`
//   stick table whose http_req_rate column a RedisShare syncs in the background; the decision uses
//   the global sum from the last sync + our unsynced events + a margin for the other parties'
//   unsynced ones (RateColumn.projected) — no Redis call per request. The global sum covers the
//   window + one tenth of it (10 slices in Redis), so no sliding window gets more than
//   ~1.1 × limit + 5 even from a client split evenly over the nodes.
//   While Redis is degraded, the node-wide shared-memory rate is held to limit / node_count.
// - In flight is per node (not summed): 200 ms-old remote in-flight counts would be noise.
// The `client` table also collects HAProxy-style http_err_rate, bytes_in_rate and bytes_out_rate
// per client for rules and the admin API (`guard.table`), and — when GuardConfig.connRateMs is set —
// the connection guard's conn_cur (per node) and conn_rate (summed across nodes like http_req_rate;
// edge/shield/connection-guard.ts counts them at accept).
// Cost (bench/guard-admit.ts): the key is hashed once per call (FNV-1a) for both count-min rows
// and the table's own hash index; admit + finish ≈ 0.7–1 µs, shared or not.
import type { EventBus } from '../observe/events/bus.js';
import type { ClientLimits, GlobalLimits, SharedConfig } from './stick/config.js';
import { normalizeClientLimits, normalizeGlobalLimits } from './stick/config.js';
import { StickTable } from './stick/table.js';
import type { RateColumn } from './stick/rate.js';
import type { BanList, BanInfo } from './stick/bans.js';
import type { RedisShare } from './stick/redis.js';
import { GuardCounters, createGuardMemory } from './stick/shared-memory.js';
import { fnv1a } from './stick/keys.js';
import type { GuardMemory } from './stick/shared-memory.js';
import { normalizeConnectionLimits, type ConnectionLimits } from './firewall/config.js';

export {
  clientLimitsSchema, globalLimitsSchema, tablesSchema, sharedSchema,
  normalizeClientLimits, normalizeGlobalLimits, normalizeTables, normalizeTable, normalizeShared,
} from './stick/config.js';
export { trustedProxiesSchema, normalizeTrustedProxies } from '../pipeline/identity.js';
export type { GuardMemory } from './stick/shared-memory.js';

export const GUARD_ADMIT = 0;
export const GUARD_BANNED = 1;
export const GUARD_GLOBAL_IN_FLIGHT = 2;
export const GUARD_CLIENT_IN_FLIGHT = 3;
export const GUARD_CLIENT_RATE = 4;
export type GuardVerdict = 0 | 1 | 2 | 3 | 4;

export interface GuardReason {
  readonly verdict: GuardVerdict;
  /** Short reason for logs/events (HAProxy-style termination: all are proxy-side `P` denials). */
  readonly reason: 'admit' | 'banned' | 'global_in_flight' | 'client_in_flight' | 'client_rate';
  /** Event type the lead emits for it. */
  readonly event: 'guard' | 'ban' | 'rate_limit';
}

/** Shared reason table indexed by verdict (statuses come from config: guard.statusOf(verdict)). */
export const GUARD_REASONS: readonly GuardReason[] = [
  { verdict: 0, reason: 'admit', event: 'guard' },
  { verdict: 1, reason: 'banned', event: 'ban' },
  { verdict: 2, reason: 'global_in_flight', event: 'guard' },
  { verdict: 3, reason: 'client_in_flight', event: 'guard' },
  { verdict: 4, reason: 'client_rate', event: 'rate_limit' },
];

export interface GuardConfig {
  client: ClientLimits;
  global: GlobalLimits;
  /** Worker threads sharing the memory (uWS apps per node). */
  workers?: number;
  /** `shared:` section; needed for node_count when a RedisShare is given. */
  shared?: SharedConfig | null;
  /**
   * Window of the `client` table's conn_rate column (limits.connection.rate.window); with it the
   * table also stores conn_cur. 0 or absent: no connection columns (no connection guard).
   */
  connRateMs?: number;
}

export interface GuardOptions {
  /** From ClientGuard.createShared(cfg) in the main thread; default: private memory (one thread). */
  memory?: GuardMemory;
  bans?: BanList;
  /** Sum the request rate across nodes (the guard attaches its `client` table to it). */
  share?: RedisShare;
  bus?: EventBus;
  now?: number;
}

/** Builds a GuardConfig from raw (already unit-converted or not) `limits` and `shared` sections. */
export function guardConfigFrom(limits: { client?: unknown; global?: unknown; connection?: unknown } | undefined, shared: SharedConfig | null, workers = 1): GuardConfig {
  return {
    client: normalizeClientLimits(limits?.client), global: normalizeGlobalLimits(limits?.global), shared, workers,
    connRateMs: connTableWindow(normalizeConnectionLimits(limits?.connection)),
  };
}

/**
 * conn_rate window of the `client` table for a `limits.connection` section: its rate window (1 s
 * when the rate is off). `in_process: off` still counts (rules, admin view), it only never refuses.
 */
export function connTableWindow(c: ConnectionLimits | undefined): number {
  if (c === undefined || c.rate === false) return 1000; // no section (a hand-built config): the default window
  return c.rate.window;
}

export class ClientGuard {
  readonly cfg: GuardConfig;
  /** Per-client stick table of this thread: http_req_rate (summed when shared), http_err_rate, bytes. */
  readonly table: StickTable;
  private readonly counters: GuardCounters;
  private readonly reqRate: RateColumn;
  private readonly errRate: RateColumn;
  private readonly bytesInRate: RateColumn;
  private readonly bytesOutRate: RateColumn;
  private readonly bans: BanList | null;
  private readonly share: RedisShare | null;
  private statuses: Int32Array;
  private rateLimit: number;
  private localRateLimit: number;
  private clientInFlight: number;
  private globalInFlight: number;

  /** After GUARD_CLIENT_RATE: seconds for the Retry-After header. */
  retryAfter = 0;
  /** After GUARD_BANNED: the ban. */
  lastBan: BanInfo | null = null;
  /** Rejections by verdict (index = verdict), for metrics. */
  readonly rejected = new Float64Array(5);

  static createShared(cfg: GuardConfig): GuardMemory {
    return createGuardMemory(cfg.client.slots, cfg.client.requests.windowMs);
  }

  constructor(cfg: GuardConfig, opts: GuardOptions = {}) {
    this.cfg = cfg;
    const now = opts.now ?? Date.now();
    const mem = opts.memory ?? ClientGuard.createShared(cfg);
    if (mem.windowMs !== cfg.client.requests.windowMs) throw new Error('guard memory was created for another limits.client.requests.window');
    // Plain (non-atomic) access is only safe when this guard is the memory's only user.
    this.counters = new GuardCounters(mem, opts.memory !== undefined || (cfg.workers ?? 1) > 1);
    this.bans = opts.bans ?? null;
    this.share = opts.share ?? null;
    const w = cfg.client.requests.windowMs;
    const cw = cfg.connRateMs ?? 0;
    this.table = new StickTable({
      name: 'client', size: cfg.client.tableSize, expireMs: Math.max(60_000, 2 * w, 2 * cw), keyLength: 64,
      store: { connCur: cw > 0, connRateMs: cw, httpReqRateMs: w, httpErrRateMs: w, bytesInRateMs: w, bytesOutRateMs: w, gpc: 0, gpt: 0 },
    }, { shared: this.share !== null, sharedRates: cw > 0 ? ['http_req_rate', 'conn_rate'] : ['http_req_rate'], syncKeys: this.share?.cfg.syncKeys, now });
    this.reqRate = this.table.httpReqRate as RateColumn;
    this.errRate = this.table.httpErrRate as RateColumn;
    this.bytesInRate = this.table.bytesInRate as RateColumn;
    this.bytesOutRate = this.table.bytesOutRate as RateColumn;
    if (this.share) this.share.attach(this.table);
    this.statuses = Int32Array.from([0, cfg.client.banStatus, cfg.global.status, 429, cfg.client.requests.status]);
    this.rateLimit = cfg.client.requests.limit;
    const nodes = this.share ? (cfg.shared?.nodeCount ?? this.share.cfg.nodeCount) : 1;
    this.localRateLimit = this.rateLimit / nodes;
    this.clientInFlight = cfg.client.inFlight;
    this.globalInFlight = cfg.global.inFlight;
  }

  /**
   * Live reconfiguration: the limits, statuses and in-flight caps of `cfg` apply from the next
   * request. The window and the memory sizes are fixed at start (the caller reports them). Returns
   * what changed, one line each.
   */
  reconfigure(cfg: GuardConfig): string[] {
    const out: string[] = [];
    const was = { limit: this.rateLimit, clientInFlight: this.clientInFlight, globalInFlight: this.globalInFlight, statuses: Array.from(this.statuses) };
    const nodes = this.share ? (cfg.shared?.nodeCount ?? this.share.cfg.nodeCount) : 1;
    this.rateLimit = cfg.client.requests.limit;
    this.localRateLimit = this.rateLimit / nodes;
    this.clientInFlight = cfg.client.inFlight;
    this.globalInFlight = cfg.global.inFlight;
    this.statuses = Int32Array.from([0, cfg.client.banStatus, cfg.global.status, 429, cfg.client.requests.status]);
    if (was.limit !== this.rateLimit) out.push(`limits.client.requests.limit: ${was.limit} → ${this.rateLimit}`);
    if (was.clientInFlight !== this.clientInFlight) out.push(`limits.client.in_flight: ${was.clientInFlight} → ${this.clientInFlight}`);
    if (was.globalInFlight !== this.globalInFlight) out.push(`limits.global.in_flight: ${was.globalInFlight} → ${this.globalInFlight}`);
    if (was.statuses.join() !== Array.from(this.statuses).join()) out.push('limits statuses changed');
    return out;
  }

  /** HTTP status for a rejecting verdict. */
  statusOf(v: GuardVerdict): number { return this.statuses[v]; }

  /** Node-wide requests in flight (all workers). */
  get inFlightTotal(): number { return this.counters.globalInFlight; }

  /** Requests in flight for a client on this node (count-min estimate). */
  inFlightOf(clientKey: string): number {
    this.counters.locate(clientKey);
    return this.counters.inFlight();
  }

  /** Admitted requests in the window for a client, as the guard currently sees it. */
  rateOf(clientKey: string, now: number): number {
    if (this.share && !this.share.degraded) {
      const s = this.table.peek(clientKey, now);
      return s < 0 ? 0 : this.reqRate.best(s, now);
    }
    this.counters.locate(clientKey);
    return this.counters.rate(now);
  }

  admit(clientKey: string, now: number): GuardVerdict {
    if (this.bans !== null) {
      const ban = this.bans.isBanned(clientKey, now);
      if (ban !== null) { this.lastBan = ban; return this.reject(GUARD_BANNED, clientKey, fnv1a(clientKey), now, false, false); }
    }
    const c = this.counters;
    const h = fnv1a(clientKey); // one pass over the key: count-min rows and the table index
    if (!c.tryEnterGlobal(this.globalInFlight)) return this.reject(GUARD_GLOBAL_IN_FLIGHT, clientKey, h, now, false, false);
    c.locateHashed(h);
    if (!c.tryEnter(this.clientInFlight)) return this.reject(GUARD_CLIENT_IN_FLIGHT, clientKey, h, now, true, false);
    const limit = this.rateLimit;
    const share = this.share;
    const t = this.table;
    if (share !== null && !share.degraded) {
      const s = t.slotHashed(clientKey, h, now);
      if (limit > 0) {
        const est = this.reqRate.projected(s, now, share.contributors);
        if (est >= limit) {
          t.markDirty(s); // keep pulling the global total while we reject
          this.retryAfter = retrySeconds(this.reqRate.msUntilBelow(s, now, limit, share.contributors));
          return this.reject(GUARD_CLIENT_RATE, clientKey, h, now, true, true);
        }
      }
      c.hit(now);
      this.reqRate.add(s, 1, now); // also queues it for the next sync round
      return GUARD_ADMIT;
    }
    if (limit > 0) {
      const local = this.localRateLimit;
      if (c.rate(now) >= local) {
        this.retryAfter = retrySeconds(c.msUntilBelow(now, local));
        return this.reject(GUARD_CLIENT_RATE, clientKey, h, now, true, true);
      }
    }
    c.hit(now);
    // Keep the per-client table (and, when shared, the pending Redis delta) up to date.
    this.reqRate.add(t.slotHashed(clientKey, h, now), 1, now);
    return GUARD_ADMIT;
  }

  /** Call once per admitted request when it ends (any outcome); status 0 if no response was sent. */
  finish(clientKey: string, status: number, bytesIn: number, bytesOut: number, now: number): void {
    const c = this.counters;
    const h = fnv1a(clientKey);
    c.leaveGlobal();
    c.locateHashed(h);
    c.leave();
    const t = this.table;
    const s = t.slotHashed(clientKey, h, now);
    if (status >= 400 || status === 0) this.errRate.add(s, 1, now);
    if (bytesIn > 0) this.bytesInRate.add(s, bytesIn, now);
    if (bytesOut > 0) this.bytesOutRate.add(s, bytesOut, now);
  }

  /**
   * A request the guard never admitted ended in an error the client caused (a malformed head, a head
   * deadline): it counts in the client's http_err_rate like a denied one, so rules can act on it.
   */
  countError(clientKey: string, now: number): void {
    this.errRate.add(this.table.slotHashed(clientKey, fnv1a(clientKey), now), 1, now);
  }

  private reject(v: GuardVerdict, key: string, h: number, now: number, leaveGlobal: boolean, leaveClient: boolean): GuardVerdict {
    if (leaveClient) this.counters.leave();
    if (leaveGlobal) this.counters.leaveGlobal();
    this.rejected[v]++;
    // A 4xx/5xx answered to the client counts in its http_err_rate (HAProxy counts denies too).
    this.errRate.add(this.table.slotHashed(key, h, now), 1, now);
    return v;
  }
}

function retrySeconds(ms: number): number {
  return ms <= 1000 ? 1 : Math.ceil(ms / 1000);
}
