// Smooth weighted round robin (nginx, ngx_http_upstream_get_peer): each pick adds every usable
// server's effective weight to its current weight, takes the largest, and subtracts the total from
// it. Weights 5:1:1 give a a b a c a a — spread out, never bursts of one server.
import type { ServerRuntime } from '../server.js';
import { usable, type BalancePolicy, type SelectContext } from './policy.js';

export class RoundRobinPolicy implements BalancePolicy {
  constructor(private readonly servers: readonly ServerRuntime[]) {}

  select(ctx: SelectContext): ServerRuntime | null {
    let best: ServerRuntime | null = null;
    let total = 0;
    for (const s of this.servers) {
      if (!usable(s, ctx)) continue;
      const w = s.effectiveWeight(ctx.now);
      s.rrCurrent += w;
      total += w;
      if (best === null || s.rrCurrent > best.rrCurrent) best = s;
    }
    if (best !== null) best.rrCurrent -= total;
    return best;
  }
}
