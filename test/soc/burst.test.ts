// Why: an attack can produce 100,000 block events per second. Emitting them must stay cheap on
// the request path: sinks buffer in bounded rings, and when they fall behind they drop and count,
// they never block emit().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { EventBus } from '../../edge/observe/events/bus.js';
import { blockEvent, eventClient, eventRequest } from '../../edge/observe/events/build.js';
import { startEventSinks } from '../../edge/observe/events/index.js';
import { Metrics } from '../../edge/observe/metrics.js';
import { startAdminServer } from '../../edge/admin/server.js';
import { testRedis } from '../harness/redis.js';
import { TOKEN, fakeTargets } from './fakes.js';

const client = eventClient('203.0.113.50', null, 'US', 64500);
const request = eventRequest('GET', 'shop.example', '/cart', 'bot/1.0', 'r');

function makeEvent(i: number) {
  return blockEvent('deny', { client, request, rule: i % 2 ? 'scraper' : 'php-probe', status: 403, term: 'PR', counters: { http_req_rate: i } });
}

test('100,000 events in a tight loop: cheap emit, bounded rings, drops counted', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-burst-'));
  const logFile = join(dir, 'events.jsonl');
  const redis = await testRedis();
  const stream = `pc-test-burst-${process.pid}-${Date.now()}`;
  t.after(async () => {
    if (redis) { const r = new Redis(redis.url); await r.del(stream); await r.quit(); await redis.stop(); }
  });
  const bus = new EventBus({ node: 'burst' });
  const metrics = new Metrics();
  const capacity = 16384;
  const sinks = await startEventSinks(bus, { log: logFile, redis: redis ? { url: redis.url, stream, maxLen: 50_000, read: false } : null, capacity }, metrics);
  const admin = await startAdminServer({ address: '127.0.0.1:0', token: TOKEN }, fakeTargets(bus).targets, bus, metrics);
  t.after(() => admin.close());
  if (redis) await new Promise((r) => setTimeout(r, 200)); // writer connected

  const N = 100_000;
  // Events are built before timing: the measured cost is what emit() adds to the request path.
  const evs = Array.from({ length: N }, (_, i) => makeEvent(i));
  // Timed in chunks of 10k; the median chunk is reported, so a descheduled moment on a busy CI box
  // does not decide the result.
  const chunkNs: number[] = [];
  for (let c = 0; c < N; c += 10_000) {
    const t0 = process.hrtime.bigint();
    for (let i = c; i < c + 10_000; i++) bus.emit(evs[i]);
    chunkNs.push(Number(process.hrtime.bigint() - t0) / 10_000);
  }
  const perEmitNs = chunkNs.sort((a, b) => a - b)[chunkNs.length >> 1];
  console.log(`emit with ${redis ? 4 : 3} sinks: ${perEmitNs.toFixed(0)} ns/event (${(1e9 / perEmitNs / 1e6).toFixed(1)} M events/s)`);
  // 100k events/s leaves 10 µs per event; emit must take well under half of it even on a loaded
  // CI box (typically 50-150 ns per sink on an idle core). A sink writing synchronously would not.
  assert.ok(perEmitNs < 4000, `emit costs ${perEmitNs.toFixed(0)} ns`);

  // Nothing ran during the loop, so each ring holds exactly its capacity and dropped the rest.
  for (const s of sinks.stats()) {
    assert.equal(s.accepted + s.dropped, N, `${s.name}: accepted + dropped = emitted`);
    assert.equal(s.accepted, capacity, `${s.name} accepted its capacity`);
    assert.equal(s.dropped, N - capacity, `${s.name} counted its drops`);
  }

  // Drops are visible in /metrics.
  const text = await (await fetch(`${admin.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
  const m = /^portcullis_events_dropped_total\{sink="log"\} (\d+)$/m.exec(text);
  assert.ok(m, 'events_dropped_total{sink="log"} exported');
  assert.equal(Number(m[1]), N - capacity);

  await sinks.stop();
  const lines = readFileSync(logFile, 'utf8').split('\n').filter((l) => l !== '');
  const log = sinks.stats().find((s) => s.name === 'log');
  assert.ok(log);
  assert.equal(lines.length, log.written, 'every accepted event was written after stop (flushed)');
  assert.equal(log.written + log.dropped, N);
  const first = JSON.parse(lines[0]) as Record<string, unknown>;
  assert.equal(first.type, 'deny');
  assert.equal(first.node, 'burst');
  assert.equal('level' in first, false, 'lines are the bare event, no pino level');
  if (redis) {
    const r = new Redis(redis.url);
    const len = await r.xlen(stream);
    await r.quit();
    const rs = sinks.stats().find((s) => s.name === 'redis');
    assert.ok(rs);
    assert.equal(len, rs.written, 'stream holds what the sink wrote');
    assert.equal(rs.written + rs.dropped, N);
  } else {
    t.diagnostic('redis part skipped: no redis');
  }
});

test('100,000 events/s sustained for 1 s: the event loop keeps running, sinks keep up or drop', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-burst-'));
  const bus = new EventBus({ node: 'sustained' });
  const metrics = new Metrics();
  const sinks = await startEventSinks(bus, { log: join(dir, 'e.jsonl'), redis: null }, metrics);
  const admin = await startAdminServer({ address: '127.0.0.1:0', token: TOKEN }, fakeTargets(bus).targets, bus, metrics);
  t.after(() => admin.close());
  const ev = makeEvent(1);
  let emitted = 0;
  let worstBatchMs = 0;
  // 1000 events every 10 ms = 100k/s, between which timers and I/O must still run.
  await new Promise<void>((resolve) => {
    let ticks = 0;
    const iv = setInterval(() => {
      const t0 = performance.now();
      for (let i = 0; i < 1000; i++) { bus.emit({ ...ev }); emitted++; }
      worstBatchMs = Math.max(worstBatchMs, performance.now() - t0);
      if (++ticks === 100) { clearInterval(iv); resolve(); }
    }, 10);
  });
  console.log(`sustained: ${emitted} events, worst batch of 1000 emits ${worstBatchMs.toFixed(2)} ms`);
  assert.ok(worstBatchMs < 50, `a batch of 1000 emits took ${worstBatchMs} ms`);
  await sinks.stop();
  for (const s of sinks.stats()) {
    assert.equal(s.pending, 0, s.name);
    assert.equal(s.written + s.dropped, emitted, `${s.name}: written + dropped = emitted`);
  }
  const log = sinks.stats().find((s) => s.name === 'log');
  assert.ok(log && log.written > 0);
  const lines = readFileSync(join(dir, 'e.jsonl'), 'utf8').split('\n').filter((l) => l !== '').length;
  assert.equal(lines, log.written, 'log lines = written');
  console.log(`sustained: log wrote ${log.written}, dropped ${log.dropped}`);
  // The admin API stays responsive right after the burst.
  const r = await fetch(`${admin.url}/api/stats`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(r.status, 200);
  const stats = await r.json() as { blocks: { byType: Record<string, number> } };
  assert.ok((stats.blocks.byType.deny ?? 0) > 0);
});
