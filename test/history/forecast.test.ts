// @slow
// Why: an operator plans investments from the capacity view. Months of synthetic traffic, driven by
// a simulated clock through the real store (recorder → minutes → 5 min → 1 h roll-ups), must give a
// forecast that names the right day, and a weekly pattern must not read as growth.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sim, SimPool, DAY, T0, dayShape, rng } from './sim.js';

const MAXCONN = 400;

/** Runs `days` days where the busiest hour of day d has utilisation util(d) (± noise). */
function simulate(days: number, util: (day: number) => number, noise: number, seed: number): Sim {
  const server = { name: 'web1', active: 0, maxconn: MAXCONN };
  const pool = new SimPool('shop', [server, { name: 'web2', active: 0, maxconn: MAXCONN }]);
  const sim = new Sim([pool]);
  const rand = rng(seed);
  let dayNoise = 1;
  let lastDay = -1;
  sim.run(days * 1440, (t) => {
    const d = Math.floor((t - T0) / DAY);
    if (d !== lastDay) { lastDay = d; dayNoise = 1 + (rand() * 2 - 1) * noise; }
    const u = util(d) * dayShape(t) * dayNoise;
    server.active = Math.round(MAXCONN * u);
    pool.list[1].active = Math.round(MAXCONN * u * 0.5);
    for (let i = 0; i < 3; i++) sim.service.recorder.request('shop', 'web1', 200, 20 + rand() * 30, 0);
  });
  return sim;
}

function row(sim: Sim, key: string) {
  const v = sim.service.capacity({ days: 400 });
  const r = v.rows.find((x) => x.key === key);
  assert.ok(r, `a capacity row for ${key}: ${v.rows.map((x) => x.key).join(', ')}`);
  return r;
}

const isoDay = (d: number): string => new Date(T0 + d * DAY).toISOString().slice(0, 10);
const daysBetween = (a: string, b: string): number => Math.round((Date.parse(a) - Date.parse(b)) / DAY);

test('linear growth of 2 % a week is forecast to cross 70 % on the right day ± 2 days', () => {
  const u0 = 0.55;
  const util = (d: number): number => u0 * (1 + 0.02 * d / 7);
  let truth = 0;
  while (util(truth) < 0.7) truth++;
  const sim = simulate(70, util, 0.02, 1);
  const r = row(sim, 'shop/web1');
  assert.ok(r.crossing !== null && r.crossing.date !== null, `a crossing date: ${JSON.stringify(r.crossing)}`);
  const off = daysBetween(r.crossing.date, isoDay(truth));
  assert.ok(Math.abs(off) <= 2, `forecast ${r.crossing.date}, truth ${isoDay(truth)} (day ${truth}): ${off} days off`);
  // The interval holds the truth and is ordered.
  assert.ok(r.crossing.earliest !== null && r.crossing.earliest <= r.crossing.date, JSON.stringify(r.crossing));
  assert.ok(r.crossing.latest === null || r.crossing.latest >= r.crossing.date, JSON.stringify(r.crossing));
  assert.ok(r.crossing.earliest <= isoDay(truth) && (r.crossing.latest === null || r.crossing.latest >= isoDay(truth)), `interval ${r.crossing.earliest}..${r.crossing.latest} holds ${isoDay(truth)}`);
  // The trend reads as about 2 % of the starting level a week.
  assert.ok(r.trend !== null);
  assert.ok(Math.abs(r.trend.perWeek - u0 * 0.02) < 0.003, `trend ${r.trend.perWeek} per week, expected ${u0 * 0.02}`);
  // Busiest hour of each day is 14:00 UTC, and headroom is positive while below the band.
  assert.equal(r.current?.hour, 14);
  assert.ok((r.headroomRps ?? 0) > 0);
  process.stdout.write(`# growth: truth ${isoDay(truth)}, forecast ${r.crossing.date} [${r.crossing.earliest} … ${r.crossing.latest}], trend ${(r.trend.perWeek * 100).toFixed(2)} points/week\n`);
});

test('a weekly seasonality is not mistaken for growth', () => {
  // Weekdays peak at 60 %, Saturdays and Sundays at 35 %; no growth. Day 0 is a Monday.
  const util = (d: number): number => ((d % 7) >= 5 ? 0.35 : 0.6);
  const sim = simulate(8 * 7 + 3, util, 0.01, 2);
  const r = row(sim, 'shop/web1');
  assert.ok(r.trend !== null && r.trend.seasonal, 'seasonal fit');
  assert.ok(Math.abs(r.trend.perWeek) < 0.005, `no growth: ${r.trend.perWeek} per week`);
  assert.equal(r.crossing?.date, null, `no crossing of 70 %: ${JSON.stringify(r.crossing)}`);
  // The weekday pattern is kept: Saturday and Sunday factors are about 35/60 of a Wednesday's.
  const wd = r.trend.weekday;
  assert.ok(Math.abs(wd[0] / wd[3] - 0.35 / 0.6) < 0.05 && Math.abs(wd[6] / wd[3] - 0.35 / 0.6) < 0.05, `weekday factors ${wd.map((x) => x.toFixed(3)).join(' ')}`);
});

test('growth under a weekly pattern: the busiest weekday is forecast to the right day ± 2 days', () => {
  const base = (d: number): number => 0.5 * (1 + 0.02 * d / 7);
  const util = (d: number): number => base(d) * ((d % 7) >= 5 ? 0.7 : 1);
  let truth = 0;
  while (util(truth) < 0.7) truth++;
  const sim = simulate(84, util, 0.01, 3);
  const r = row(sim, 'shop/web1');
  assert.ok(r.crossing?.date, JSON.stringify(r.crossing));
  const off = daysBetween(r.crossing.date, isoDay(truth));
  assert.ok(Math.abs(off) <= 2, `forecast ${r.crossing.date}, truth ${isoDay(truth)}: ${off} days off`);
  process.stdout.write(`# growth + weekly pattern: truth ${isoDay(truth)}, forecast ${r.crossing.date} [${r.crossing.earliest} … ${r.crossing.latest}]\n`);
});

test('what-if: +N % traffic and one server lost name the servers that cross', () => {
  const sim = simulate(10, () => 0.5, 0, 4);
  const base = sim.service.capacity({ days: 10 });
  assert.deepEqual(base.crossing, [], 'nothing above 70 % today');
  // web1 peaks at 50 %, web2 at 25 %: +50 % puts web1 at 75 %.
  const more = sim.service.capacity({ days: 10, growthPct: 50 });
  assert.ok(more.crossing.includes('shop/web1') && !more.crossing.includes('shop/web2'), JSON.stringify(more.crossing));
  // Losing web1: its requests go to web2 (all the recorded requests were web1's: web2 takes them all).
  const lost = sim.service.capacity({ days: 10, lose: 'shop/web1' });
  const w2 = lost.rows.find((x) => x.key === 'shop/web2')!;
  assert.ok(!lost.crossing.includes('shop/web1'));
  assert.ok(w2.whatIf.crosses, `web2 crosses when web1 is lost: ${JSON.stringify(w2.whatIf)}`);
});
