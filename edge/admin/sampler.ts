// Once a second: turn the metrics' running totals into per-second rates and keep two minutes of
// history, so the dashboard and `portcullis top` get ready-made series (a page opened late still
// shows the last two minutes).
import type { Metrics } from '../metrics.js';
import type { BlockStats } from '../events/stats.js';

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

export class RateSampler {
  readonly history: RatePoint[] = [];
  private last = { requests: 0, byClass: [0, 0, 0, 0, 0, 0], ruleHits: 0, guard: 0 };
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly metrics: Metrics, private readonly blocks: BlockStats, private readonly keep = 120) {}

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
    this.snapshotLast();
  }

  stop(): void { if (this.timer) clearInterval(this.timer); this.timer = null; }
}
