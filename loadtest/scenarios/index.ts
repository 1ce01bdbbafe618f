// Registry of scenarios, one file each.
import type { Scenario } from '../lib/scenario.js';
import { throughput } from './throughput.js';
import { peak } from './peak.js';
import { flood } from './flood.js';

export const SCENARIOS: Record<string, Scenario> = Object.fromEntries(
  [throughput, peak, flood].map((s) => [s.name, s]),
);
