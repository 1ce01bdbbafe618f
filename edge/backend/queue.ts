// The backend queue: requests waiting for a free slot when every usable server is at maxconn.
// One FIFO (doubly linked, O(1) push/remove/cancel) per priority class; lower classes are served
// first. The queue timeout is the same for every entry of a backend, so each class is also sorted
// by deadline and expiry only ever pops heads: one coarse timer serves the whole queue.
import type { AcquireTicket, AcquireWaiter } from './types.js';
import type { ServerRuntime } from './server.js';

/** Priority classes 0..PRIORITY_CLASSES-1; other values are clamped, non-integers truncated. */
export const PRIORITY_CLASSES = 8;
export const DEFAULT_PRIORITY = 1;

export function priorityClass(p: number): number {
  if (!(p >= 0)) return p < 0 ? 0 : DEFAULT_PRIORITY; // NaN → default
  return p >= PRIORITY_CLASSES - 1 ? PRIORITY_CLASSES - 1 : Math.trunc(p);
}

export class Waiter implements AcquireTicket {
  prev: Waiter | null = null;
  next: Waiter | null = null;
  queued = false;

  constructor(
    private readonly owner: WaitQueue,
    readonly cls: number,
    readonly clientKey: string,
    /** Server the client's valid cookie pins it to (waits for that server only), or null. */
    public pinned: ServerRuntime | null,
    readonly exclude: readonly string[] | null,
    readonly waiter: AcquireWaiter,
    readonly enqueuedAt: number,
    readonly deadline: number,
  ) {}

  cancel(): void {
    if (this.queued) this.owner.remove(this);
  }
}

export class WaitQueue {
  private readonly heads: (Waiter | null)[] = new Array<Waiter | null>(PRIORITY_CLASSES).fill(null);
  private readonly tails: (Waiter | null)[] = new Array<Waiter | null>(PRIORITY_CLASSES).fill(null);
  size = 0;

  push(w: Waiter): void {
    const c = w.cls;
    const t = this.tails[c]!;
    w.prev = t;
    w.next = null;
    if (t === null) this.heads[c] = w; else t.next = w;
    this.tails[c] = w;
    w.queued = true;
    if (w.pinned !== null) w.pinned.pinnedQueued++;
    this.size++;
  }

  remove(w: Waiter): void {
    if (!w.queued) return;
    const c = w.cls;
    if (w.prev === null) this.heads[c] = w.next; else w.prev.next = w.next;
    if (w.next === null) this.tails[c] = w.prev; else w.next.prev = w.prev;
    w.prev = null;
    w.next = null;
    w.queued = false;
    this.unpin(w);
    this.size--;
  }

  /** Drop the pin (the pinned server went away); the waiter then takes any server. */
  unpin(w: Waiter): void {
    if (w.pinned !== null) {
      w.pinned.pinnedQueued--;
      w.pinned = null;
    }
  }

  /** First waiter in service order (lowest class, oldest first). */
  first(): Waiter | null {
    for (let c = 0; c < PRIORITY_CLASSES; c++) if (this.heads[c] !== null) return this.heads[c]!;
    return null;
  }

  /** Waiter after `w` in service order. */
  after(w: Waiter): Waiter | null {
    if (w.next !== null) return w.next;
    for (let c = w.cls + 1; c < PRIORITY_CLASSES; c++) if (this.heads[c] !== null) return this.heads[c]!;
    return null;
  }

  /** Remove and return the oldest waiter whose deadline has passed, or null. */
  popExpired(now: number): Waiter | null {
    for (let c = 0; c < PRIORITY_CLASSES; c++) {
      const h = this.heads[c];
      if (h !== null && h.deadline <= now) {
        this.remove(h);
        return h;
      }
    }
    return null;
  }
}
