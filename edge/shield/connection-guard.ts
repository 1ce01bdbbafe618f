// The in-process connection guard (`limits.connection`, key `in_process`): per-client concurrent
// connections (conn_cur), new connections per window (conn_rate) and a node-wide cap, decided at
// accept — before a byte of the connection is read — with the same numbers and exempt CIDRs as the
// kernel layer (`portcullis firewall`, docs/firewall.md), which stays as the outer wall.
//
// The connection layer calls, per connection (never per request):
//   const v = connGuard.open(clientKey, clientIp, listener, now)   // after a PROXY header, if any
//   if (v !== CONN_ADMIT) { connGuard.refuse(socket, v, now); return }   // close or tarpit
//   … serve …; on the socket's 'close': connGuard.close(clientKey, now)  // once per admitted open()
// open() allocates nothing when it admits (one FNV-1a pass over the key, typed-array updates).
//
// Where the counts live (as in edge/shield/guard.ts for requests):
// - Enforcement: a count-min sketch on a SharedArrayBuffer shared by the node's worker threads
//   (ConnectionGuard.createShared in the main thread, `memory` in each worker): open connections per
//   client, new connections per window per client, and the node-wide open count (the global cap and
//   the gauge). Collisions can only over-count.
// - Visibility and summing: the ClientGuard's `client` stick table (built with GuardConfig.connRateMs)
//   gets conn_cur (this thread's open connections) and conn_rate. With `shared:` (Redis) conn_rate
//   is summed across nodes by the RedisShare like http_req_rate, and the rate decision uses the
//   projected global count (RateColumn.projected) — no Redis call at accept. While Redis is degraded
//   each node holds a client to limit / node_count. conn_cur stays per node (like the kernel's
//   `ct count` and the request guard's in-flight): a 200 ms-old remote gauge would be noise.
// - conn_rate counts admitted connections (as the kernel's `limit rate` only spends tokens on packets
//   it lets through), so a client over the limit gets `limit` connections per window, not zero.
// - `burst` is the kernel's token-bucket burst; in the process the window itself is the burst.
// Keys: the caller's client key (edge/pipeline/identity.ts: IPv4 address, IPv4-mapped IPv6 as IPv4, IPv6 by
// its limits.client.ipv6_prefix) — the same key the request guard, the table and bans use.
// Exempt (limits.connection.exempt + trusted_proxies, like the kernel's exempt sets) skips the
// per-client limits, not the global cap; exempt clients are still counted.
import type { EventBus } from '../observe/events/bus.js';
import { guardEvent, eventClient } from '../observe/events/build.js';
import type { ClientGuard } from './guard.js';
import type { RedisShare } from './stick/redis.js';
import type { RateColumn } from './stick/rate.js';
import type { StickTable } from './stick/table.js';
import { GuardCounters, createGuardMemory, type GuardMemory } from './stick/shared-memory.js';
import { fnv1a } from './stick/keys.js';
import { normalizeConnectionLimits, type ConnectionLimits, type InProcessAction } from './firewall/config.js';
import { addressText, cidrSet, inCidrSet, parseAddressInto, type CidrSetWords } from '../pipeline/identity.js';
import type { EdgeConfig } from '../config/normalize.js';
import type { SharedConfig } from './stick/config.js';

export const CONN_ADMIT = 0;
export const CONN_GLOBAL = 1;
export const CONN_CUR = 2;
export const CONN_RATE = 3;
export type ConnVerdict = 1 | 2 | 3;

/** Reason per verdict (events, `portcullis_guard_rejections_total{reason}`). */
export const CONN_REASONS: readonly string[] = ['admit', 'conn_global', 'conn_cur', 'conn_rate'];

export interface ConnectionGuardConfig {
  /** close | tarpit | off (count only). */
  action: InProcessAction;
  /** New connections admitted per client per window; null = off. */
  rate: { limit: number; windowMs: number } | null;
  /** Open connections per client on this node; 0 = off. */
  concurrent: number;
  /** Open connections on this node, all clients; 0 = off. */
  global: number;
  /** CIDRs skipping the per-client limits (limits.connection.exempt + trusted_proxies). */
  exempt: readonly string[];
  /** Tarpit hold time (timeouts.tarpit). */
  tarpitMs: number;
  /** Connections held in the tarpit at once (limits.tarpit.max_concurrent); beyond, close. */
  tarpitMax: number;
  /** Hash slots per count-min row (power of two). */
  slots: number;
  /** Worker threads sharing the memory. */
  workers: number;
  /** Edge nodes sharing Redis (limit / node_count while degraded). */
  nodeCount: number;
}

