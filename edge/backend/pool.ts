// A backend: its servers, the balancing policy, health (active + passive), cookie persistence and
// the peak queue, behind the BackendPool contract (types.ts). Everything on the acquire/release
// path is synchronous and allocation-light; timers exist only for health checks and one coarse
// housekeeping tick (queue timeouts, passive cool-down) that runs only while there is work for it.
import type { EventBus } from '../observe/events/bus.js';
import { errorEvent, healthEvent } from '../observe/events/build.js';
import type { Clock } from '../../lib/clock.js';
import type {
  AcquireError, AcquireRequest, AcquireResult, AcquireTicket, AcquireWaiter, BackendConfig, BackendPool,
  LeasedServer, ReleaseOutcome, ServerInfo, ServerState,
} from './types.js';
import { ServerRuntime } from './server.js';
import { createPolicy, type BalancePolicy, type SelectContext } from './balancing/index.js';
import { StickyCodec } from './sticky.js';
import { WaitQueue, Waiter, priorityClass } from './queue.js';
import { ActiveCheck, type CheckResult } from './health.js';
import { sharedView, type SharedActiveCounts } from './shared.js';
import { validateBackendConfig } from './validate.js';

export interface PoolDeps {
  bus: EventBus;
  clock: Clock;
}

/** Without active checks, a server marked down by live traffic is tried again after this. */
export const DEFAULT_PASSIVE_COOLDOWN_MS = 10_000;
/** Period of the housekeeping tick (queue timeouts, cool-downs, cross-worker slot polling). */
export const HOUSEKEEPING_MS = 50;

/** Check summary attached to every health event. Non-check causes use ADMIN, PASSIVE, COOLDOWN. */
export interface HealthEventCheck {
  status: string;
  code: number | null;
  durationMs: number;
}

interface Tier {
  readonly servers: ServerRuntime[];
  readonly policy: BalancePolicy;
  readonly backup: boolean;
}

/** Adapts the callback form of acquire() (tests, tools) to the waiter the pool works with. */
class CallbackWaiter implements AcquireWaiter {
  constructor(private readonly cb: (r: AcquireResult) => void) {}
  granted(server: LeasedServer, setCookie: string | null, queuedMs: number): void {
    this.cb({ error: null, server, setCookie, queuedMs });
  }
  refused(error: AcquireError, queuedMs: number): void {
    this.cb({ error, server: null, setCookie: null, queuedMs });
  }
}

const NOOP_TICKET: AcquireTicket = { cancel(): void { /* nothing was queued */ } };
const ADMIN_CHECK: HealthEventCheck = { status: 'ADMIN', code: null, durationMs: 0 };
const SERVER_STATES: readonly string[] = ['up', 'down', 'drain', 'maint'];

export function createBackendPool(cfg: BackendConfig, deps: PoolDeps, shared?: SharedActiveCounts): BackendPool {
  return new Pool(cfg, deps, shared ?? null);
}

class Pool implements BackendPool {
  readonly name: string;
  private readonly list: ServerRuntime[];
  private readonly byName = new Map<string, ServerRuntime>();
  private readonly primary: Tier;
  private readonly backups: Tier;
  private tier: Tier | null = null;
  private tierDirty = true;
  private readonly sticky: StickyCodec | null;
  private readonly queue = new WaitQueue();
  private readonly ctx: SelectContext = { now: 0, clientKey: '', epoch: 0 };
  private epoch = 0;
  private readonly bus: EventBus;
  private readonly clock: Clock;
  private readonly sharedCounts: boolean;
  private readonly activeChecksOn: boolean;
  private readonly passiveFailures: number;
  private readonly cooldownMs: number;
  private checks: ActiveCheck[] = [];
  private housekeeping: NodeJS.Timeout | null = null;
  private dispatching = false;
  private dispatchAgain = false;
  private coolingDown = 0;
  private stopped = false;
  /** release() calls for a lease this pool did not hand out (or released twice). */
  strayReleases = 0;

  constructor(private readonly cfg: BackendConfig, deps: PoolDeps, shared: SharedActiveCounts | null) {
    validateBackendConfig(cfg);
    this.name = cfg.name;
    this.bus = deps.bus;
    this.clock = deps.clock;
    const view = shared === null ? null : sharedView(cfg, shared);
    this.sharedCounts = view !== null;
    this.list = cfg.servers.map((s, i) => new ServerRuntime(s, i, this, view));
    for (const s of this.list) this.byName.set(s.name, s);
    this.primary = this.makeTier(this.list.filter((s) => !s.backup), false);
    this.backups = this.makeTier(this.list.filter((s) => s.backup), true);
    this.sticky = cfg.sticky === null ? null : new StickyCodec(cfg.name, cfg.sticky.cookie, cfg.sticky.secret, this.list);
    const h = cfg.health;
    this.activeChecksOn = h !== null && h.intervalMs > 0 && h.path !== '';
    this.passiveFailures = h === null ? 0 : h.passiveFailures;
    this.cooldownMs = h?.passiveCooldownMs ?? DEFAULT_PASSIVE_COOLDOWN_MS;
  }

