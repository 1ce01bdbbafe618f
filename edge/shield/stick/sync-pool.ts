// Which stick-table slots currently take part in Redis summing, and their sync bookkeeping.
//
// Only keys used recently on this node need shared state (what the other nodes counted, what we have
// not pushed yet). Keeping that state per table slot would cost ~20 bytes × shared column for every
// key of a million-key table; instead a bounded pool of `capacity` entries (shared.sync_keys,
// default 100,000) holds it, and a slot points at its entry (entryOf, −1 when it has none).
// An entry is taken on first use, stays "hot" (pulled every sync round) for HOT_ROUNDS rounds after
// its last use and is given back once cold with nothing left to push. A key that finds the pool full
// is counted locally and enforced at limit / (node_count × workers), as while Redis is down
// (RateColumn.projected), and counted in `overflows`.

export const HOT_ROUNDS = 5;

export class SyncPool {
  readonly capacity: number;
  /** Entry of a table slot, or −1. */
  readonly entryOf: Int32Array;
  /** Table slot of an entry (−1 when free). */
  readonly slotOf: Int32Array;
  /** Bumped each time an entry is (re)taken, so a sync reply can tell its entry was reused meanwhile. */
  readonly gen: Uint32Array;
  /** Sync rounds left during which the entry is pulled even without new events. */
  readonly hot: Uint8Array;
  private readonly queued: Uint8Array;
  /** Entries to handle in the next sync round (first `dirtyCount`). */
  readonly dirtyList: Int32Array;
  dirtyCount = 0;
  private readonly free: Int32Array;
  private freeCount = 0;
  private used = 0;
  /** Columns with per-entry sync state (reset when an entry is taken). */
  private readonly resetters: ((e: number) => void)[] = [];
  /** Keys that could not get an entry (pool full): counted locally only. */
  overflows = 0;

  constructor(tableSize: number, capacity: number) {
    this.capacity = Math.max(1, Math.min(tableSize, capacity));
    this.entryOf = new Int32Array(tableSize).fill(-1);
    const c = this.capacity;
    this.slotOf = new Int32Array(c).fill(-1);
    this.gen = new Uint32Array(c);
    this.hot = new Uint8Array(c);
    this.queued = new Uint8Array(c);
    this.dirtyList = new Int32Array(c);
    this.free = new Int32Array(c);
  }

  get active(): number { return this.used - this.freeCount; }

  onTake(reset: (e: number) => void): void { this.resetters.push(reset); }

  /** Entry of `slot`, taken if needed; −1 if the pool is full. Marks it used (hot, queued). */
  touch(slot: number): number {
    let e = this.entryOf[slot];
    if (e < 0) {
      if (this.freeCount > 0) e = this.free[--this.freeCount];
      else if (this.used < this.capacity) e = this.used++;
      else { this.overflows++; return -1; }
      this.entryOf[slot] = e;
      this.slotOf[e] = slot;
      this.gen[e]++;
      for (let i = 0; i < this.resetters.length; i++) this.resetters[i](e);
    }
    this.hot[e] = HOT_ROUNDS;
    if (this.queued[e] === 0) { this.queued[e] = 1; this.dirtyList[this.dirtyCount++] = e; }
    return e;
  }

  /** Puts an entry back in the next round's list (a failed push, or still hot). */
  requeue(e: number): void {
    if (this.slotOf[e] < 0) return;
    if (this.queued[e] === 0) { this.queued[e] = 1; this.dirtyList[this.dirtyCount++] = e; }
  }

  /** Takes the queued entries for a round (copied into `out`); returns how many. */
  drain(out: Int32Array): number {
    const n = this.dirtyCount;
    for (let i = 0; i < n; i++) { const e = this.dirtyList[i]; out[i] = e; this.queued[e] = 0; }
    this.dirtyCount = 0;
    return n;
  }

  /** The table slot was freed (evicted, expired, deleted): its entry goes back to the pool. */
  releaseSlot(slot: number): void {
    const e = this.entryOf[slot];
    if (e >= 0) this.releaseEntry(e);
  }

  releaseEntry(e: number): void {
    const s = this.slotOf[e];
    if (s < 0) return;
    this.entryOf[s] = -1;
    this.slotOf[e] = -1;
    this.hot[e] = 0;
    this.gen[e]++;
    this.free[this.freeCount++] = e;
    // A queued free entry is skipped by the round (slotOf < 0).
  }
}