/** Builds the guard's config from the normalised `limits.connection` section and its neighbours. */
export function connectionGuardConfig(limits: ConnectionLimits | undefined, opts: {
  trustedProxies?: readonly string[]; tarpitMs?: number; tarpitMax?: number; workers?: number; nodeCount?: number; slots?: number;
} = {}): ConnectionGuardConfig {
  const c = limits ?? normalizeConnectionLimits(undefined);
  const global = c.global === false ? 0 : c.global;
  // Enough slots that distinct clients rarely share both entries: 4 × the global cap, ≤ 2^20.
  let slots = 1 << 12;
  while (slots < Math.min(1 << 20, 4 * (global || 65536))) slots *= 2;
  return {
    action: c.in_process,
    rate: c.rate === false ? null : { limit: c.rate.limit, windowMs: c.rate.window },
    concurrent: c.concurrent === false ? 0 : c.concurrent,
    global,
    exempt: [...c.exempt, ...(opts.trustedProxies ?? [])],
    tarpitMs: opts.tarpitMs ?? 5000,
    tarpitMax: opts.tarpitMax ?? 1000,
    slots: opts.slots ?? slots,
    workers: opts.workers ?? 1,
    nodeCount: opts.nodeCount ?? 1,
  };
}

/** connectionGuardConfig() from a loaded EdgeConfig. */
export function connectionGuardConfigOf(cfg: EdgeConfig): ConnectionGuardConfig {
  const shared = (cfg.sections.shared as SharedConfig | null | undefined) ?? null;
  return connectionGuardConfig(cfg.sections.connection as ConnectionLimits | undefined, {
    trustedProxies: (cfg.sections.trusted_proxies as string[] | undefined) ?? [],
    tarpitMs: cfg.timeouts.tarpitMs, tarpitMax: cfg.tarpitMaxConcurrent, workers: cfg.workers,
    nodeCount: shared?.nodeCount ?? 1,
  });
}

/** What refuse() needs of a socket (net.Socket / tls.TLSSocket fit). */
export interface HoldableSocket {
  pause(): unknown;
  destroy(): unknown;
}

export interface ConnectionGuardDeps {
  /** The request guard whose `client` table gets conn_cur / conn_rate (built with GuardConfig.connRateMs). */
  guard: Pick<ClientGuard, 'table'>;
  /** Sums conn_rate across nodes (the same RedisShare the request guard uses). */
  share?: RedisShare | null;
  bus?: EventBus | null;
  /** Counts refusals by reason (edge/observe/metrics.ts Metrics.guardReject). */
  metrics?: { guardReject(reason: string): void } | null;
  /** From ConnectionGuard.createShared(cfg) in the main thread (workers); default: private memory. */
  memory?: GuardMemory;
  /** Time source for close() without `now` and for the tarpit (default Date.now). */
  now?: () => number;
}

export class ConnectionGuard {
  readonly cfg: ConnectionGuardConfig;
  readonly table: StickTable;
  private readonly counters: GuardCounters;
  private readonly connRate: RateColumn;
  private readonly share: RedisShare | null;
  private readonly bus: EventBus | null;
  private readonly metrics: { guardReject(reason: string): void } | null;
  private readonly clock: () => number;
  private readonly enforce: boolean;
  private readonly rateLimit: number;
  private readonly localRateLimit: number;
  private readonly concurrent: number;
  private readonly global: number;
  // Exempt CIDRs, compiled: v4 pairs (network, mask); v6 groups of 8 (4 network words, 4 mask words).
  private readonly exempt: CidrSetWords;
  private readonly hasExempt: boolean;
  private readonly tarpit: TarpitHold;

  /** Refusals by verdict (index = verdict). */
  readonly rejected = new Float64Array(4);
  /** Connections admitted since start (this thread). */
  admitted = 0;

  static createShared(cfg: ConnectionGuardConfig): GuardMemory {
    return createGuardMemory(cfg.slots, cfg.rate?.windowMs ?? 1000);
  }

