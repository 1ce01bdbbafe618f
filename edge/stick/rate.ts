// One sliding-window rate column of a stick table, stored as struct-of-arrays (one entry per slot).
//
// Sliding window by two-bucket interpolation (HAProxy freq_ctr): buckets are aligned on the wall
// clock (floor(now / period)) so every node names the same bucket in Redis. The estimate is
//   cur + prev × (share of the previous bucket still inside the window).
// Refinement: plain interpolation assumes the previous bucket's events were spread over the whole
// bucket; a client that started late in it (a fresh flood) would then get up to 2× the limit in its
// first window. We remember when the key's first event of each bucket happened and spread the
// previous bucket's events only over [first event, bucket end]. For steady traffic this is exactly
// the classic formula; for a fresh burst the window count never exceeds the limit.
//
// Shared (Redis) columns also keep, per slot, the other nodes' counts (rCur/rPrev, from the last sync)
// and how much of our own count was already pushed (synced/syncedPrev).

const FIRST_SCALE = 65536;

export class RateColumn {
  readonly periodMs: number;
  /** Absolute bucket index of relative bucket 0 (relative indexes fit an Int32). */
  readonly base: number;
  readonly bucket: Int32Array;
  readonly cur: Float32Array;
  readonly prev: Float32Array;
  /** [2·slot] first event offset in the current bucket, [2·slot+1] in the previous one (× period/65536). */
  readonly first: Uint16Array;
  readonly shared: boolean;
  readonly rCur: Float32Array;
  readonly rPrev: Float32Array;
  readonly synced: Float32Array;
  readonly syncedPrev: Float32Array;
  /** Events pushed by the most recent sync round (what another node may not have pulled yet). */
  readonly lastPush: Float32Array;

  constructor(readonly name: string, capacity: number, periodMs: number, shared: boolean, now: number) {
    if (!(periodMs >= 1)) throw new Error(`rate ${name}: period must be ≥ 1 ms`);
    this.periodMs = periodMs;
    this.base = Math.floor(now / periodMs) - 4;
    this.bucket = new Int32Array(capacity);
    this.cur = new Float32Array(capacity);
    this.prev = new Float32Array(capacity);
    this.first = new Uint16Array(capacity * 2);
    this.shared = shared;
    const n = shared ? capacity : 0;
    this.rCur = new Float32Array(n);
    this.rPrev = new Float32Array(n);
    this.synced = new Float32Array(n);
    this.syncedPrev = new Float32Array(n);
    this.lastPush = new Float32Array(n);
  }

  /** Relative bucket index of `now`. */
  rel(now: number): number { return Math.floor(now / this.periodMs) - this.base; }

  /** Clean slate for a (re)used slot. */
  clear(slot: number, now: number): void {
    this.bucket[slot] = this.rel(now);
    this.cur[slot] = 0; this.prev[slot] = 0;
    this.first[2 * slot] = this.offset(now); this.first[2 * slot + 1] = 0;
    if (this.shared) { this.rCur[slot] = 0; this.rPrev[slot] = 0; this.synced[slot] = 0; this.syncedPrev[slot] = 0; this.lastPush[slot] = 0; }
  }

  private offset(now: number): number {
    const p = this.periodMs;
    const o = Math.floor(((now - Math.floor(now / p) * p) / p) * FIRST_SCALE);
    return o >= FIRST_SCALE ? FIRST_SCALE - 1 : o;
  }

