// HAProxy `balance first`: the first server in config order that still has a free slot gets the
// request, so servers fill one after another up to maxconn and the rest can idle (or be powered
// down). Weight only matters as 0 = never.
import type { ServerRuntime } from '../server.js';
import { usable, type BalancePolicy, type SelectContext } from './policy.js';

export class FirstPolicy implements BalancePolicy {
  constructor(private readonly servers: readonly ServerRuntime[]) {}

  select(ctx: SelectContext): ServerRuntime | null {
    for (const s of this.servers) if (usable(s, ctx)) return s;
    return null;
  }
}
