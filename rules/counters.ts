// The counter interface the rule language needs; rules/ owns it, the edge implements it (the stick
// tables, edge/shield/stick/counter-store.ts).
// Rules declare counters (`counter name { key …; window 10s; count_when … }`); the compiled ruleset
// calls add() when a counter's count_when matches and rate() when a condition reads it.
// Implementations: the in-memory store used by `portcullis rules test` (virtual clock) and the
// stick-table store (local sliding windows, summed across nodes through Redis when configured).
export interface CounterStore {
  /** Count `delta` events for (counter, key) at time `now` (ms). */
  add(counter: string, key: string, windowMs: number, delta: number, now: number): void;
  /** Events per window for (counter, key) over the sliding window ending at `now`. */
  rate(counter: string, key: string, windowMs: number, now: number): number;
}
