// One sliding-window rate column of a stick table, stored as struct-of-arrays (one entry per slot).
//
// Local count — sliding window by two-bucket interpolation (HAProxy freq_ctr): buckets are aligned
// on the wall clock (floor(now / period)). The estimate is
//   cur + prev × (share of the previous bucket still inside the window).
// Refinement: plain interpolation assumes the previous bucket's events were spread over the whole
// bucket; a client that started late in it (a fresh flood) would then get up to 2× the limit in its
// first window. We remember when the key's first event of each bucket happened and spread the
// previous bucket's events only over [first event, bucket end].
//
// Global count (shared columns, summed across nodes through Redis): Redis keeps, per key, the
// events of every node in SLICES slices of period / SLICES (a hash slice → count). A sync round
// pushes our new events into the current slice and pulls back the sum of the slices
// [current − SLICES, current], which covers the whole window ending now plus at most one slice: it
// can over-count by one slice, never under-count — so no sliding window gets more than the limit
// from uneven traffic inside a bucket (the two-bucket approximation can, by up to ~45 %).
// Per key in sync (see SyncPool) we keep: `pulled` (that global sum at the last pull, ours included),
// `pending` (our events not yet acknowledged by Redis) and `lastPush` (what the last round pushed).
//   best      = pulled + pending
//   projected = best + (contributors − 1) × share × (pending + lastPush)
// The projection assumes every other party (node × worker) holds as many unsynced events as we do,
// plus as many as we pushed last round (a push of theirs we have not pulled yet, because the nodes'
// timers are not aligned); `share` is 0 only while two pulls in a row showed the others with
// (almost) nothing for this key, so a client served by one node alone gets the whole limit. A key without a pull yet (new, or the pool was full) is held to
// local × contributors — the same as limit / node_count while Redis is down.
import type { SyncPool } from './sync-pool.js';

