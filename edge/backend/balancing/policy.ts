// What every balancing policy implements (one file per policy, Caddy-style). A policy is bound to
// one tier (the primaries or the backups) and picks among the servers that are usable right now.
import type { ServerRuntime } from '../server.js';

/** One object per pool, refilled before each selection (no allocation per request). */
export interface SelectContext {
  /** Clock time, for slow-start effective weights. */
  now: number;
  /** Client key for `source` hashing. */
  clientKey: string;
  /** Servers whose skipEpoch equals this are excluded from this selection. */
  epoch: number;
}

export interface BalancePolicy {
  select(ctx: SelectContext): ServerRuntime | null;
  /** Called after a weight change (the hash ring is rebuilt; other policies read weights live). */
  rebuild?(): void;
}

/** Usable now: up and ready, weight above 0, not excluded, below maxconn. */
export function usable(s: ServerRuntime, ctx: SelectContext): boolean {
  return s.available && s.skipEpoch !== ctx.epoch && s.hasSlot();
}
