// Per-client counters shared by the worker threads of one node (uWS `workers: N`: one client's
// connections land on different threads), on a SharedArrayBuffer with Atomics.
//
// A count-min sketch: 2 rows of `slots` hashed entries; every event goes to one entry per row and a
// read takes the smaller of the two. A collision can only over-count (two clients sharing an entry
// in both rows), never let a client through. Per entry: requests in flight and a sliding-window
// request rate packed for lock-free updates: two words (even/odd bucket), each
// `bucket tag (8 bits) << 24 | count (24 bits)`, updated by compare-and-swap, plus the offset of the
// bucket's first event (same refinement as RateColumn). Word 0 of the buffer is the node-wide
// number of requests in flight.
import { fnv1a, rehash } from './keys.js';
import { msUntilTwoBucketBelow } from './rate.js';

const HEADER = 16; // Int32 words before the rows
const ENTRY = 5; // inflight, rate even, rate odd, first even, first odd
const COUNT_MASK = 0xffffff;
const FIRST_SCALE = 65536;

export interface GuardMemory {
  /** Share it with workers via workerData / postMessage (it is shared, not copied). */
  buffer: SharedArrayBuffer;
  slots: number;
  windowMs: number;
}

export function createGuardMemory(slots: number, windowMs: number): GuardMemory {
  if ((slots & (slots - 1)) !== 0) throw new Error(`guard slots ${slots} must be a power of two`);
  return { buffer: new SharedArrayBuffer((HEADER + 2 * slots * ENTRY) * 4), slots, windowMs };
}

export class GuardCounters {
  private readonly a: Int32Array;
  private readonly mask: number;
  private readonly row2: number;
  readonly windowMs: number;
  /** Entry offsets of the key last hashed (set by locate()). */
  e1 = 0;
  e2 = 0;

  /** false with one thread: plain reads/writes, several times faster than Atomics on a SAB. */
  private readonly atomic: boolean;

  constructor(mem: GuardMemory, atomic = true) {
    this.atomic = atomic;
    this.a = new Int32Array(mem.buffer);
    this.mask = mem.slots - 1;
    this.row2 = HEADER + mem.slots * ENTRY;
    this.windowMs = mem.windowMs;
  }

  /** Hashes `key` to its two entries (kept in e1/e2 for the calls that follow). */
  locate(key: string): void { this.locateHashed(fnv1a(key)); }

  /** locate() for a caller that already has fnv1a(key); the second row uses a derived hash. */
  locateHashed(h: number): void {
    this.e1 = HEADER + (h & this.mask) * ENTRY;
    this.e2 = this.row2 + (rehash(h) & this.mask) * ENTRY;
  }

  // ---------------------------------------------------------------- node-wide in flight

  /** +1 node-wide in flight unless that exceeds `cap` (0 = no cap). */
  tryEnterGlobal(cap: number): boolean {
    const v = this.atomic ? Atomics.add(this.a, 0, 1) + 1 : ++this.a[0];
    if (cap > 0 && v > cap) { this.leaveGlobal(); return false; }
    return true;
  }
  leaveGlobal(): void { if (this.atomic) Atomics.sub(this.a, 0, 1); else this.a[0]--; }
  get globalInFlight(): number { return Atomics.load(this.a, 0); }

  // ---------------------------------------------------------------- per-client in flight (located key)

  /** +1 in flight for the located key unless the new value exceeds `limit` (0 = no limit). */
  tryEnter(limit: number): boolean {
    const a = this.a;
    const x = this.atomic ? Atomics.add(a, this.e1, 1) + 1 : ++a[this.e1];
    const y = this.atomic ? Atomics.add(a, this.e2, 1) + 1 : ++a[this.e2];
    if (limit > 0 && (x < y ? x : y) > limit) { this.leave(); return false; }
    return true;
  }
  leave(): void {
    if (this.atomic) { Atomics.sub(this.a, this.e1, 1); Atomics.sub(this.a, this.e2, 1); }
    else { this.a[this.e1]--; this.a[this.e2]--; }
  }
  inFlight(): number {
    const x = Atomics.load(this.a, this.e1), y = Atomics.load(this.a, this.e2);
    return x < y ? x : y;
  }

  // ---------------------------------------------------------------- per-client request rate (located key)

  /** Sliding-window count for the located key. */
  rate(now: number): number {
    const x = this.rateAt(this.e1, now), y = this.rateAt(this.e2, now);
    return x < y ? x : y;
  }

  /** Counts one event for the located key. */
  hit(now: number): void {
    this.hitAt(this.e1, now);
    this.hitAt(this.e2, now);
  }

  /** ms until the located key's count drops below `limit` with no new events (Retry-After). */
  msUntilBelow(now: number, limit: number): number {
    // rate() is the smaller of the two count-min rows: below the limit as soon as either row is.
    const x = this.msUntilBelowAt(this.e1, now, limit), y = this.msUntilBelowAt(this.e2, now, limit);
    return x < y ? x : y;
  }

  private msUntilBelowAt(e: number, now: number, limit: number): number {
    const p = this.windowMs;
    const b = Math.floor(now / p);
    const f = this.atomic ? Atomics.load(this.a, e + 3 + ((b - 1) & 1)) : this.a[e + 3 + ((b - 1) & 1)];
    return msUntilTwoBucketBelow(this.count(e, b), this.count(e, b - 1), (f * p) / FIRST_SCALE, (b + 1) * p - now, p, limit);
  }

  private count(e: number, b: number): number {
    const w = this.atomic ? Atomics.load(this.a, e + 1 + (b & 1)) : this.a[e + 1 + (b & 1)];
    return (w >>> 24) === (b & 255) ? w & COUNT_MASK : 0;
  }

  private rateAt(e: number, now: number): number {
    const p = this.windowMs;
    const b = Math.floor(now / p);
    const cur = this.count(e, b);
    const prev = this.count(e, b - 1);
    if (prev === 0) return cur;
    const covered = p - (now - b * p);
    const f = this.atomic ? Atomics.load(this.a, e + 3 + ((b - 1) & 1)) : this.a[e + 3 + ((b - 1) & 1)];
    const span = p - (f * p) / FIRST_SCALE;
    return cur + prev * (covered >= span ? 1 : covered / span);
  }

  private hitAt(e: number, now: number): void {
    const p = this.windowMs;
    const b = Math.floor(now / p);
    const i = e + 1 + (b & 1);
    const tag = (b & 255) << 24;
    if (!this.atomic) {
      const w = this.a[i];
      if ((w >>> 24) === (b & 255)) { if ((w & COUNT_MASK) !== COUNT_MASK) this.a[i] = w + 1; return; }
      this.a[i] = tag | 1;
      this.a[e + 3 + (b & 1)] = Math.min(FIRST_SCALE - 1, Math.floor(((now - b * p) / p) * FIRST_SCALE));
      return;
    }
    for (;;) {
      const w = Atomics.load(this.a, i);
      let next: number;
      if ((w >>> 24) === (b & 255)) {
        if ((w & COUNT_MASK) === COUNT_MASK) return; // saturated
        next = w + 1;
      } else {
        next = tag | 1;
      }
      if (Atomics.compareExchange(this.a, i, w, next) === w) {
        if (next === (tag | 1)) {
          const off = Math.min(FIRST_SCALE - 1, Math.floor(((now - b * p) / p) * FIRST_SCALE));
          Atomics.store(this.a, e + 3 + (b & 1), off);
        }
        return;
      }
    }
  }
}
