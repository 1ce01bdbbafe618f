import { test } from 'node:test';
import assert from 'node:assert/strict';
import { acquireNow, backend, countPicks, harness, pickName, req, server } from './helpers.js';
import type { LeasedServer } from '../../edge/backend/types.js';

test('roundrobin: smooth weighted distribution within 5 % over 10,000 acquisitions', () => {
  const weights: Record<string, number> = { a: 5, b: 3, c: 2, d: 7 };
  const { pool } = harness(backend(Object.entries(weights).map(([n, w]) => server(n, { weight: w }))));
  const counts = countPicks(pool, 10_000);
  const total = Object.values(weights).reduce((x, y) => x + y, 0);
  for (const [n, w] of Object.entries(weights)) {
    const expected = (10_000 * w) / total;
    const got = counts.get(n) ?? 0;
    assert.ok(Math.abs(got - expected) / expected < 0.05, `${n}: ${got} vs expected ${expected}`);
  }
});

test('roundrobin is smooth: weights 5,1,1 interleave as nginx does (a a b a c a a)', () => {
  const { pool } = harness(backend([server('a', { weight: 5 }), server('b'), server('c')]));
  const seq = Array.from({ length: 14 }, () => pickName(pool)).join(' ');
  assert.equal(seq, 'a a b a c a a a a b a c a a');
});

test('weight 0 is never picked; setWeight changes the share at once', () => {
  const { pool } = harness(backend([server('a', { weight: 0 }), server('b', { weight: 2 }), server('c', { weight: 2 })]));
  const before = countPicks(pool, 1000);
  assert.equal(before.get('a'), undefined);
  assert.ok(pool.setWeight('a', 4));
  assert.ok(!pool.setWeight('a', 300), 'weight above 256 refused');
  assert.ok(!pool.setWeight('nope', 1), 'unknown server refused');
  const after = countPicks(pool, 800);
  assert.equal(after.get('a'), 400);
  assert.equal(pool.servers().find((s) => s.name === 'a')!.weight, 4);
});

function sourceMap(names: string[], keys: string[]): Map<string, string> {
  const { pool } = harness(backend(names.map((n) => server(n)), { balance: 'source' }));
  const m = new Map<string, string>();
  for (const k of keys) m.set(k, pickName(pool, req({ clientKey: k })));
  return m;
}

