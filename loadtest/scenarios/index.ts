// Registry of scenarios, one file each.
import type { Scenario } from '../lib/scenario.js';
import { throughput } from './throughput.js';
import { peak } from './peak.js';

export const SCENARIOS: Record<string, Scenario> = Object.fromEntries(
  [throughput, peak].map((s) => [s.name, s]),
);
