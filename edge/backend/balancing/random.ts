// Power of two choices: draw two distinct usable servers at random, each with probability
// proportional to its effective weight, and keep the one with fewer in-flight requests relative to
// weight (the first draw on a tie). Nearly as even as leastconn, without every worker herding onto the same idle server.
import type { ServerRuntime } from '../server.js';
import { usable, type BalancePolicy, type SelectContext } from './policy.js';

export class RandomPolicy implements BalancePolicy {
  /** Effective weight per tier slot for this selection, 0 when unusable. */
  private readonly w: Float64Array;

  constructor(private readonly servers: readonly ServerRuntime[], private readonly rand: () => number = Math.random) {
    this.w = new Float64Array(servers.length);
  }

  select(ctx: SelectContext): ServerRuntime | null {
    const list = this.servers;
    const w = this.w;
    let total = 0;
    let count = 0;
    for (let i = 0; i < list.length; i++) {
      const s = list[i]!;
      const x = usable(s, ctx) ? s.effectiveWeight(ctx.now) : 0;
      w[i] = x;
      total += x;
      if (x > 0) count++;
    }
    if (count === 0) return null;
    const a = this.pick(total, -1);
    if (count === 1) return list[a]!;
    const b = this.pick(total - w[a]!, a);
    const sa = list[a]!;
    const sb = list[b]!;
    // active/weight, compared without division; on a tie (e.g. both idle) the first draw wins,
    // so idle traffic follows the weights
    return sb.activeNow() * w[a]! < sa.activeNow() * w[b]! ? sb : sa;
  }

  /** Weighted draw over w[], skipping index `skip`. */
  private pick(total: number, skip: number): number {
    const w = this.w;
    let r = this.rand() * total;
    let last = -1;
    for (let i = 0; i < w.length; i++) {
      if (i === skip || w[i] === 0) continue;
      last = i;
      r -= w[i]!;
      if (r < 0) return i;
    }
    return last; // rounding at the top end
  }
}
