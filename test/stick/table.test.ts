// Stick tables: bounded LRU with expiry, sliding-window rates, counters/tags, long keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import { StickTable } from '../../edge/shield/stick/table.js';
import { normalizeTable, normalizeTables, normalizeClientLimits, normalizeShared, parseStore } from '../../edge/shield/stick/config.js';
import { BanList } from '../../edge/shield/stick/bans.js';
import { ClientGuard, GUARD_BANNED, guardConfigFrom } from '../../edge/shield/guard.js';
import { ManualClock } from '../../lib/clock.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
function memNow(): number {
  gc(); gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

test('200,000 distinct keys into a size-100,000 table: size stays ≤ 100,000 and memory stays bounded', () => {
  const now = 1_700_000_000_000;
  const t = new StickTable(normalizeTable('t', { size: 100_000 }), { now });
  const key = (i: number): string => `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;
  for (let i = 0; i < 100_000; i++) t.add(t.slot(key(i), now), t.httpReqRate, 1, now);
  const full = memNow();
  for (let i = 100_000; i < 200_000; i++) {
    t.add(t.slot(key(i), now), t.httpReqRate, 1, now);
    if (i % 20_000 === 0) assert.ok(t.count <= 100_000);
  }
  const after = memNow();
  assert.equal(t.count, 100_000);
  assert.equal(t.evictions, 100_000);
  assert.equal(t.peek(key(0), now), -1, 'oldest key evicted');
  assert.ok(t.peek(key(199_999), now) >= 0, 'newest key kept');
  const grewMb = (after - full) / 1048576;
  assert.ok(grewMb < 8, `memory grew ${grewMb.toFixed(1)} MB while replacing 100,000 keys`);
});

test('LRU: a key in use survives, the least recently used goes', () => {
  const now = 1_700_000_000_000;
  const t = new StickTable(normalizeTable('t', { size: 3 }), { now });
  t.slot('a', now); t.slot('b', now); t.slot('c', now);
  t.slot('a', now + 1); // a is now most recent; b is LRU
  t.slot('d', now + 2);
  assert.equal(t.peek('b', now + 2), -1);
  for (const k of ['a', 'c', 'd']) assert.ok(t.peek(k, now + 2) >= 0, k);
});

test('entries expire `expire` after their last use, and come back clean', () => {
  const now = 1_700_000_000_000;
  const t = new StickTable(normalizeTable('t', { size: 10, expire: '20s', store: ['gpc(1)', 'http_req_rate(10s)'] }), { now });
  const s = t.slot('k', now);
  t.incGpc(s, 0, 5);
  assert.equal(t.getGpc(t.slot('k', now + 19_000), 0), 5, 'still there (use refreshed it)');
  assert.equal(t.peek('k', now + 38_000), s, 'expiry counts from the last use');
  assert.equal(t.sweep(now + 40_000), 1);
  assert.equal(t.count, 0);
  assert.equal(t.getGpc(t.slot('k', now + 40_000), 0), 0, 'clean slate after expiry');
});

test('sliding window: steady traffic is measured exactly, a fresh burst never counts double', () => {
  const clock = new ManualClock(1_700_000_000_000);
  const t = new StickTable(normalizeTable('t', { size: 10, store: ['http_req_rate(10s)'] }), { now: clock.now() });
  const col = t.httpReqRate!;
  // 10 events per second for 60 s: the window always holds ~100.
  const s = t.slot('steady', clock.now());
  for (let i = 0; i < 600; i++) {
    t.add(s, col, 1, clock.now());
    clock.tick(100);
    if (i > 150) {
      const r = col.local(s, clock.now());
      assert.ok(Math.abs(r - 100) <= 2, `steady rate ${r}`);
    }
  }
  // A burst of 100 at 9.9 s into a bucket, then nothing: the count decays linearly to 0 over one period
  // after the bucket ends, instead of the classic formula's instant drop to ~1 at the boundary.
  clock.set(Math.ceil(clock.now() / 10_000) * 10_000 + 9_900);
  const b = t.slot('burst', clock.now());
  t.add(b, col, 100, clock.now());
  clock.tick(100); // next bucket starts
  assert.equal(Math.round(col.local(b, clock.now())), 100, 'burst fully inside the window 100 ms later');
  clock.tick(5_000);
  assert.equal(Math.round(col.local(b, clock.now())), 100, '5 s later the burst is still inside the window');
  clock.tick(4_900);
  assert.equal(Math.round(col.local(b, clock.now())), 100, '9.9 s later: still inside');
  clock.tick(200);
  assert.equal(col.local(b, clock.now()), 0, 'after 10.1 s it has left');
});

test('sliding window vs an exact log: a limiter admits at most the limit in any window', () => {
  // Flood at 1 event / 7 ms starting at a random phase; admit while rate < 50 per 2 s.
  const clock = new ManualClock(1_700_000_000_000 + 1234);
  const t = new StickTable(normalizeTable('t', { size: 10, store: ['http_req_rate(2s)'] }), { now: clock.now() });
  const col = t.httpReqRate!;
  const s = t.slot('x', clock.now());
  const admitted: number[] = [];
  for (let now = clock.now(); now < clock.now() + 20_000; now += 7) {
    if (col.local(s, now) < 50) { col.add(s, 1, now); admitted.push(now); }
  }
  let worst = 0;
  for (let i = 0, j = 0; i < admitted.length; i++) {
    while (admitted[i] - admitted[j] >= 2000) j++;
    worst = Math.max(worst, i - j + 1);
  }
  assert.ok(worst <= 55, `worst 2-s window admitted ${worst} (limit 50)`);
  assert.ok(admitted.length >= 9 * 50, `admitted ${admitted.length} over 10 windows`);
});

test('gpc/gpt, conn_cur and long keys', () => {
  const now = 1_700_000_000_000;
  const t = new StickTable(normalizeTable('t', { size: 10, key_length: 32 }), { now });
  const s = t.slot('a', now);
  t.incConnCur(s); t.incConnCur(s); t.decConnCur(s); t.decConnCur(s); t.decConnCur(s);
  assert.equal(t.connCur![s], 0, 'never below zero');
  t.setGpt(s, 1, 42); t.incGpc(s, 0);
  assert.deepEqual([t.getGpt(s, 1), t.getGpc(s, 0)], [42, 1]);
  const long1 = 'x'.repeat(5000) + '1', long2 = 'x'.repeat(5000) + '2';
  const s1 = t.slot(long1, now), s2 = t.slot(long2, now);
  assert.notEqual(s1, s2, 'distinct long keys stay distinct');
  assert.ok(t.keyAt(s1)!.length <= 32);
  assert.equal(t.slot(long1, now), s1);
  const e = t.entry('a', now)!;
  assert.equal(e.gpt1, 42);
});

test('an evicted key does not come back with a clean slate while its ban runs', () => {
  const clock = new ManualClock(1_700_000_000_000);
  const bans = new BanList({ now: () => clock.now() });
  const guard = new ClientGuard({ ...guardConfigFrom({ client: { table_size: 1000 } }, null) }, { bans, now: clock.now() });
  assert.equal(guard.admit('198.51.100.1', clock.now()), 0);
  guard.finish('198.51.100.1', 200, 0, 10, clock.now());
  bans.add('198.51.100.1', 60_000, { reason: 'test', by: 'test' });
  for (let i = 0; i < 5000; i++) { // push it out of the 1000-key client table
    const k = `10.0.${i >>> 8}.${i & 255}`;
    guard.admit(k, clock.now()); guard.finish(k, 200, 0, 0, clock.now());
  }
  assert.equal(guard.table.peek('198.51.100.1', clock.now()), -1, 'evicted from the table');
  assert.equal(guard.admit('198.51.100.1', clock.now()), GUARD_BANNED);
  assert.equal(guard.statusOf(GUARD_BANNED), 403);
  clock.tick(61_000);
  assert.equal(guard.admit('198.51.100.1', clock.now()), 0, 'ban expired by itself');
});

test('config normalisers: defaults, durations, clear errors', () => {
  const c = normalizeClientLimits({ requests: { limit: 100, window: '10s', status: 429 }, in_flight: 20 });
  assert.deepEqual([c.requests.limit, c.requests.windowMs, c.requests.status, c.inFlight], [100, 10_000, 429, 20]);
  assert.equal(normalizeClientLimits(undefined).requests.limit, 500);
  assert.equal(normalizeClientLimits({ requests: { window: 2000 } }).requests.windowMs, 2000);
  assert.throws(() => normalizeClientLimits({ requests: { window: 'soon' } }), /limits\.client\.requests\.window/);
  assert.throws(() => normalizeClientLimits({ in_flight: -1 }), /limits\.client\.in_flight/);
  const sh = normalizeShared({ redis: 'redis://127.0.0.1:6379', node_count: 2 })!;
  assert.deepEqual([sh.nodeCount, sh.syncIntervalMs, sh.redis.kind], [2, 200, 'url']);
  assert.equal(normalizeShared({ redis: { sentinels: ['10.0.0.1:26379'], name: 'm' } })!.redis.kind, 'sentinel');
  assert.equal(normalizeShared({ redis: { cluster: ['10.0.0.1:7000', '[::1]:7001'] } })!.redis.kind, 'cluster');
  assert.throws(() => normalizeShared({ redis: 'http://x' }), /shared\.redis/);
  assert.equal(normalizeShared(undefined), null);
  assert.throws(() => normalizeTables({ ip: { expire: '5s', store: ['http_req_rate(10s)'] } }), /tables\.ip\.expire/);
  assert.throws(() => parseStore(['http_req_rate'], 'tables.x.store'), /tables\.x\.store\[0\]/);
  assert.equal(normalizeTables({ ip: { size: 10 } })[0].store.httpReqRateMs, 10_000);
});

test('hash index: random inserts, lookups, deletes, expiry and evictions agree with a Map model', () => {
  // A tiny table forces long probe chains, wrap-around and backward-shift deletion.
  let now = 1_700_000_000_000;
  const size = 50;
  const t = new StickTable(normalizeTable('t', { size, expire: '5s', store: ['gpc(1)'] }), { now });
  const model = new Map<string, { v: number; seen: number }>();
  let seed = 7;
  const rnd = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed % n; };
  for (let step = 0; step < 20_000; step++) {
    const k = `k${rnd(120)}`;
    const op = rnd(10);
    if (step % 500 === 0) now += 1000;
    // Model expiry: entries unused for ≥ 5 s are gone.
    for (const [mk, e] of model) if (Math.floor((now - e.seen) / 1000) >= 5) model.delete(mk);
    if (op < 6) {
      if (!model.has(k) && model.size >= size) {
        // LRU eviction: the least recently seen goes.
        let lru = '', ls = Infinity;
        for (const [mk, e] of model) if (e.seen < ls) { ls = e.seen; lru = mk; }
        model.delete(lru);
      }
      const s = t.slot(k, now);
      const e = model.get(k) ?? { v: 0, seen: now };
      model.delete(k); // re-insert keeps Map order = recency for ties
      e.v++; e.seen = now;
      model.set(k, e);
      t.incGpc(s, 0, 1);
      assert.equal(t.getGpc(s, 0), e.v, `value of ${k} at step ${step}`);
    } else if (op < 8) {
      assert.equal(t.delete(k), model.delete(k), `delete ${k} at step ${step}`);
    } else {
      const s = t.peek(k, now);
      assert.equal(s >= 0, model.has(k), `peek ${k} at step ${step}`);
      if (s >= 0) assert.equal(t.getGpc(s, 0), model.get(k)!.v);
    }
    assert.equal(t.count, model.size, `count at step ${step}`);
  }
});

test('hash index grows with the keys: every key stays reachable across rehashes, deletes and LRU evictions', () => {
  // The index starts small and doubles (rehashing the stored keys) up to 2 × size; this table's
  // index grows several times, with deletions and evictions in between.
  const now = 1_700_000_000_000;
  const size = 5000;
  const t = new StickTable(normalizeTable('t', { size, store: ['gpc(1)'] }), { now });
  const model = new Map<string, number>(); // key → gpc0; Map order = recency (slot() refreshes a key)
  let seed = 11;
  const rnd = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed % n; };
  for (let step = 0; step < 60_000; step++) {
    const k = `c${rnd(8000)}`;
    if (rnd(10) < 8) {
      if (!model.has(k) && model.size >= size) model.delete(model.keys().next().value as string);
      const v = (model.get(k) ?? 0) + 1;
      model.delete(k);
      model.set(k, v);
      const s = t.slot(k, now);
      t.incGpc(s, 0, 1);
      assert.equal(t.getGpc(s, 0), v, `value of ${k} at step ${step}`);
    } else {
      assert.equal(t.delete(k), model.delete(k), `delete ${k} at step ${step}`);
    }
    assert.equal(t.count, model.size, `count at step ${step}`);
  }
  for (const [k, v] of model) {
    const s = t.peek(k, now);
    assert.ok(s >= 0, `${k} reachable`);
    assert.equal(t.getGpc(s, 0), v);
  }
  assert.equal([...t.storedKeys()].length, model.size);
});