  constructor(cfg: ConnectionGuardConfig, deps: ConnectionGuardDeps) {
    this.cfg = cfg;
    const table = deps.guard.table;
    if (table.connRate === null || table.connCur === null) {
      throw new Error('connection guard: the client table has no conn_cur/conn_rate (build the ClientGuard with GuardConfig.connRateMs)');
    }
    const windowMs = cfg.rate?.windowMs ?? 1000;
    if (table.connRate.periodMs !== windowMs) {
      throw new Error(`connection guard: the client table's conn_rate window is ${table.connRate.periodMs} ms, limits.connection.rate.window is ${windowMs} ms`);
    }
    this.table = table;
    this.connRate = table.connRate;
    const mem = deps.memory ?? ConnectionGuard.createShared(cfg);
    if (mem.windowMs !== windowMs) throw new Error('connection guard memory was created for another limits.connection.rate.window');
    this.counters = new GuardCounters(mem, deps.memory !== undefined || cfg.workers > 1);
    this.share = deps.share ?? null;
    this.bus = deps.bus ?? null;
    this.metrics = deps.metrics ?? null;
    this.clock = deps.now ?? Date.now;
    this.enforce = cfg.action !== 'off';
    this.rateLimit = cfg.rate?.limit ?? 0;
    this.localRateLimit = this.rateLimit / (this.share !== null ? Math.max(1, cfg.nodeCount) : 1);
    this.concurrent = cfg.concurrent;
    this.global = cfg.global;
    this.exempt = cidrSet(cfg.exempt, 'limits.connection.exempt');
    this.hasExempt = this.exempt.v4.length + this.exempt.v6.length > 0;
    this.tarpit = new TarpitHold(cfg.tarpitMs, cfg.tarpitMax, this.clock);
  }

  /** Open connections on this node (every worker sharing the memory): the gauge. */
  get openConnections(): number { return this.counters.globalInFlight; }
  /** Connections held in this thread's tarpit now. */
  get tarpitted(): number { return this.tarpit.size; }

  /**
   * One accepted connection (after its PROXY header, if any). CONN_ADMIT (0): counted — pair it with
   * exactly one close(). Else the verdict: the connection was not counted; refuse() it. With
   * `in_process: off` every connection is admitted (and counted). `clientIp`: the client's address
   * as text, or as its 4/16 bytes (cheaper: only read for the exempt check and a refusal's event).
   */
  open(clientKey: string, clientIp: string | Uint8Array, listener: string, now: number): 0 | ConnVerdict {
    const c = this.counters;
    const enforce = this.enforce;
    if (!c.tryEnterGlobal(enforce ? this.global : 0)) return this.reject(CONN_GLOBAL, clientKey, clientIp, listener, now, -1);
    const h = fnv1a(clientKey);
    c.locateHashed(h);
    const t = this.table;
    const limited = enforce && !(this.hasExempt && this.isExempt(clientIp));
    if (!c.tryEnter(limited ? this.concurrent : 0)) { c.leaveGlobal(); return this.reject(CONN_CUR, clientKey, clientIp, listener, now, h); }
    const s = t.slotHashed(clientKey, h, now);
    const limit = this.rateLimit;
    if (limited && limit > 0) {
      const share = this.share;
      let over: boolean;
      if (share !== null && !share.degraded) {
        over = this.connRate.projected(s, now, share.contributors) >= limit;
        if (over) t.markDirty(s); // keep pulling the global count while refusing
      } else {
        over = c.rate(now) >= this.localRateLimit;
      }
      if (over) { c.leave(); c.leaveGlobal(); return this.reject(CONN_RATE, clientKey, clientIp, listener, now, h); }
    }
    c.hit(now);
    this.connRate.add(s, 1, now); // also queued for the next Redis round when shared
    t.incConnCur(s);
    this.admitted++;
    return CONN_ADMIT;
  }

  /** An admitted connection ended (any cause). Exactly once per open() that returned CONN_ADMIT. */
  close(clientKey: string, now: number = this.clock()): void {
    const c = this.counters;
    const h = fnv1a(clientKey);
    c.leaveGlobal();
    c.locateHashed(h);
    c.leave();
    // The same hash for the table: a key evicted meanwhile comes back with conn_cur 0 and stays at 0.
    const t = this.table;
    t.decConnCur(t.slotHashed(clientKey, h, now));
  }

  /**
   * Applies the in-process action to a refused connection: `close` destroys it now; `tarpit` pauses
   * it (nothing is read) and destroys it after the tarpit time — at most tarpitMax at once, beyond
   * that it is closed at once. Returns what was done.
   */
  refuse(socket: HoldableSocket, _verdict: ConnVerdict, now: number = this.clock()): 'closed' | 'tarpit' {
    if (this.cfg.action === 'tarpit' && this.tarpit.hold(socket, now)) return 'tarpit';
    socket.destroy();
    return 'closed';
  }

  /** Open connections of a client on this node (count-min estimate). */
  connCurOf(clientKey: string): number {
    this.counters.locate(clientKey);
    return this.counters.inFlight();
  }

  /** New connections of a client in the window, as the guard sees it (global when shared). */
  connRateOf(clientKey: string, now: number): number {
    if (this.share !== null && !this.share.degraded) {
      const s = this.table.peek(clientKey, now);
      return s < 0 ? 0 : this.connRate.best(s, now);
    }
    this.counters.locate(clientKey);
    return this.counters.rate(now);
  }