  private makeTier(servers: ServerRuntime[], backup: boolean): Tier {
    servers.forEach((s, i) => { s.tierIndex = i; });
    return { servers, policy: createPolicy(this.cfg.balance, servers), backup };
  }

  // ---------------------------------------------------------------- acquire / release

  acquire(req: AcquireRequest, cb: (r: AcquireResult) => void): AcquireTicket {
    return this.acquireFor(req, new CallbackWaiter(cb));
  }

  acquireFor(req: AcquireRequest, waiter: AcquireWaiter): AcquireTicket {
    const now = req.now ?? this.clock.now();
    if (this.coolingDown > 0) this.reviveCooled(now);
    const tier = this.currentTier();
    if (tier === null) return this.failNow(waiter, 'no_server');
    // With shared counts, a slot freed by another worker goes to our waiters before a newcomer.
    if (this.sharedCounts && this.queue.size > 0) this.dispatchQueue();
    const epoch = this.stamp(req.exclude);
    let pinned: ServerRuntime | null = null;
    if (this.sticky !== null && req.stickyCookie !== undefined) {
      const s = this.sticky.lookup(req.stickyCookie);
      if (s !== undefined && this.pinnable(s, tier, epoch)) pinned = s;
    }
    if (pinned !== null) {
      // A pinned client waits for its own server rather than being moved while it is merely busy.
      if (pinned.tryTake()) return this.grantNow(waiter, pinned, null);
    } else {
      const s = this.pick(tier, req.clientKey, now, epoch);
      if (s !== null) return this.grantNow(waiter, s, this.sticky === null ? null : this.sticky.setCookieFor(s));
      if (!this.anyCandidate(tier, epoch)) return this.failNow(waiter, 'no_server');
    }
    // Every usable server is at maxconn: wait in the backend queue.
    if (this.stopped) return this.failNow(waiter, 'queue_timeout');
    if (this.queue.size >= this.cfg.queue.max) return this.failNow(waiter, 'queue_full');
    const w = new Waiter(this.queue, priorityClass(req.priority), req.clientKey, pinned, req.exclude, waiter, now, now + this.cfg.queue.timeoutMs);
    this.queue.push(w);
    this.ensureHousekeeping();
    return w;
  }

  release(server: LeasedServer, outcome: ReleaseOutcome): void {
    if (!(server instanceof ServerRuntime) || server.owner !== this || !server.give()) {
      this.strayReleases++;
      return;
    }
    if (this.passiveFailures > 0) this.observe(server, outcome);
    if (this.queue.size > 0) this.dispatchQueue();
    // A slot freed on this generation of the server is one for its namesake in the other pool
    // generation too (live reconfiguration): let that pool's queue use it.
    const peers = server.peers;
    for (let i = 0; i < peers.length; i++) { const o = peers[i].owner; if (o instanceof Pool) o.peerReleased(); }
  }

  /** The other pool generation freed a slot of a shared server (see release()). */
  peerReleased(): void {
    if (this.queue.size > 0 && !this.stopped) this.dispatchQueue();
  }

  queueLength(): number {
    return this.queue.size;
  }

  private grantNow(waiter: AcquireWaiter, s: ServerRuntime, setCookie: string | null): AcquireTicket {
    waiter.granted(s, setCookie, 0);
    return NOOP_TICKET;
  }

  private failNow(waiter: AcquireWaiter, error: AcquireError): AcquireTicket {
    waiter.refused(error, 0);
    return NOOP_TICKET;
  }

  /** New selection epoch; servers in `exclude` are skipped for it. */
  private stamp(exclude: readonly string[] | null): number {
    const epoch = ++this.epoch;
    if (exclude !== null) {
      for (const n of exclude) {
        const s = this.byName.get(n);
        if (s !== undefined) s.skipEpoch = epoch;
      }
    }
    return epoch;
  }

