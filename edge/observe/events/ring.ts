// A bounded FIFO and the base of every event sink. The bus listener of a sink only pushes a
// reference into a fixed array (a few ns, no allocation); the sink's real work (serialise, write,
// XADD, send) runs later from setImmediate. When the ring is full the event is dropped and counted:
// the request path never waits for a sink.
import type { EdgeEvent } from './bus.js';

export class Ring<T> {
  private readonly buf: (T | undefined)[];
  private head = 0;   // next to read
  private size = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`ring capacity must be a positive integer, got ${capacity}`);
    this.buf = new Array<T | undefined>(capacity);
  }

  get length(): number { return this.size; }

  /** False (nothing stored) when full. */
  push(v: T): boolean {
    if (this.size === this.capacity) return false;
    let i = this.head + this.size;
    if (i >= this.capacity) i -= this.capacity;
    this.buf[i] = v;
    this.size++;
    return true;
  }

  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const v = this.buf[this.head];
    this.buf[this.head] = undefined;
    this.head = this.head + 1 === this.capacity ? 0 : this.head + 1;
    this.size--;
    return v;
  }

  /** Move up to `max` items into `out` (cleared first). */
  drainInto(out: T[], max: number): T[] {
    out.length = 0;
    while (this.size > 0 && out.length < max) out.push(this.shift() as T);
    return out;
  }

  clear(): void { while (this.size > 0) this.shift(); }
}

/** A fixed-size window of the latest items (overwrites the oldest); for "recent events". */
export class Recent<T> {
  private readonly buf: (T | undefined)[];
  private next = 0;
  private count = 0;
  constructor(readonly capacity: number) { this.buf = new Array<T | undefined>(capacity); }
  add(v: T): void {
    this.buf[this.next] = v;
    this.next = this.next + 1 === this.capacity ? 0 : this.next + 1;
    if (this.count < this.capacity) this.count++;
  }
  /** Oldest first. */
  toArray(): T[] {
    const out: T[] = [];
    const start = (this.next - this.count + this.capacity) % this.capacity;
    for (let i = 0; i < this.count; i++) out.push(this.buf[(start + i) % this.capacity] as T);
    return out;
  }
}

export interface SinkStats {
  name: string;
  /** Events accepted into the sink's ring. */
  accepted: number;
  /** Events lost: the ring was full (the sink fell behind), the sink was down, or a write failed.
   *  Once the ring is empty: written + dropped = events offered. */
  dropped: number;
  /** Events the sink finished writing/sending. */
  written: number;
  /** Events waiting in the ring now. */
  pending: number;
}

/**
 * Base of a sink: `offer()` is the bus listener. Subclasses implement `process(batch)`, which may
 * be asynchronous (return a promise) — no new batch starts until it settles, and meanwhile the
 * ring absorbs the burst or drops.
 */
export abstract class BufferedSink {
  protected readonly ring: Ring<EdgeEvent>;
  accepted = 0;
  dropped = 0;
  written = 0;
  private scheduled = false;
  private busy = false;
  private closed = false;
  private readonly batch: EdgeEvent[] = [];
  /** Bound once so that offer() allocates nothing. */
  readonly offer = (ev: EdgeEvent): void => {
    if (this.closed || !this.ring.push(ev)) { this.dropped++; return; }
    this.accepted++;
    if (!this.scheduled && !this.busy) { this.scheduled = true; setImmediate(this.run); }
  };

  constructor(readonly name: string, capacity: number, protected readonly batchSize = 512) {
    this.ring = new Ring<EdgeEvent>(capacity);
  }

  protected abstract process(batch: EdgeEvent[]): void | Promise<void>;

  /** Count events lost after they left the ring (e.g. a failed XADD batch). */
  protected lost(n: number): void { this.dropped += n; }

  private readonly run = (): void => {
    this.scheduled = false;
    if (this.busy || this.ring.length === 0) return;
    const batch = this.ring.drainInto(this.batch, this.batchSize);
    const n = batch.length;
    let r: void | Promise<void>;
    try { r = this.process(batch); } catch { this.lost(n); this.kick(); return; }
    if (r instanceof Promise) {
      this.busy = true;
      r.then(() => { this.written += n; }, () => { this.lost(n); }).finally(() => {
        this.busy = false;
        this.kick();
      });
    } else {
      this.written += n;
      this.kick();
    }
  };

  private kick(): void {
    if (this.ring.length > 0 && !this.scheduled) { this.scheduled = true; setImmediate(this.run); }
  }

  /** Process everything still in the ring (on stop). */
  async flushRing(): Promise<void> {
    for (let guard = 0; guard < 10_000 && (this.ring.length > 0 || this.busy); guard++) {
      if (this.busy) { await new Promise((r) => setTimeout(r, 5)); continue; }
      this.run();
      await new Promise((r) => setImmediate(r));
    }
  }

  protected markClosed(): void { this.closed = true; }

  stats(): SinkStats {
    return { name: this.name, accepted: this.accepted, dropped: this.dropped, written: this.written, pending: this.ring.length };
  }
}
