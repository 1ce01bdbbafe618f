// Why: an operator plans by their own clock. `history.timezone` must move the capacity view's
// busiest hour of day and the calendar day it belongs to; a zone name Intl does not know is refused
// at load with file, line and key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText, ConfigLoadError, formatConfigError } from '../../edge/config/load.js';
import type { HistorySection } from '../../edge/history/config.js';
import { capacityCsv } from '../../edge/history/query.js';
import { Sim, SimPool, T0, DAY, HOUR } from './sim.js';

/** Three days; web1's concurrency peaks every day in 14:00–15:00 UTC (40 of 100), 5 elsewhere. */
function view(timezone: string | undefined) {
  const web1 = { name: 'web1', active: 0, maxconn: 100 };
  const sim = new Sim([new SimPool('shop', [web1])], { raw: timezone === undefined ? {} : { timezone } });
  sim.run(3 * 1440, (t) => { web1.active = new Date(t).getUTCHours() === 14 ? 40 : 5; });
  sim.now = T0 + 3 * DAY + 6 * HOUR;
  const v = sim.service.capacity({ days: 10 });
  const row = v.rows.find((r) => r.key === 'shop/web1');
  assert.ok(row && row.current, 'a row with a current peak');
  return { v, row };
}

test('the busiest hour of day and its day follow history.timezone', () => {
  const utc = view(undefined);
  assert.equal(utc.v.timezone, 'UTC');
  assert.deepEqual(utc.row.days.map((d) => [d.day, d.hour, d.util]), [['2026-01-05', 14, 0.4], ['2026-01-06', 14, 0.4], ['2026-01-07', 14, 0.4]]);

  // New York in January: UTC−5, the peak is at 09:00 local, same dates.
  const ny = view('America/New_York');
  assert.equal(ny.v.timezone, 'America/New_York');
  assert.ok(ny.row.days.filter((d) => d.util === 0.4).every((d) => d.hour === 9));
  assert.deepEqual(ny.row.days.filter((d) => d.util === 0.4).map((d) => d.day), ['2026-01-05', '2026-01-06', '2026-01-07']);
  assert.equal(ny.row.current!.hour, 9);
  // The first UTC hours of 2026-01-05 are the evening of 2026-01-04 in New York: a day of its own.
  assert.equal(ny.row.days[0].day, '2026-01-04');

  // Auckland in January: UTC+13, 14:00 UTC is 03:00 on the next calendar day.
  const akl = view('Pacific/Auckland');
  assert.deepEqual(akl.row.days.filter((d) => d.util === 0.4).map((d) => [d.day, d.hour]), [['2026-01-06', 3], ['2026-01-07', 3], ['2026-01-08', 3]]);

  // Kolkata (UTC+5:30): hourly buckets are UTC hours, named by the local hour they start in.
  assert.equal(view('Asia/Kolkata').row.current!.hour, 19);

  const csv = capacityCsv(ny.v).split('\r\n');
  const cols = csv[0].split(',');
  const web1 = csv.find((l) => l.startsWith('server,shop/web1,'))!.split(',');
  assert.equal(web1[cols.indexOf('peak_hour')], '9');
  assert.equal(web1[cols.indexOf('timezone')], 'America/New_York');
});

const BASE = ['listen: [{ address: "127.0.0.1:8080" }]', 'backends:', '  shop:', '    servers:', '      - { name: web1, url: "http://127.0.0.1:8081" }'];

test('history.timezone: IANA names accepted, default UTC; an unknown name names file, line and key', () => {
  const load = (h: string) => loadConfigText([...BASE, h, ''].join('\n'), '/etc/portcullis/edge.yaml', {});
  assert.equal((load('').sections.history as HistorySection).timezone, 'UTC');
  assert.equal((load('history: { timezone: Europe/Paris }').sections.history as HistorySection).timezone, 'Europe/Paris');
  for (const bad of ['Europe/Pariss', 'CEST+1', '""']) {
    let err: unknown;
    try { load(`history:\n  target: 0.7\n  timezone: ${bad}`); } catch (e) { err = e; }
    assert.ok(err instanceof ConfigLoadError, `${bad} refused`);
    const e = err.errors.find((x) => x.path.includes('timezone'));
    assert.ok(e, `an error on the timezone key: ${err.errors.map(formatConfigError).join('; ')}`);
    assert.equal(e.file, '/etc/portcullis/edge.yaml');
    assert.equal(e.line, BASE.length + 3);
    assert.match(e.path, /history.*timezone/);
  }
});
