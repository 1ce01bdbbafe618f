// @slow
// Why: history an operator can trust after a restart, a damaged file, and a fleet far larger than
// its budget: what was kept comes back, a bad file never stops the edge, and the store never grows
// past its bounds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { EventBus } from '../../edge/observe/events/bus.js';
import { HistoryStore, RECORD_OVERHEAD } from '../../edge/history/store.js';
import { HistoryFile } from '../../edge/history/disk.js';
import { newRecord, F } from '../../edge/history/record.js';
import { Sketch, ALPHA } from '../../edge/history/sketch.js';
import { Sim, SimPool, MINUTE, HOUR, DAY, T0, rng } from './sim.js';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-history-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function traffic(sim: Sim, minutes: number, seed = 1): void {
  const rand = rng(seed);
  const s = sim.pools[0].list[0];
  sim.run(minutes, () => {
    s.active = 10 + Math.floor(rand() * 20);
    for (let i = 0; i < 50; i++) sim.service.recorder.request('shop', 'web1', i % 10 === 0 ? 503 : 200, 5 + rand() * 100, i % 5 === 0 ? 3 : 0);
    sim.service.recorder.rule('php-probe', 'enforce', 'deny');
    sim.service.recorder.rule('php-probe', 'log_only', 'deny');
    sim.service.recorder.clientAction(2, 'blocked');
  });
}

test('a restart keeps the history (minutes, roll-ups, rules, client classes, the partial minute)', async (t) => {
  const dir = tempDir(t);
  const pool = () => [new SimPool('shop', [{ name: 'web1', active: 0, maxconn: 100 }])];
  const a = new Sim(pool(), { raw: { dir }, baseDir: dir });
  await a.service.start(false);
  traffic(a, 3 * 60);
  // Half a minute more, then a stop: the open minute is written too.
  a.service.recorder.request('shop', 'web1', 200, 10, 0);
  a.now += 30_000;
  await a.service.stop();
  const before = a.service.history('24h', {});
  const beforeCap = a.service.capacity({ days: 2 });
  assert.ok(statSync(join(dir, 'history.log')).size > 0);

  const b = new Sim(pool(), { raw: { dir }, baseDir: dir, now: a.now });
  await b.service.start(false);
  const after = b.service.history('24h', {});
  assert.deepEqual(after.series, before.series, 'same series and points after the restart');
  assert.equal(after.total.reduce((s, p) => s + (p.requests as number), 0), 3 * 60 * 50 + 1);
  assert.deepEqual(b.service.history('7d', {}).total.map((p) => p.requests), a.service.history('7d', {}).total.map((p) => p.requests), '5-minute roll-ups kept');
  assert.deepEqual(b.service.capacity({ days: 2 }).rows.map((r) => r.current), beforeCap.rows.map((r) => r.current));
  // Rules and client classes are there too.
  const rules = after.series.find((s) => s.kind === 'rule' && s.key === 'php-probe');
  assert.equal(rules?.points.reduce((s, p) => s + (p.enforced as number), 0), 180);
  assert.equal(rules?.points.reduce((s, p) => s + (p.log_only as number), 0), 180);
  const cls = after.series.find((s) => s.kind === 'class' && s.key === '2');
  assert.equal(cls?.points.reduce((s, p) => s + (p.blocked as number), 0), 180);
  // More traffic after the restart lands in the same minute slot and adds up.
  b.service.recorder.request('shop', 'web1', 200, 10, 0);
  b.now += 30_000;
  b.service.tick();
  const minute180 = b.service.history('1h', {}).total.find((p) => p.t === (T0 + 180 * MINUTE) / 1000);
  assert.equal(minute180?.requests, 2, 'the minute split by the restart: one request before, one after');
  await b.service.stop();
});

test('a corrupted history file is reported and set aside; what came before the damage is kept; the edge goes on', async (t) => {
  const dir = tempDir(t);
  const pool = () => [new SimPool('shop', [{ name: 'web1', active: 0, maxconn: 100 }])];
  const a = new Sim(pool(), { raw: { dir }, baseDir: dir });
  await a.service.start(false);
  traffic(a, 30);
  await a.service.stop();
  const path = join(dir, 'history.log');
  const good = readFileSync(path);
  // Flip bytes two thirds in: a CRC mismatch there.
  const bad = Buffer.from(good);
  const at = Math.floor(bad.length * 2 / 3);
  for (let i = at; i < at + 16; i++) bad[i] ^= 0xa5;
  writeFileSync(path, bad);

  const bus = new EventBus({ node: 'sim' });
  const events: string[] = [];
  bus.subscribe((ev) => { if (ev.type === 'error') events.push(String(ev.reason)); });
  const b = new Sim(pool(), { raw: { dir }, baseDir: dir, now: a.now, bus });
  await b.service.start(false);
  const st = b.service.status();
  assert.ok(st.file?.corrupt, 'reported in the status');
  assert.match(st.file!.corrupt!.reason, /CRC mismatch|bad frame length|undecodable/);
  assert.equal(events.length, 1, `one error event: ${events.join(' | ')}`);
  assert.match(events[0], /history file .* is damaged .* moved to .*corrupt-/);
  const aside = readdirSync(dir).filter((f) => f.startsWith('history.log.corrupt-'));
  assert.equal(aside.length, 1, 'the damaged file is kept aside for a person to look at');
  assert.deepEqual(readFileSync(join(dir, aside[0])), bad);
  // Part of the history survives, not all of it; a fresh file holds it and the edge records on.
  const kept = b.service.history('1h', {}).total.reduce((s, p) => s + (p.requests as number), 0);
  assert.ok(kept > 0 && kept < 30 * 50, `kept ${kept} of ${30 * 50} requests`);
  traffic(b, 2);
  await b.service.stop();
  const c = new Sim(pool(), { raw: { dir }, baseDir: dir, now: b.now });
  await c.service.start(false);
  assert.equal(c.service.status().file?.corrupt, null, 'the rewritten file reads back clean');
  assert.equal(c.service.history('1h', {}).total.reduce((s, p) => s + (p.requests as number), 0), kept + 100);

  // Not a history file at all (someone pointed dir at the wrong place): set aside, nothing kept.
  writeFileSync(path, 'hello, this is not history\n');
  const d = new Sim(pool(), { raw: { dir }, baseDir: dir, now: b.now });
  await d.service.start(false);
  assert.match(d.service.status().file!.corrupt!.reason, /bad magic/);
});

