// Fewest in-flight requests relative to weight: minimise (active + 1) / weight, so that among idle
// servers the heavier one wins first. Ties go round robin: the scan starts after the last pick.
import type { ServerRuntime } from '../server.js';
import { usable, type BalancePolicy, type SelectContext } from './policy.js';

export class LeastConnPolicy implements BalancePolicy {
  private cursor = 0;
  constructor(private readonly servers: readonly ServerRuntime[]) {}

  select(ctx: SelectContext): ServerRuntime | null {
    const list = this.servers;
    const n = list.length;
    let best: ServerRuntime | null = null;
    let bestLoad = 0;
    let bestW = 1;
    for (let k = 0; k < n; k++) {
      let i = this.cursor + k;
      if (i >= n) i -= n;
      const s = list[i]!;
      if (!usable(s, ctx)) continue;
      const w = s.effectiveWeight(ctx.now);
      const load = s.activeNow() + 1;
      // load/w < bestLoad/bestW without division
      if (best === null || load * bestW < bestLoad * w) {
        best = s;
        bestLoad = load;
        bestW = w;
      }
    }
    if (best !== null) this.cursor = best.tierIndex + 1 >= n ? 0 : best.tierIndex + 1;
    return best;
  }
}