  /** Closes every tarpitted socket and stops the tarpit timer (graceful stop). */
  stop(): void { this.tarpit.clear(); }

  private reject(v: ConnVerdict, key: string, ip: string | Uint8Array, listener: string, now: number, h: number): ConnVerdict {
    this.rejected[v]++;
    const reason = CONN_REASONS[v];
    this.metrics?.guardReject(reason);
    const bus = this.bus;
    if (bus !== null && bus.hasListeners) {
      if (h >= 0) this.counters.locateHashed(h);
      const counters: Record<string, number> = v === CONN_GLOBAL
        ? { conn_global: this.counters.globalInFlight }
        : { conn_cur: this.counters.inFlight(), conn_rate: Math.round(this.connRateOf(key, now) * 100) / 100 };
      const tarpit = this.cfg.action === 'tarpit' && this.tarpit.size < this.cfg.tarpitMax;
      bus.emit(guardEvent({
        client: eventClient(typeof ip === 'string' ? ip : addressText(ip), key), reason, status: null, term: tarpit ? 'PT' : 'PR', counters, listener,
        action: tarpit ? 'tarpit' : 'reject',
      }));
    }
    return v;
  }

  private isExempt(ip: string | Uint8Array): boolean {
    const w = SCRATCH;
    let v4: boolean;
    if (typeof ip === 'string') {
      const fam = parseAddressInto(ip, w);
      if (fam === 0) return false;
      v4 = fam === 4;
    } else if (ip.length === 4) {
      w[3] = ((ip[0] << 24) | (ip[1] << 16) | (ip[2] << 8) | ip[3]) >>> 0;
      v4 = true;
    } else if (ip.length === 16) {
      for (let i = 0; i < 4; i++) w[i] = ((ip[4 * i] << 24) | (ip[4 * i + 1] << 16) | (ip[4 * i + 2] << 8) | ip[4 * i + 3]) >>> 0;
      v4 = w[0] === 0 && w[1] === 0 && w[2] === 0xffff; // IPv4-mapped counts as IPv4
    } else {
      return false;
    }
    return inCidrSet(w, v4, this.exempt);
  }
}

const SCRATCH = new Uint32Array(4);

/**
 * client.conn_cur / client.conn_rate for the rules read from the `client` stick table alone (this
 * thread's conn_cur, the summed conn_rate) — for an edge whose ConnectionGuard is not at hand; the
 * ConnectionGuard itself answers the same two calls with node-wide conn_cur.
 */
export function tableConnCounts(table: StickTable): { connCurOf(key: string): number; connRateOf(key: string, now: number): number } {
  return {
    connCurOf(key: string): number {
      const s = table.connCur === null ? -1 : table.peek(key, Date.now());
      return s < 0 ? 0 : (table.connCur as Int32Array)[s];
    },
    connRateOf(key: string, now: number): number {
      const s = table.connRate === null ? -1 : table.peek(key, now);
      return s < 0 ? 0 : (table.connRate as RateColumn).best(s, now);
    },
  };
}

/**
 * Refused connections held without reading, in arrival order (one hold time for all: a FIFO and a
 * single timer), then destroyed. Bounded: a full tarpit answers "close it yourself".
 */
class TarpitHold {
  private readonly sockets: (HoldableSocket | undefined)[] = [];
  private readonly until: number[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly holdMs: number, private readonly max: number, private readonly clock: () => number) {}

  get size(): number { return this.sockets.length - this.head; }

  hold(socket: HoldableSocket, now: number): boolean {
    if (this.size >= this.max || this.holdMs <= 0) return false;
    socket.pause();
    this.sockets.push(socket);
    this.until.push(now + this.holdMs);
    if (this.timer === null) this.arm(this.holdMs);
    return true;
  }

  clear(): void {
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
    for (let i = this.head; i < this.sockets.length; i++) this.sockets[i]?.destroy();
    this.sockets.length = 0; this.until.length = 0; this.head = 0;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.expire(), Math.max(1, ms));
    this.timer.unref();
  }

  private expire(): void {
    this.timer = null;
    const now = this.clock();
    while (this.head < this.sockets.length && this.until[this.head] <= now) {
      const s = this.sockets[this.head];
      this.sockets[this.head] = undefined;
      this.head++;
      s?.destroy();
    }
    if (this.head > 1024 && this.head * 2 > this.sockets.length) {
      this.sockets.splice(0, this.head); this.until.splice(0, this.head); this.head = 0;
    }
    if (this.head < this.sockets.length) this.arm(this.until[this.head] - now);
    else { this.sockets.length = 0; this.until.length = 0; this.head = 0; }
  }
}