  private pinnable(s: ServerRuntime, tier: Tier, epoch: number): boolean {
    // A cookie for a backup server is honoured only while the backups are serving — except a server
    // of the other site: a shopper pinned there (through the other node) keeps their server while it is up.
    return s.available && (s.backup === tier.backup || s.cfg.otherSite === true) && s.skipEpoch !== epoch;
  }

  /** Select and take a slot. With shared counts another worker may win the last slot between
   *  select and take: skip that server and select again. */
  private pick(tier: Tier, clientKey: string, now: number, epoch: number): ServerRuntime | null {
    const ctx = this.ctx;
    ctx.now = now;
    ctx.clientKey = clientKey;
    ctx.epoch = epoch;
    for (let attempt = 0; attempt <= tier.servers.length; attempt++) {
      const s = tier.policy.select(ctx);
      if (s === null) return null;
      if (s.tryTake()) return s;
      s.skipEpoch = epoch;
    }
    return null;
  }

  /** Some server of the tier could serve this request once it has a free slot. */
  private anyCandidate(tier: Tier, epoch: number): boolean {
    for (const s of tier.servers) if (s.available && s.skipEpoch !== epoch) return true;
    return false;
  }

  private anyFreeSlot(tier: Tier): boolean {
    for (const s of tier.servers) if (s.available && s.hasSlot()) return true;
    return false;
  }

  /** Primaries while any primary can take traffic; otherwise the backups; null when none can. */
  private currentTier(): Tier | null {
    if (!this.tierDirty) return this.tier;
    this.tierDirty = false;
    this.tier = this.primary.servers.some((s) => s.available) ? this.primary
      : this.backups.servers.some((s) => s.available) ? this.backups : null;
    return this.tier;
  }

  // ---------------------------------------------------------------- queue

  /** Hand free slots to waiters in service order. Re-entrant calls (a callback releasing or
   *  changing state) are folded into another pass of the outer call. */
  private dispatchQueue(): void {
    if (this.dispatching) {
      this.dispatchAgain = true;
      return;
    }
    this.dispatching = true;
    try {
      do {
        this.dispatchAgain = false;
        this.dispatchPass();
      } while (this.dispatchAgain && this.queue.size > 0);
    } finally {
      this.dispatching = false;
    }
  }

  private dispatchPass(): void {
    const now = this.clock.now();
    let w = this.queue.first();
    while (w !== null) {
      const tier = this.currentTier();
      if (tier === null) {
        this.failAll('no_server', now);
        return;
      }
      if (!this.anyFreeSlot(tier)) return;
      let next = this.queue.after(w);
      this.tryServe(w, tier, now);
      // a callback may have cancelled or served the waiter we were about to visit
      if (next !== null && !next.queued) next = this.queue.first();
      w = next;
    }
  }

  private tryServe(w: Waiter, tier: Tier, now: number): void {
    const epoch = this.stamp(w.exclude);
    let p = w.pinned;
    if (p !== null && !this.pinnable(p, tier, epoch)) {
      this.queue.unpin(w); // its server went away: redispatch, cookie gets rewritten
      p = null;
    }
    if (p !== null) {
      if (!p.tryTake()) return;
      this.queue.remove(w);
      this.deliverGrant(w, p, null, now - w.enqueuedAt);
      return;
    }
    const s = this.pick(tier, w.clientKey, now, epoch);
    if (s !== null) {
      this.queue.remove(w);
      this.deliverGrant(w, s, this.sticky === null ? null : this.sticky.setCookieFor(s), now - w.enqueuedAt);
    } else if (!this.anyCandidate(tier, epoch)) {
      this.queue.remove(w);
      this.deliverRefusal(w, 'no_server', now - w.enqueuedAt);
    }
  }

  /** Hands a queued waiter its server. */
  private deliverGrant(w: Waiter, server: ServerRuntime, setCookie: string | null, queuedMs: number): void {
    try {
      w.waiter.granted(server, setCookie, queuedMs);
    } catch (err) {
      this.waiterThrew(err);
    }
  }

  /** Tells a queued waiter it gets no server. */
  private deliverRefusal(w: Waiter, error: AcquireError, queuedMs: number): void {
    try {
      w.waiter.refused(error, queuedMs);
    } catch (err) {
      this.waiterThrew(err);
    }
  }

  /** The pipeline's waiter must not throw; if it does, the pool stays consistent and says so. */
  private waiterThrew(err: unknown): void {
    this.bus.emit(errorEvent(`backend queue callback: ${err instanceof Error ? err.message : String(err)}`, { backend: this.name }));
  }

  private failAll(error: AcquireError, now: number): void {
    let w: Waiter | null;
    while ((w = this.queue.first()) !== null) {
      this.queue.remove(w);
      this.deliverRefusal(w, error, now - w.enqueuedAt);
    }
  }

