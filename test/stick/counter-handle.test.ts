// The rule counters' handles (StickCounterStore.counter) answer exactly as add()/rate() by name: the
// slot a handle remembers from its last add() is used only while the table still holds that key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StickCounterStore } from '../../edge/shield/stick/counter-store.js';

test('a handle counts and reads like the store', () => {
  const t0 = 1_700_000_000_000;
  const store = new StickCounterStore({ now: t0 });
  const h = store.counter('per_ip', 10_000);
  for (let i = 0; i < 5; i++) h.add('192.0.2.1', 1, t0 + i);
  assert.equal(h.rate('192.0.2.1', t0 + 10), 5);
  assert.equal(store.rate('per_ip', '192.0.2.1', 10_000, t0 + 10), 5);
  assert.equal(h.rate('192.0.2.2', t0 + 10), 0);
  store.add('per_ip', '192.0.2.1', 10_000, 1, t0 + 11);
  assert.equal(h.rate('192.0.2.1', t0 + 12), 6, 'counts added by name are seen through the handle');
  // A long key is bounded by the table; the handle finds it either way.
  const long = 'k'.repeat(300);
  h.add(long, 1, t0 + 13);
  assert.equal(h.rate(long, t0 + 13), 1);
  assert.equal(store.rate('per_ip', long, 10_000, t0 + 13), 1);
});

test('a remembered slot whose key was evicted or expired reads as the store does (0)', () => {
  const t0 = 1_700_000_000_000;
  const store = new StickCounterStore({ now: t0, defaultSize: 2 });
  const h = store.counter('c', 10_000);
  h.add('a', 1, t0);
  store.add('c', 'b', 10_000, 1, t0 + 1);
  store.add('c', 'x', 10_000, 1, t0 + 2); // table full: 'a' (least recently used) is evicted, its slot reused by 'x'
  assert.equal(h.rate('a', t0 + 3), 0);
  assert.equal(h.rate('x', t0 + 3), 1);
  h.add('b', 1, t0 + 4);
  assert.equal(h.rate('b', t0 + 4), 2);
  // Expired (entries expire after max(2 × window, 60 s) idle): gone for the handle too.
  assert.equal(h.rate('b', t0 + 4 + 61_000), 0);
  assert.equal(store.rate('c', 'b', 10_000, t0 + 4 + 61_000), 0);
});
