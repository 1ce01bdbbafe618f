// A small, approximately least-recently-used cache on a Map (insertion order = recency order).
// Used for geo lookups: the same client IPs repeat, and an mmdb tree walk plus record decode costs
// microseconds while a Map hit costs tens of nanoseconds.
//
// A hit moves its key to the newest end only when the key has not been moved during the last
// capacity/2 insertions: a strict LRU deleted and re-inserted the key on every hit, and those two
// Map operations were most of the cost of a hit at thousands of requests per second (profile of the
// rules benchmark). Eviction still takes the oldest key, and a key in regular use is never evicted:
// it is refreshed at least once per half turnover of the cache.
//
// The oldest key is found with one Map iterator kept across evictions, not a new keys() iterator
// each time: a Map keeps a deleted entry as a hole until it rehashes, and a fresh iterator walks from
// the table's start over every hole, so with a full cache (more clients than entries) each eviction
// skipped thousands of holes — 36 µs per miss at 10,000 entries and 16,000 rotating addresses (the
// rules loadtest), against ~0.3 µs with the kept iterator. Every key before the kept iterator's
// position was returned by it and deleted at that moment (keys are only ever appended at the end,
// a refreshed key included), so its next key is the oldest one.

interface Entry<V> { value: V; stamp: number }

export class LruCache<K, V> {
  private readonly map = new Map<K, Entry<V>>();
  /** Insertions so far (refreshes count): the age of an entry is tick - stamp. */
  private tick = 0;
  private readonly refreshAge: number;
  /** Iterator over the keys, positioned just after the last key evicted (null: none yet, or cleared). */
  private oldest: Iterator<K> | null = null;

  constructor(readonly capacity: number) {
    this.refreshAge = Math.max(1, Math.floor(capacity / 2));
  }

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (this.tick - e.stamp >= this.refreshAge) {
      // Old enough to be near the eviction end: move it to the newest end.
      this.map.delete(key);
      e.stamp = ++this.tick;
      this.map.set(key, e);
    }
    return e.value;
  }

  set(key: K, value: V): void {
    if (this.capacity <= 0) return;
    // A key already present is re-inserted at the newest end; a new one may first evict the oldest.
    if (!this.map.delete(key) && this.map.size >= this.capacity) this.evictOldest();
    this.map.set(key, { value, stamp: ++this.tick });
  }

  clear(): void {
    this.map.clear();
    this.oldest = null;
  }

  private evictOldest(): void {
    let it = this.oldest ?? this.map.keys();
    let r = it.next();
    // An iterator that reached the end stays done (then every older key was evicted through it): start again.
    if (r.done === true) { it = this.map.keys(); r = it.next(); }
    this.oldest = it;
    if (r.done !== true) this.map.delete(r.value);
  }
}