  /** The tick keeps the process alive only while requests wait (they have deadlines to meet);
   *  a pending cool-down alone does not hold an exiting process. */
  private ensureHousekeeping(): void {
    if (this.housekeeping === null) this.housekeeping = setInterval(() => this.tick(), HOUSEKEEPING_MS);
    if (this.queue.size > 0) this.housekeeping.ref(); else this.housekeeping.unref();
  }

  /** Coarse timer: expire queue entries past their deadline, end cool-downs, and (with shared
   *  counts) pick up slots that other workers freed. Stops itself when idle. */
  private tick(): void {
    const now = this.clock.now();
    if (this.coolingDown > 0) this.reviveCooled(now);
    let w: Waiter | null;
    while ((w = this.queue.popExpired(now)) !== null) {
      this.deliverRefusal(w, 'queue_timeout', now - w.enqueuedAt);
    }
    if (this.sharedCounts && this.queue.size > 0) this.dispatchQueue();
    if (this.housekeeping === null) return;
    if (this.queue.size === 0 && this.coolingDown === 0) {
      clearInterval(this.housekeeping);
      this.housekeeping = null;
    } else if (this.queue.size === 0) {
      this.housekeeping.unref();
    }
  }

  // ---------------------------------------------------------------- health

  start(): void {
    this.stopped = false;
    if (!this.activeChecksOn || this.checks.length > 0) return;
    const h = this.cfg.health!;
    const n = this.list.length;
    this.checks = this.list.map((s, i) => new ActiveCheck(s.url, h, (r) => this.onCheck(s, r), Math.floor((h.intervalMs * i) / n)));
    for (const c of this.checks) c.start();
  }

  stop(): void {
    this.stopped = true;
    this.unlinkPeers();
    for (const c of this.checks) c.stop();
    this.checks = [];
    if (this.housekeeping !== null) clearInterval(this.housekeeping);
    this.housekeeping = null;
    this.failAll('queue_timeout', this.clock.now());
  }

  private onCheck(s: ServerRuntime, r: CheckResult): void {
    s.lastCheck = r.code === null ? `${r.status} in ${r.durationMs}ms` : `${r.status} ${r.code} in ${r.durationMs}ms`;
    if (s.admin === 'maint' || this.stopped) return; // in maintenance, checks do not report
    const h = this.cfg.health!;
    const check: HealthEventCheck = { status: r.status, code: r.code, durationMs: r.durationMs };
    if (r.ok) {
      s.checkFall = 0;
      if (s.oper === 'down' && ++s.checkRise >= h.rise) {
        this.setOper(s, 'up', `${r.detail}; ${h.rise} consecutive successful checks`, check);
      }
    } else {
      s.checkRise = 0;
      if (s.oper === 'up' && ++s.checkFall >= h.fall) {
        this.setOper(s, 'down', `${r.detail}; ${h.fall} consecutive failed checks`, check);
      }
    }
  }

  /** Passive health: consecutive failures seen by live traffic. A timeout counts (the client got
   *  a 504); a client abort does not. */
  private observe(s: ServerRuntime, outcome: ReleaseOutcome): void {
    switch (outcome) {
      case 'ok':
        s.passiveFails = 0;
        return;
      case 'connect_error':
      case 'http_5xx':
      case 'reset':
      case 'timeout':
        if (s.oper !== 'up') return;
        if (++s.passiveFails < this.passiveFailures) return;
        this.setOper(s, 'down', `${s.passiveFails} consecutive failures on live traffic (last: ${outcome})`, { status: 'PASSIVE', code: null, durationMs: 0 });
        if (!this.activeChecksOn) {
          s.cooldownUntil = this.clock.now() + this.cooldownMs;
          this.coolingDown++;
          this.ensureHousekeeping();
        }
        return;
      default:
        return;
    }
  }

  private reviveCooled(now: number): void {
    for (const s of this.list) {
      if (s.cooldownUntil >= 0 && now >= s.cooldownUntil) {
        this.clearCooldown(s);
        if (s.oper === 'down') this.setOper(s, 'up', `passive cool-down of ${this.cooldownMs}ms elapsed`, { status: 'COOLDOWN', code: null, durationMs: 0 });
      }
    }
  }

  private clearCooldown(s: ServerRuntime): void {
    if (s.cooldownUntil >= 0) {
      s.cooldownUntil = -1;
      this.coolingDown--;
    }
  }