const KEYS = Array.from({ length: 10_000 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);

test('source: same client key always lands on the same server, spread is even', () => {
  const m1 = sourceMap(['s1', 's2', 's3', 's4', 's5'], KEYS);
  const m2 = sourceMap(['s5', 's4', 's3', 's2', 's1'], KEYS); // config order does not matter
  assert.deepEqual([...m1], [...m2]);
  const per = new Map<string, number>();
  for (const v of m1.values()) per.set(v, (per.get(v) ?? 0) + 1);
  for (const [n, c] of per) assert.ok(c > 1200 && c < 2800, `${n} got ${c} of 10000`);
});

test('source: adding a 6th server moves ≈1/6 of keys, all of them to the new server', () => {
  const before = sourceMap(['s1', 's2', 's3', 's4', 's5'], KEYS);
  const after = sourceMap(['s1', 's2', 's3', 's4', 's5', 's6'], KEYS);
  let moved = 0;
  for (const k of KEYS) {
    if (before.get(k) !== after.get(k)) {
      moved++;
      assert.equal(after.get(k), 's6', `key ${k} moved between old servers`);
    }
  }
  const f = moved / KEYS.length;
  assert.ok(f >= 0.1 && f <= 0.3, `moved fraction ${f}`);
});

test('source: removing one of 5 servers moves only its keys (≈1/5); others stay', () => {
  const before = sourceMap(['s1', 's2', 's3', 's4', 's5'], KEYS);
  const after = sourceMap(['s1', 's2', 's4', 's5'], KEYS);
  let moved = 0;
  for (const k of KEYS) {
    if (before.get(k) === 's3') moved++;
    else assert.equal(after.get(k), before.get(k), `key ${k} on unaffected ${before.get(k)} moved`);
  }
  const f = moved / KEYS.length;
  assert.ok(f >= 0.1 && f <= 0.3, `moved fraction ${f}`);
});

test('source: a down server\'s clients spread over the others and come back when it is up', () => {
  const { pool } = harness(backend(['s1', 's2', 's3', 's4'].map((n) => server(n)), { balance: 'source' }));
  const keys = KEYS.slice(0, 2000);
  const base = keys.map((k) => pickName(pool, req({ clientKey: k })));
  pool.setState('s2', 'down');
  const down = keys.map((k) => pickName(pool, req({ clientKey: k })));
  const targets = new Set<string>();
  keys.forEach((_, i) => {
    if (base[i] === 's2') targets.add(down[i]!);
    else assert.equal(down[i], base[i]);
  });
  assert.ok(!targets.has('s2'));
  assert.equal(targets.size, 3, 's2\'s clients are spread over all 3 remaining servers');
  pool.setState('s2', 'up');
  assert.deepEqual(keys.map((k) => pickName(pool, req({ clientKey: k }))), base);
});

test('leastconn prefers idle servers, relative to weight; ties go round robin', () => {
  const { pool } = harness(backend([server('a'), server('b'), server('c')], { balance: 'leastconn' }));
  // idle ties: round robin
  assert.deepEqual(Array.from({ length: 6 }, () => pickName(pool)), ['a', 'b', 'c', 'a', 'b', 'c']);
  const held: LeasedServer[] = [];
  for (let i = 0; i < 3; i++) held.push(acquireNow(pool).server!); // one each
  const extra = acquireNow(pool).server!; // a, b or c gets a second
  const next = acquireNow(pool).server!;
  assert.notEqual(next.name, extra.name, 'second request goes to a server with 1, not 2');
  for (const s of [...held, extra, next]) pool.release(s, 'ok');

  const w = harness(backend([server('big', { weight: 3 }), server('small', { weight: 1 })], { balance: 'leastconn' }));
  const counts = new Map<string, number>();
  for (let i = 0; i < 8; i++) {
    const s = acquireNow(w.pool).server!;
    counts.set(s.name, (counts.get(s.name) ?? 0) + 1);
  }
  assert.deepEqual([counts.get('big'), counts.get('small')], [6, 2]);
});

test('random (power of two choices) avoids the busy server and follows weights when idle', () => {
  const { pool } = harness(backend([server('a'), server('b'), server('c')], { balance: 'random' }));
  // make 'a' the only busy one
  const busy = Array.from({ length: 5 }, () => acquireNow(pool, req({ exclude: ['b', 'c'] })).server!);
  assert.deepEqual(busy.map((s) => s.name), ['a', 'a', 'a', 'a', 'a']);
  const counts = countPicks(pool, 2000);
  assert.equal(counts.get('a'), undefined, 'two distinct draws: the busy server always loses');
  assert.ok(Math.abs((counts.get('b') ?? 0) - 1000) < 150, `b ${counts.get('b')}`);
  for (const s of busy) pool.release(s, 'ok');

  const w = harness(backend([server('x', { weight: 3 }), server('y', { weight: 1 })], { balance: 'random' }));
  const c2 = countPicks(w.pool, 4000);
  const share = (c2.get('x') ?? 0) / 4000;
  assert.ok(share > 0.7 && share < 0.8, `idle share of weight-3 server ${share}`);
});

test('first fills servers in config order up to maxconn', () => {
  const { pool } = harness(backend([server('a', { maxconn: 3 }), server('b', { maxconn: 3 }), server('c', { maxconn: 3 })], { balance: 'first' }));
  const held = Array.from({ length: 5 }, () => acquireNow(pool).server!);
  assert.deepEqual(held.map((s) => s.name), ['a', 'a', 'a', 'b', 'b']);
  pool.release(held[0]!, 'ok');
  assert.equal(acquireNow(pool).server!.name, 'a', 'a freed slot on a is used before c');
  const info = pool.servers();
  assert.deepEqual(info.map((s) => s.active), [3, 2, 0]);
});

test('exclude skips a server for a retry; all excluded gives no_server', () => {
  const { pool } = harness(backend([server('a'), server('b')]));
  for (let i = 0; i < 10; i++) assert.equal(pickName(pool, req({ exclude: ['a'] })), 'b');
  assert.equal(pickName(pool, req({ exclude: ['a', 'b'] })), 'error:no_server');
});