const FIRST_SCALE = 65536;
/** Slices per window in Redis (over-count at most 1/SLICES of a window, for at most one slice). */
export const SLICES = 10;

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
  /** Length of one Redis slice (period / SLICES). */
  readonly sliceMs: number;
  /** Absolute slice index of relative slice 0. */
  readonly sliceBase: number;
  /** Sync pool of the table (shared columns); per-entry arrays below are indexed by pool entry. */
  readonly pool: SyncPool | null;
  readonly pulled: Float32Array;
  /** Relative slice at the last successful pull; −1: never pulled. */
  readonly pulledAt: Int32Array;
  readonly pending: Float32Array;
  /** Part of `pending` carried by the sync round in flight. */
  readonly inflight: Float32Array;
  readonly lastPush: Float32Array;
  /** 1 unless the last pull showed (almost) nothing from the other parties for this key. */
  readonly seenShare: Uint8Array;
  /** Margin factor used by projected(): the larger of the last two pulls' (one can miss a fresh push). */
  readonly share: Uint8Array;

  constructor(readonly name: string, capacity: number, periodMs: number, shared: boolean, now: number, pool: SyncPool | null = null) {
    if (!(periodMs >= 1)) throw new Error(`rate ${name}: period must be ≥ 1 ms`);
    this.periodMs = periodMs;
    this.base = Math.floor(now / periodMs) - 4;
    this.bucket = new Int32Array(capacity);
    this.cur = new Float32Array(capacity);
    this.prev = new Float32Array(capacity);
    this.first = new Uint16Array(capacity * 2);
    this.shared = shared && pool !== null;
    this.sliceMs = periodMs / SLICES;
    this.sliceBase = Math.floor(now / this.sliceMs) - 4 * SLICES;
    this.pool = this.shared ? pool : null;
    const n = this.pool ? this.pool.capacity : 0;
    this.pulled = new Float32Array(n);
    this.pulledAt = new Int32Array(n).fill(-1);
    this.pending = new Float32Array(n);
    this.inflight = new Float32Array(n);
    this.lastPush = new Float32Array(n);
    this.seenShare = new Uint8Array(n);
    this.share = new Uint8Array(n);
    if (this.pool) {
      this.pool.onTake((e) => {
        this.pulled[e] = 0; this.pulledAt[e] = -1; this.pending[e] = 0; this.inflight[e] = 0; this.lastPush[e] = 0;
        this.seenShare[e] = 1; this.share[e] = 1;
      });
    }
  }

  /** Relative bucket index of `now`. */
  rel(now: number): number { return Math.floor(now / this.periodMs) - this.base; }
  /** Relative slice index of `now` (absolute = sliceBase + relative). */
  relSlice(now: number): number { return Math.floor(now / this.sliceMs) - this.sliceBase; }

  /** Clean slate for a (re)used slot (its sync entry, if any, is reset by the pool when retaken). */
  clear(slot: number, now: number): void {
    this.bucket[slot] = this.rel(now);
    this.cur[slot] = 0; this.prev[slot] = 0;
    this.first[2 * slot] = this.offset(now); this.first[2 * slot + 1] = 0;
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
    } else if (b > was) {
      this.prev[slot] = 0; this.first[2 * slot + 1] = 0;
    } else {
      return was; // clock went backwards: keep counting in the newer bucket
    }
    this.cur[slot] = 0;
    this.first[2 * slot] = this.offset(now);
    this.bucket[slot] = b;
    return b;
  }

  /** Counts `delta` events; a shared column also queues them for the next sync round. */
  add(slot: number, delta: number, now: number): void {
    this.roll(slot, now);
    // The bucket's first event (not its first read) anchors the spread of its events.
    if (this.cur[slot] === 0) this.first[2 * slot] = this.offset(now);
    this.cur[slot] += delta;
    const pool = this.pool;
    if (pool !== null) {
      const e = pool.touch(slot);
      if (e >= 0) this.pending[e] += delta;
    }
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

  /** Sync entry of the slot with a usable pull (not older than one window), else −1. */
  private synced(slot: number, now: number): number {
    const pool = this.pool;
    if (pool === null) return -1;
    const e = pool.entryOf[slot];
    if (e < 0) return -1;
    const at = this.pulledAt[e];
    return at >= 0 && this.relSlice(now) - at <= SLICES ? e : -1;
  }

  /** Best estimate of the global count: the last pulled global sum + our events since. */
  best(slot: number, now: number): number {
    const e = this.synced(slot, now);
    if (e < 0) return this.local(slot, now);
    return this.pulled[e] + this.pending[e];
  }

  /**
   * Conservative global estimate for admission (see the header): with every node deciding on it,
   * an evenly split client stays within ~1.1 × limit in every sliding window.
   * The margin for the other parties' unsynced events is scaled by how much of the pulled count is
   * theirs: a client seen only here (others' share 0) gets no margin and reaches the full limit
   * within a round; a client spread evenly (others hold (contributors − 1) × our share) gets it all.
   */
  projected(slot: number, now: number, contributors: number): number {
    const e = this.synced(slot, now);
    if (e < 0) return this.pool === null ? this.local(slot, now) : this.local(slot, now) * contributors;
    const p = this.pending[e];
    const pulled = this.pulled[e];
    const others = contributors - 1;
    if (others <= 0) return pulled + p;
    // share: 0 when the last two pulls showed (almost) nothing from the others, else 1 (onPull).
    return pulled + p + others * this.share[e] * (p + this.lastPush[e]);
  }

  /**
   * A sync round's reply for entry `e` (slot `slot`): Redis acknowledged `pushed` of our pending
   * events and says the global window count is `total` (slice `at`). Also checks whether the other
   * parties count anything for this key, so a key served by this party alone stops paying the
   * margin for others' unsynced events (after two pulls agree: one may precede another's push).
   */
  onPull(e: number, slot: number, total: number, pushed: number, at: number, now: number): void {
    this.pending[e] -= pushed;
    this.lastPush[e] = pushed;
    this.pulled[e] = total;
    this.pulledAt[e] = at;
    // The others' events we see are those they pushed before this pull — up to one interval old —
    // so compare them with ours as of our previous push (own − pushed), not with ours up to now:
    // a flood that just started on both nodes must not look like ours alone.
    // Only clear evidence drops the margin: the others hold under 5 % of what we had synced before
    // this round, at two pulls in a row. Anything else — a split client, or too little to tell —
    // keeps the full margin (an estimated partial share proved too noisy for bursty floods).
    const own = this.local(slot, now) - this.pending[e];
    const ownBefore = own - pushed;
    const seen = ownBefore >= 1 && total >= own && total - own <= 0.05 * ownBefore ? 0 : 1;
    this.share[e] = seen > this.seenShare[e] ? seen : this.seenShare[e];
    this.seenShare[e] = seen;
  }

  /**
   * Milliseconds until projected() drops below `limit` if nothing more arrives (for Retry-After: a
   * client that waits exactly this long is admitted). Mirrors projected(): a synced key is held on
   * the global count, an unsynced shared key to limit / contributors of its local count.
   */
  msUntilBelow(slot: number, now: number, limit: number, contributors = 1): number {
    const p = this.periodMs;
    const local = this.pool === null ? limit : limit / contributors;
    this.roll(slot, now);
    const start = (this.base + this.bucket[slot]) * p;
    const localMs = msUntilTwoBucketBelow(this.cur[slot], this.prev[slot], (this.first[2 * slot + 1] * p) / FIRST_SCALE, start + p - now, p, local);
    if (this.pool === null) return localMs;
    // Shared: the global count is a sum of slices; which slices hold it is not known here, and they
    // may all be the newest one: only when the whole window (+ the one slice Redis may over-count)
    // has passed is every counted event surely out. And a key that meanwhile leaves the sync pool
    // is held to limit / contributors of its local count: wait for whichever comes later.
    return Math.max(p + this.sliceMs, localMs);
  }
}

/**
 * Two-bucket sliding window (count = cur + prev × min(1, covered / span), span = period − offset of
 * the previous bucket's first event): ms until the count is below `limit` with no new events.
 * The previous bucket starts to slide out only once `covered` < span — estimating a linear decline
 * from now (as if its events were spread over the whole bucket) gave Retry-After values one second
 * short, and a client that waited exactly that long was refused again.
 */
export function msUntilTwoBucketBelow(cur: number, prev: number, prevFirstOffsetMs: number, toNextMs: number, periodMs: number, limit: number): number {
  if (cur >= limit) {
    // The current bucket alone is over: once it is the previous one, it slides out over
    // [its first event, bucket end]; it is below the limit when covered < span × limit / cur.
    return toNextMs + periodMs; // its first-event offset is not final yet: the safe bound
  }
  if (prev <= 0) return 0;
  const span = periodMs - prevFirstOffsetMs;
  const x = (limit - cur) / prev; // the previous bucket's weight must fall below x
  // weight(t) = min(1, (toNext − t) / span), 0 once the bucket ends; weight(t) = x at t:
  const t = toNextMs - x * span;
  if (t < 0) return 0; // already below (x > 1, or covered < x × span)
  return Math.min(toNextMs, Math.floor(t) + 1);
}
