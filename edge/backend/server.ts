// Live state of one server, kept apart from its configuration (ServerConfig stays read-only).
// Two independent axes, as in HAProxy: the admin state (ready/drain/maint, set by the operator)
// and the operational state (up/down, decided by active and passive health checks). The state
// the admin API shows is derived from both. The object doubles as the LeasedServer handed to the
// pipeline, so acquire() allocates nothing for the lease.
import type { LeasedServer, ServerConfig, ServerState } from './types.js';

export type AdminState = 'ready' | 'drain' | 'maint';
export type OperState = 'up' | 'down';

/** During slow start the effective weight never drops below this fraction of the weight, so a
 *  server that just came back still gets a trickle of traffic (and can prove itself). */
export const SLOWSTART_MIN_FRACTION = 0.01;

export class ServerRuntime implements LeasedServer {
  readonly name: string;
  readonly url: string;
  readonly cfg: ServerConfig;
  /** Position in the backend's server list (config order, used by `first`). */
  readonly index: number;
  /** Position inside its tier (primaries or backups), used by policies. */
  tierIndex = 0;
  readonly backup: boolean;
  readonly maxconn: number;
  /** Pool that created this server: release() ignores leases from another pool generation. */
  readonly owner: object;

  weight: number;
  admin: AdminState = 'ready';
  oper: OperState = 'up';
  /** Requests in flight from this process (worker). */
  active = 0;
  /** Requests handed to this server since start (this process). */
  total = 0;
  /** Clock time the slow-start ramp began, or -1 when not ramping. */
  rampStart = -1;
  /** Smooth weighted round robin "current weight" (nginx). */
  rrCurrent = 0;
  /** Equal to the pool's selection epoch when this server must be skipped for that selection
   *  (excluded by the caller, or a shared slot was lost to another worker). */
  skipEpoch = 0;
  /** Consecutive failures seen on live traffic. */
  passiveFails = 0;
  /** Consecutive active-check successes while down / failures while up. */
  checkRise = 0;
  checkFall = 0;
  lastCheck: string | null = null;
  lastReason: string | null = null;
  /** Clock time a passively-downed server comes back without active checks, or -1. */
  cooldownUntil = -1;
  /** Queued requests pinned to this server by their sticky cookie. */
  pinnedQueued = 0;

  /**
   * The same server (name and URL) in the other live pool generations around live reconfigurations:
   * their requests in flight count against this one's maxconn too, so reloads never let the origin
   * see more than maxconn (old pools finish their requests, the new one takes new ones). Empty
   * unless a reload rebuilt the backend while requests were in flight; a stopped pool unlinks itself.
   */
  peers: ServerRuntime[] = [];

  /** In flight on the other generations of this server. */
  private peerLoad(): number {
    const ps = this.peers;
    let n = 0;
    for (let i = 0; i < ps.length; i++) n += ps[i].ownActive();
    return n;
  }

  /** Cross-worker active counts (SharedArrayBuffer), or null when counting per process. */
  private readonly shared: Int32Array | null;
  private readonly slot: number;

  constructor(cfg: ServerConfig, index: number, owner: object, shared: Int32Array | null) {
    this.cfg = cfg;
    this.name = cfg.name;
    this.url = cfg.url;
    this.index = index;
    this.backup = cfg.backup;
    this.maxconn = cfg.maxconn;
    this.weight = cfg.weight;
    this.owner = owner;
    this.shared = shared;
    this.slot = index;
  }

  /** May take new (non-pinned) traffic as far as health, admin state and weight go. */
  get available(): boolean {
    return this.admin === 'ready' && this.oper === 'up' && this.weight > 0;
  }

  /** State shown to operators: maint > down > drain > up. */
  get state(): ServerState {
    if (this.admin === 'maint') return 'maint';
    if (this.oper === 'down') return 'down';
    if (this.admin === 'drain') return 'drain';
    return 'up';
  }

  /** Weight in force at `now`: ramps linearly from 1 % to 100 % over slowstartMs after the
   *  server comes back. Only the weight ramps (as in HAProxy); maxconn stays as configured. */
  effectiveWeight(now: number): number {
    if (this.rampStart < 0) return this.weight;
    const elapsed = now - this.rampStart;
    const ms = this.cfg.slowstartMs;
    if (elapsed >= ms) {
      this.rampStart = -1;
      return this.weight;
    }
    const f = elapsed / ms;
    return this.weight * (f > SLOWSTART_MIN_FRACTION ? f : SLOWSTART_MIN_FRACTION);
  }

  /** In-flight requests on this server: across all workers when counts are shared. */
  activeNow(): number {
    return this.shared === null ? this.active : Atomics.load(this.shared, this.slot);
  }

  /** This generation's own in-flight count (without the peer's). */
  private ownActive(): number {
    return this.shared === null ? this.active : Atomics.load(this.shared, this.slot);
  }

  hasSlot(): boolean {
    return this.maxconn === 0 || this.activeNow() + (this.peers.length === 0 ? 0 : this.peerLoad()) < this.maxconn;
  }

  /** Take one connection slot; false when the server is at maxconn. With shared counts this is a
   *  compare-and-swap, so the total across workers never exceeds maxconn. */
  tryTake(): boolean {
    const sh = this.shared;
    const other = this.peers.length === 0 ? 0 : this.peerLoad();
    if (sh === null) {
      if (this.maxconn !== 0 && this.active + other >= this.maxconn) return false;
    } else if (this.maxconn === 0) {
      Atomics.add(sh, this.slot, 1);
    } else {
      for (;;) {
        const cur = Atomics.load(sh, this.slot);
        if (cur + other >= this.maxconn) return false;
        if (Atomics.compareExchange(sh, this.slot, cur, cur + 1) === cur) break;
      }
    }
    this.active++;
    this.total++;
    return true;
  }

  /** Give back one slot. Returns false (and changes nothing) on a release without a lease. */
  give(): boolean {
    if (this.active <= 0) return false;
    this.active--;
    if (this.shared !== null) Atomics.sub(this.shared, this.slot, 1);
    return true;
  }

  startRamp(now: number): void {
    this.rampStart = this.cfg.slowstartMs > 0 ? now : -1;
    this.rrCurrent = 0;
  }
}