  /** Moves the slot to the bucket of `now` (rotating cur → prev). Returns the relative bucket. */
  roll(slot: number, now: number): number {
    const b = this.rel(now);
    const was = this.bucket[slot];
    if (was === b) return b;
    if (b === was + 1) {
      this.prev[slot] = this.cur[slot];
      this.first[2 * slot + 1] = this.first[2 * slot];
      if (this.shared) {
        this.rPrev[slot] = this.rCur[slot];
        // Unpushed events of the old bucket stay pending (prev - syncedPrev) and go to its Redis key.
        this.syncedPrev[slot] = this.synced[slot];
      }
    } else if (b > was) {
      this.prev[slot] = 0; this.first[2 * slot + 1] = 0;
      if (this.shared) { this.rPrev[slot] = 0; this.syncedPrev[slot] = 0; }
    } else {
      return was; // clock went backwards: keep counting in the newer bucket
    }
    this.cur[slot] = 0;
    this.first[2 * slot] = this.offset(now);
    if (this.shared) { this.rCur[slot] = 0; this.synced[slot] = 0; }
    this.bucket[slot] = b;
    return b;
  }

  add(slot: number, delta: number, now: number): void {
    this.roll(slot, now);
    // The bucket's first event (not its first read) anchors the spread of its events.
    if (this.cur[slot] === 0) this.first[2 * slot] = this.offset(now);
    this.cur[slot] += delta;
  }

  /** Weight of the previous bucket in the window ending at `now` (after roll). */
  prevWeight(slot: number, now: number): number {
    const p = this.periodMs;
    const start = (this.base + this.bucket[slot]) * p;
    const covered = p - (now - start); // part of the previous bucket still in the window
    if (covered <= 0) return 0;
    const span = p - (this.first[2 * slot + 1] * p) / FIRST_SCALE;
    return covered >= span ? 1 : covered / span;
  }

  /** Events in the sliding window counted on this node only. */
  local(slot: number, now: number): number {
    this.roll(slot, now);
    return this.cur[slot] + this.prev[slot] * this.prevWeight(slot, now);
  }

  /** Best estimate of the global count: ours (all of it) + the other nodes' as of the last sync. */
  best(slot: number, now: number): number {
    this.roll(slot, now);
    if (!this.shared) return this.cur[slot] + this.prev[slot] * this.prevWeight(slot, now);
    const w = this.prevWeight(slot, now);
    return this.cur[slot] + this.rCur[slot] + (this.prev[slot] + this.rPrev[slot]) * w;
  }

  /**
   * Conservative global estimate for admission. Besides the global total from our last sync and our
   * own unsynced events, it assumes each other node may hold as many unsynced events as we do, plus
   * as many as we pushed last round (a push of theirs we have not pulled yet, because the nodes'
   * sync timers are not aligned). With every node deciding on this, an evenly split client stays
   * within ~1.1 × limit; a client on one node can still burst to about limit / (2 × node_count)
   * between two syncs and reaches the full limit within a few sync rounds.
   */
  projected(slot: number, now: number, contributors: number): number {
    this.roll(slot, now);
    const w = this.prevWeight(slot, now);
    if (!this.shared) return this.cur[slot] + this.prev[slot] * w;
    const unsynced = (this.cur[slot] - this.synced[slot]) + (this.prev[slot] - this.syncedPrev[slot]) * w;
    return this.cur[slot] + this.rCur[slot] + (this.prev[slot] + this.rPrev[slot]) * w
      + (contributors - 1) * (unsynced + this.lastPush[slot]);
  }

  /**
   * Milliseconds until the window count drops below `limit` if nothing more arrives (for
   * Retry-After). Upper-bounded by the time both buckets have left the window.
   */
  msUntilBelow(slot: number, now: number, limit: number, count: number): number {
    const p = this.periodMs;
    const start = (this.base + this.bucket[slot]) * p;
    const cur = this.cur[slot] + (this.shared ? this.rCur[slot] : 0);
    const toNext = start + p - now;
    if (cur >= limit) return toNext + p; // the current bucket alone is over: wait until it leaves
    // Remaining count falls as the previous bucket slides out; linear from now to bucket end.
    const prevPart = count - cur;
    if (prevPart <= 0) return 0;
    const need = count - limit + 1; // how much must slide out
    return Math.min(toNext, Math.ceil((need / prevPart) * toNext));
  }
}
