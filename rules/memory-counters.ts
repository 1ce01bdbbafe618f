// In-memory CounterStore with a sliding window approximated from two buckets (HAProxy freq_ctr:
// the current window's count plus the previous window's count weighted by how much of it still
// overlaps the sliding window). Used by the test runner on a virtual clock and by explain; needs
// no Redis. Entries idle for two windows are dropped lazily to bound memory.
import type { CounterStore } from './counters.js';

interface Entry { start: number; curr: number; prev: number }

export class MemoryCounterStore implements CounterStore {
  private readonly tables = new Map<string, Map<string, Entry>>();
  private readonly maxKeys: number;

  constructor(opts: { maxKeysPerCounter?: number } = {}) {
    this.maxKeys = opts.maxKeysPerCounter ?? 100_000;
  }

  private entry(counter: string, key: string, windowMs: number, now: number, create: boolean): Entry | undefined {
    let t = this.tables.get(counter);
    if (!t) { if (!create) return undefined; t = new Map(); this.tables.set(counter, t); }
    let e = t.get(key);
    if (!e) {
      if (!create) return undefined;
      if (t.size >= this.maxKeys) this.evict(t, windowMs, now);
      e = { start: now - (now % windowMs), curr: 0, prev: 0 };
      t.set(key, e);
    }
    rotate(e, windowMs, now);
    return e;
  }

  private evict(t: Map<string, Entry>, windowMs: number, now: number): void {
    for (const [k, e] of t) if (now - e.start >= 2 * windowMs) t.delete(k);
    if (t.size >= this.maxKeys) { const first = t.keys().next(); if (!first.done) t.delete(first.value); }
  }

  add(counter: string, key: string, windowMs: number, delta: number, now: number): void {
    const e = this.entry(counter, key, windowMs, now, true)!;
    e.curr += delta;
  }

  rate(counter: string, key: string, windowMs: number, now: number): number {
    const e = this.entry(counter, key, windowMs, now, false);
    if (!e) return 0;
    const elapsed = now - e.start;
    const weight = Math.max(0, (windowMs - elapsed) / windowMs);
    return Math.round(e.curr + e.prev * weight);
  }

  clear(): void { this.tables.clear(); }
}

function rotate(e: Entry, windowMs: number, now: number): void {
  const periodStart = now - (now % windowMs);
  if (periodStart === e.start) return;
  e.prev = periodStart - e.start === windowMs ? e.curr : 0;
  e.curr = 0;
  e.start = periodStart;
}
