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
  /**
   * Optional: one counter (name + window) as a handle whose add()/rate() mean exactly the calls
   * above, so the ruleset resolves the counter once instead of by name on every call (and the store
   * may keep per-counter state, such as the slot of the key it last counted).
   */
  counter?(counter: string, windowMs: number): CounterHandle;
}

/** add() / rate() of one counter (CounterStore.counter). */
export interface CounterHandle {
  add(key: string, delta: number, now: number): void;
  rate(key: string, now: number): number;
}

/** A handle for a store without counter(): the calls by name. */
export function counterHandle(store: CounterStore, counter: string, windowMs: number): CounterHandle {
  if (store.counter !== undefined) return store.counter(counter, windowMs);
  return {
    add: (key, delta, now) => store.add(counter, key, windowMs, delta, now),
    rate: (key, now) => store.rate(counter, key, windowMs, now),
  };
}