test('bounds hold with 10,000 servers × 400 days (bytes reported)', (t) => {
  const dir = tempDir(t);
  const maxBytes = 64 * 1024 * 1024;
  const store = new HistoryStore({ node: 'big', maxBytes });
  const file = new HistoryFile(join(dir, 'history.log'));
  store.onStored = (bytes) => file.append(bytes);
  const servers = 10_000;
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  let now = T0;
  const rec = newRecord(2, 0, 'big', 'server', '');
  const sk = new Sketch();
  for (let i = 0; i < 40; i++) sk.add(1 + i * 7);
  let peak = 0;
  let fileMax = 0;
  // 400 days of the 1-hour tier, one busiest-hour record per server per day (4 million records), and the
  // file compacted as the service does it. The minute and 5-minute tiers get a day of 10,000 servers too.
  for (let day = 0; day < 400; day++) {
    now = T0 + day * DAY + 15 * HOUR;
    for (let s = 0; s < servers; s++) {
      rec.t = T0 + day * DAY + 14 * HOUR;
      rec.key = `shop${s % 10}/web${s}`;
      rec.fields[F.req] = 3600 * 50 + s;
      rec.fields[F.concPeak] = 40 + (s % 50);
      rec.fields[F.maxconn] = 100;
      rec.sketch = sk;
      store.add(rec, 'merge', now);
    }
    store.maintain(now);
    peak = Math.max(peak, store.bytes);
    file.flush();
    if (file.size > Math.min(2 * maxBytes, 2 * store.bytes + (1 << 20))) file.compact(store.all());
    fileMax = Math.max(fileMax, file.size);
  }
  for (let m = 0; m < 60; m++) {
    for (let s = 0; s < servers; s += 10) {
      const r = newRecord(0, now + m * MINUTE, 'big', 'server', `shop${s % 10}/web${s}`);
      r.fields[F.req] = 100;
      store.add(r, 'merge', now);
    }
  }
  store.maintain(now + HOUR);
  peak = Math.max(peak, store.bytes);
  const st = store.stats();
  gc();
  const heap = process.memoryUsage().heapUsed - heap0;
  const perRecord = (st.bytes / st.records) - RECORD_OVERHEAD;
  process.stdout.write(`# bounds: budget ${maxBytes} B; held ${st.bytes} B (peak ${peak}) in ${st.records} records (${perRecord.toFixed(1)} B encoded + ${RECORD_OVERHEAD} overhead each); `
    + `1 h tier ${st.tiers[2].bytes} B from ${new Date(st.tiers[2].from ?? 0).toISOString().slice(0, 10)}; trimmed ${st.trimmed} buckets; file max ${fileMax} B; heap growth ${heap} B; `
    + `heap per record held ${(heap / st.records).toFixed(0)} B; all 400 days at 1 h would need ${(servers * 400 * 24 * (perRecord + RECORD_OVERHEAD) / 1e9).toFixed(1)} GB\n`);
  assert.ok(peak <= maxBytes, `memory bound: peak ${peak} ≤ ${maxBytes}`);
  assert.ok(fileMax <= 2 * maxBytes + (2 << 20), `disk bound: ${fileMax}`);
  assert.ok(st.trimmed > 0, 'old buckets were dropped to stay within the bound');
  // The newest data is what stays: the last day is complete.
  const last = store.query(2, T0 + 399 * DAY, T0 + 400 * DAY, { kinds: ['server'] });
  assert.equal(last.length, servers);
  assert.ok(heap < 1.3 * maxBytes, `heap growth ${heap} B (after a GC) stays in proportion to the budget`);
});

test('the sketch: merged quantiles equal quantiles of all values within α; merging is exact', () => {
  const rand = rng(9);
  const a = new Sketch();
  const b = new Sketch();
  const all: number[] = [];
  for (let i = 0; i < 20000; i++) { const v = Math.exp(rand() * 8) * 0.05; a.add(v); all.push(v); }
  for (let i = 0; i < 5000; i++) { const v = 200 + rand() * 3000; b.add(v); all.push(v); }
  all.sort((x, y) => x - y);
  const m = new Sketch();
  m.merge(a); m.merge(b);
  for (const q of [0.5, 0.9, 0.95, 0.99, 0.999]) {
    const exact = all[Math.floor(q * (all.length - 1))];
    const est = m.quantile(q)!;
    assert.ok(Math.abs(est - exact) <= ALPHA * exact, `q${q}: ${est} vs ${exact}`);
  }
  assert.equal(m.count, 25000);
});
