// Registry of scenarios, one file each.
import type { Scenario } from '../lib/scenario.js';
import { throughput } from './throughput.js';
import { h2 } from './h2.js';
import { peak } from './peak.js';
import { flood } from './flood.js';
import { botnet } from './botnet.js';
import { slowloris } from './slowloris.js';
import { failover } from './failover.js';
import { redisOutage } from './redis-outage.js';
import { rules } from './rules.js';
import { conformance } from './conformance.js';
import { haPair } from './ha-pair.js';
import { reloadStorm } from './reload-storm.js';
import { soak } from './soak.js';
import { redisChaos } from './redis-chaos.js';
import { originChaos } from './origin-chaos.js';

export const SCENARIOS: Record<string, Scenario> = Object.fromEntries(
  [throughput, h2, peak, flood, botnet, slowloris, failover, redisOutage, rules, conformance, haPair, reloadStorm, soak, redisChaos, originChaos].map((s) => [s.name, s]),
);
