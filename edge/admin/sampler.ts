// Once a second: turn the metrics' running totals into per-second rates and keep two minutes of
// history, so the dashboard and `portcullis top` get ready-made series (a page opened late still
// shows the last two minutes).
import { interpolatedQuantile, type Metrics } from '../observe/metrics.js';
import type { BlockStats } from '../observe/events/stats.js';

export interface RatePoint {
  /** Unix seconds. */
  t: number;
  rps: number;
  s1xx: number; s2xx: number; s3xx: number; s4xx: number; s5xx: number;
  blocked: number;
  logOnly: number;
  /** Failed admin logins (their own category, not blocks). */
  authFailures: number;
  ruleHits: number;
  guard: number;
}

/** Latency quantiles (seconds) over the last `windowSec` seconds; null: no request in that window. */
export interface WindowLatency { windowSec: number; count: number; p50: number | null; p95: number | null; p99: number | null }

export class RateSampler {
  readonly history: RatePoint[] = [];
  /** Cumulative latency bucket counts at each closed second, oldest first (latencyWindowSec + 1 of them). */
  private readonly latencyMarks: { buckets: Float64Array; count: number }[] = [];
  private last = { requests: 0, byClass: [0, 0, 0, 0, 0, 0], ruleHits: 0, guard: 0 };
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly metrics: Metrics, private readonly blocks: BlockStats, private readonly keep = 120, readonly latencyWindowSec = 60) {}

  /**
   * p50/p95/p99 of the requests that ended in the last latencyWindowSec seconds (a moving window: the
   * dashboard's and `top`'s latency follows the traffic; a quantile since start would hardly move).
   */
  latency(): WindowLatency {
    const all = this.metrics.latencyAll;
    // Until a whole window has been sampled, every request since start is inside it.
    const from = this.latencyMarks.length > this.latencyWindowSec ? this.latencyMarks[0] : null;
    const buckets = new Float64Array(all.buckets.length);
    for (let i = 0; i < buckets.length; i++) buckets[i] = all.buckets[i] - (from === null ? 0 : from.buckets[i]);
    const count = all.count - (from === null ? 0 : from.count);
    return {
      windowSec: this.latencyWindowSec, count,
      p50: interpolatedQuantile(buckets, count, 0.5), p95: interpolatedQuantile(buckets, count, 0.95), p99: interpolatedQuantile(buckets, count, 0.99),
    };
  }

  start(periodMs = 1000): void {
    this.snapshotLast();
    this.timer = setInterval(() => this.sample(), periodMs);
    this.timer.unref();
  }

  private snapshotLast(): void {
    const m = this.metrics;
    this.last = { requests: m.requests, byClass: Array.from(m.byClass), ruleHits: m.ruleHits, guard: m.guardRejects };
  }

  /** Close one second (public for tests). */
  sample(nowMs = Date.now()): void {
    this.blocks.tick(nowMs);
    const m = this.metrics;
    const lastBlock = this.blocks.lastSecond() ?? { blocked: 0, logOnly: 0, authFailures: 0 };
    const d = (i: number): number => m.byClass[i] - this.last.byClass[i];
    this.history.push({
      t: Math.floor(nowMs / 1000),
      rps: m.requests - this.last.requests,
      s1xx: d(1), s2xx: d(2), s3xx: d(3), s4xx: d(4), s5xx: d(5),
      blocked: lastBlock.blocked,
      logOnly: lastBlock.logOnly,
      authFailures: lastBlock.authFailures,
      ruleHits: m.ruleHits - this.last.ruleHits,
      guard: m.guardRejects - this.last.guard,
    });
    if (this.history.length > this.keep) this.history.shift();
    this.latencyMarks.push({ buckets: Float64Array.from(m.latencyAll.buckets), count: m.latencyAll.count });
    if (this.latencyMarks.length > this.latencyWindowSec + 1) this.latencyMarks.shift();
    this.snapshotLast();
  }

  stop(): void { if (this.timer) clearInterval(this.timer); this.timer = null; }
}
