// A simulated clock and synthetic traffic for the history tests: minutes go by as fast as the CPU
// allows, each with one concurrency sample per server (what the 1 s sampler would have integrated
// over the minute) and a few requests.
import { HistoryService } from '../../edge/history/service.js';
import { normalizeHistory, type HistorySection } from '../../edge/history/config.js';
import type { SampledPool } from '../../edge/history/recorder.js';

export const MINUTE = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;
/** A Monday, 00:00 UTC (2026-01-05). */
export const T0 = Date.UTC(2026, 0, 5);

export interface SimServer { name: string; active: number; maxconn: number; backup?: boolean }

export class SimPool implements SampledPool {
  queue = 0;
  constructor(readonly name: string, readonly list: SimServer[]) {}
  servers(): readonly SimServer[] { return this.list; }
  queueLength(): number { return this.queue; }
}

export class Sim {
  now = T0;
  readonly service: HistoryService;
  constructor(readonly pools: SimPool[], opts: { node?: string; raw?: Record<string, unknown>; baseDir?: string; cfg?: Partial<HistorySection>; redis?: { url: string; prefix: string; commandTimeoutMs: number } | null; now?: number; bus?: import('../../edge/observe/events/bus.js').EventBus } = {}) {
    if (opts.now !== undefined) this.now = opts.now;
    const cfg = { ...normalizeHistory({ dir: 'off', ...(opts.raw ?? {}) }, opts.baseDir ?? '/tmp'), sampleMs: MINUTE, ...(opts.cfg ?? {}) };
    this.service = new HistoryService(cfg, { node: opts.node ?? 'sim', bus: opts.bus ?? null, pools: () => this.pools, redis: opts.redis ?? null, now: () => this.now });
  }

  /**
   * Runs `minutes` minutes: before each, `set(t)` puts the in-flight counts (and may record
   * requests through service.recorder); one sample stands for the whole minute.
   */
  run(minutes: number, set: (t: number) => void): void {
    const rec = this.service;
    for (let i = 0; i < minutes; i++) {
      set(this.now);
      this.now += MINUTE;
      rec.sample();
      rec.tick();
    }
  }
}

/** Deterministic pseudo-random numbers: the load harness's seeded generator (mulberry32). */
export { rng } from '../../loadtest/lib/shop.js';

/** Shape of a day: the busiest hour (14:00–15:00 UTC, peak at 14:30) is 1, nights are quiet. */
export function dayShape(t: number): number {
  const h = new Date(t).getUTCHours() + new Date(t).getUTCMinutes() / 60;
  return Math.max(0.1, Math.exp(-((h - 14.5) ** 2) / 18));
}
