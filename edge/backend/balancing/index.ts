// Policy factory: one small class per `balance` keyword.
import type { BalanceAlgorithm } from '../types.js';
import type { ServerRuntime } from '../server.js';
import type { BalancePolicy } from './policy.js';
import { RoundRobinPolicy } from './roundrobin.js';
import { LeastConnPolicy } from './leastconn.js';
import { SourceHashPolicy } from './source.js';
import { RandomPolicy } from './random.js';
import { FirstPolicy } from './first.js';

export type { BalancePolicy, SelectContext } from './policy.js';
export { usable } from './policy.js';
export { hashKey, VNODES_PER_WEIGHT } from './source.js';

export function createPolicy(alg: BalanceAlgorithm, servers: readonly ServerRuntime[]): BalancePolicy {
  switch (alg) {
    case 'roundrobin': return new RoundRobinPolicy(servers);
    case 'leastconn': return new LeastConnPolicy(servers);
    case 'source': return new SourceHashPolicy(servers);
    case 'random': return new RandomPolicy(servers);
    case 'first': return new FirstPolicy(servers);
    default: {
      const never: never = alg;
      throw new Error(`PCL_E_BALANCE: unknown balance algorithm "${String(never)}"`);
    }
  }
}