  private setOper(s: ServerRuntime, to: 'up' | 'down', reason: string, check: HealthEventCheck): void {
    const from = s.state;
    s.oper = to;
    s.checkRise = 0;
    s.checkFall = 0;
    if (to === 'up') {
      s.passiveFails = 0;
      this.clearCooldown(s);
      s.startRamp(this.clock.now()); // down → up: slow start (never at first start)
    }
    this.changed(s, from, reason, check);
  }

  private changed(s: ServerRuntime, from: ServerState, reason: string, check: HealthEventCheck): void {
    this.tierDirty = true;
    s.lastReason = reason;
    const to = s.state;
    if (from !== to) {
      this.bus.emit(healthEvent({ backend: this.name, server: s.name, from, to, reason, check }));
    }
    if (this.queue.size > 0) this.dispatchQueue();
  }

  // ---------------------------------------------------------------- admin

  servers(): ServerInfo[] {
    const now = this.clock.now();
    const backendQueued = this.queue.size;
    return this.list.map((s) => ({
      backend: this.name,
      name: s.name,
      url: s.url,
      state: s.state,
      weight: s.weight,
      effectiveWeight: Math.round(s.effectiveWeight(now) * 100) / 100,
      backup: s.backup,
      site: s.cfg.site ?? null,
      active: s.activeNow(),
      activeLocal: s.active,
      maxconn: s.maxconn,
      queued: s.pinnedQueued,
      backendQueued,
      total: s.total,
      checkStatus: s.lastCheck,
      lastChange: s.lastReason,
    }));
  }

  /**
   * Admin state change. 'up': ready and operationally up now (slow start applies when it was
   * down or in maintenance); 'down': marked down, as if checks had failed — active checks bring it
   * back after `rise` successes, without active checks it stays down until set 'up'; 'drain': no
   * new requests (sticky clients are redispatched, in-flight ones finish); 'maint': no traffic and
   * health checks stop reporting until the server leaves maintenance.
   */
  setState(server: string, state: ServerState): boolean {
    const s = this.byName.get(server);
    if (s === undefined || !SERVER_STATES.includes(state)) return false;
    const from = s.state;
    const now = this.clock.now();
    switch (state) {
      case 'up':
        if (s.oper === 'down' || s.admin === 'maint') s.startRamp(now);
        s.admin = 'ready';
        s.oper = 'up';
        s.passiveFails = 0;
        s.checkRise = 0;
        s.checkFall = 0;
        this.clearCooldown(s);
        break;
      case 'down':
        s.admin = 'ready';
        s.oper = 'down';
        s.checkRise = 0;
        s.checkFall = 0;
        this.clearCooldown(s);
        break;
      case 'drain':
        s.admin = 'drain';
        break;
      case 'maint':
        s.admin = 'maint';
        s.checkRise = 0;
        s.checkFall = 0;
        break;
    }
    this.changed(s, from, `admin: set state ${state}`, ADMIN_CHECK);
    return true;
  }

  runtimeOf(server: string): ServerRuntime | undefined { return this.byName.get(server); }

  linkPeers(previous: BackendPool): void {
    for (const s of this.list) {
      const o = previous.runtimeOf?.(s.name);
      if (!(o instanceof ServerRuntime) || o.url !== s.url) continue;
      // Every live generation of this server counts the others' requests in flight.
      const group = [o, ...o.peers];
      s.peers = group;
      for (const g of group) g.peers = [...g.peers, s];
    }
  }

  /** A stopped pool's servers no longer count for their other generations. */
  private unlinkPeers(): void {
    for (const s of this.list) {
      for (const p of s.peers) p.peers = p.peers.filter((x) => x !== s);
      s.peers = [];
    }
  }

  adoptState(server: string, state: ServerState, checkStatus: string | null): void {
    const s = this.byName.get(server);
    if (s === undefined) return;
    if (state === 'maint') s.admin = 'maint';
    else if (state === 'drain') s.admin = 'drain';
    else if (state === 'down') s.oper = 'down';
    s.lastCheck = checkStatus;
    this.tierDirty = true;
  }

  setWeight(server: string, weight: number): boolean {
    const s = this.byName.get(server);
    if (s === undefined || !Number.isInteger(weight) || weight < 0 || weight > 256) return false;
    if (s.weight === weight) return true;
    s.weight = weight;
    s.rrCurrent = 0;
    const tier = s.backup ? this.backups : this.primary;
    tier.policy.rebuild?.();
    this.tierDirty = true;
    s.lastReason = `admin: set weight ${weight}`;
    if (this.queue.size > 0) this.dispatchQueue();
    return true;
  }
}
