// @slow
// Why: the operator plans the peak season from the dashboard. In a real headless Chromium: the
// existing charts switch between live and the history ranges, the capacity page shows each server's
// busiest hour against the band with the forecast, the what-if names the servers that cross, and one
// click exports CSV and JSON. Screenshots go to the test output directory (test/harness/output.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { testOutputDir } from '../harness/output.js';
import { EventBus } from '../../edge/observe/events/bus.js';
import { Metrics } from '../../edge/observe/metrics.js';
import { startAdminServer } from '../../edge/admin/server.js';
import { TOKEN, fakeTargets } from '../soc/fakes.js';
import { Sim, SimPool, DAY, T0, dayShape, rng } from './sim.js';

const CHROMIUM = '/usr/bin/chromium';

test('dashboard: history ranges on the charts, capacity page with what-if, CSV and JSON export (Chromium)', async (t) => {
  if (!existsSync(CHROMIUM)) { t.skip(`skipped: chromium not installed at ${CHROMIUM} (apt-get install -y chromium)`); return; }
  // 35 days of synthetic traffic: web1 grows 2 % a week from a 55 % peak, web2 carries half of it.
  const web1 = { name: 'web1', active: 0, maxconn: 200 };
  const web2 = { name: 'web2', active: 0, maxconn: 200 };
  const sim = new Sim([new SimPool('shop', [web1, web2])], { node: 'dash-node' });
  const rand = rng(5);
  sim.run(35 * 1440, (tm) => {
    const d = (tm - T0) / DAY;
    const u = 0.55 * (1 + 0.02 * d / 7) * dayShape(tm);
    web1.active = Math.round(200 * u);
    web2.active = Math.round(100 * u);
    const n = Math.round(60 * dayShape(tm));
    for (let i = 0; i < n; i++) sim.service.recorder.request('shop', i % 3 === 0 ? 'web2' : 'web1', i % 25 === 0 ? 503 : 200, 20 + rand() * 80, 0);
    if (n > 30) { sim.service.recorder.rule('wp-probe', 'enforce', 'deny'); sim.service.recorder.clientAction(2, 'blocked'); }
  });

  const bus = new EventBus({ node: 'dash-node' });
  const f = fakeTargets(bus);
  const admin = await startAdminServer({ address: '127.0.0.1:0', token: TOKEN }, { ...f.targets, history: sim.service }, bus, new Metrics());
  t.after(() => admin.close());
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  t.after(() => browser.close());
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 1300 }, acceptDownloads: true });
  const page = await ctx.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('request', (r) => { if (!r.url().startsWith(admin.url) && !r.url().startsWith('blob:')) problems.push(`external request: ${r.url()}`); });
  const out = testOutputDir();

  const waitText = async (sel: string, pred: (text: string) => boolean, timeoutMs = 8000): Promise<string> => {
    const t0 = Date.now();
    for (;;) {
      const text = (await page.textContent(sel).catch(() => null)) ?? '';
      if (pred(text)) return text;
      if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting on ${sel}; text is ${JSON.stringify(text.slice(0, 300))}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  await page.goto(admin.url + '/');
  await page.fill('#token', TOKEN);
  await page.click('#login-button');
  await page.waitForSelector('#app:not([hidden])');
  assert.equal(await page.isHidden('#history-charts'), true, 'live: only the live charts');

  // History ranges: the existing charts read /api/history; the step follows the range.
  const seen: string[] = [];
  page.on('request', (r) => { if (r.url().includes('/api/history')) seen.push(new URL(r.url()).search); });
  for (const [id, step] of [['#range-1h', '1m'], ['#range-24h', '1m'], ['#range-7d', '5m'], ['#range-30d', '1h'], ['#range-1y', '1h']] as const) {
    await page.click(id);
    await waitText('#range-note', (x) => x.startsWith(`step ${step}`));
    assert.equal(await page.getAttribute(id, 'class'), 'on');
  }
  assert.deepEqual(seen, ['?range=1h', '?range=24h', '?range=7d', '?range=30d', '?range=1y']);
  await page.click('#range-7d');
  await waitText('#range-note', (x) => x.startsWith('step 5m') && x.includes('dash-node'));
  assert.equal(await page.isHidden('#history-charts'), false);
  // The charts hold the range's points (uPlot's data, read through the page's handle).
  const points = await page.evaluate(() => (globalThis as unknown as { portcullisDashboard: { charts(): { data: (number | null)[][] }[] } }).portcullisDashboard.charts().map((c) => c.data[0].length));
  assert.equal(points.length, 4, 'rate, blocked, latency, utilisation charts');
  assert.ok(points.every((n) => n > 7 * 24 * 12 - 20), `7 days of 5-minute points in every chart: ${points.join(', ')}`);
  await page.screenshot({ path: join(out, 'dashboard-history-7d.png'), fullPage: true });

  // One-click export of the view: CSV and JSON of the 7-day range.
  const [csvDl] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')]);
  assert.match(csvDl.suggestedFilename(), /^portcullis-history-7d-.*\.csv$/);
  const csv = readFileSync((await csvDl.path())!, 'utf8');
  assert.match(csv, /^kind,key,time,requests,/);
  assert.ok(csv.includes('server,shop/web1,'));
  const [jsonDl] = await Promise.all([page.waitForEvent('download'), page.click('#export-json')]);
  const json = JSON.parse(readFileSync((await jsonDl.path())!, 'utf8')) as { range: string; step: string; series: unknown[] };
  assert.equal(json.range, '7d');
  assert.equal(json.step, '5m');

  // Back to live: the live charts again.
  await page.click('#range-live');
  await waitText('#range-note', (x) => x.startsWith('last 2 minutes'));
  assert.equal(await page.isHidden('#history-charts'), true);

  // Capacity page: every server and the backend, the forecast date, headroom.
  await page.click('#tab-capacity');
  await page.waitForSelector('#page-capacity:not([hidden])');
  await waitText('#capacity-table tbody', (x) => x.includes('shop/web1') && x.includes('shop/web2'));
  const row1 = (await page.textContent('#cap-shop_web1')) ?? '';
  assert.match(row1, /\d{4}-\d\d-\d\d \(\d{4}-\d\d-\d\d … /, `web1 has a crossing date with its interval: ${row1}`);
  assert.match(row1, /14:00/, 'busiest hour');
  assert.match(await page.textContent('#cap-summary') ?? '', /Nothing reaches the 70 % band/);
  await page.screenshot({ path: join(out, 'dashboard-capacity.png'), fullPage: true });

  // What if web1 is lost and traffic grows 10 %: web2 (at ~40 % now) takes web1's share and crosses.
  await page.fill('#cap-growth', '10');
  await page.selectOption('#cap-lose', 'shop/web1');
  await page.click('#cap-apply');
  await waitText('#cap-summary', (x) => x.includes('reach the 70 % band'));
  const summary = (await page.textContent('#cap-summary')) ?? '';
  assert.match(summary, /shop\/web2/);
  assert.match(summary, /\+10 % traffic, shop\/web1 lost/);
  assert.equal(await page.getAttribute('#cap-shop_web2', 'class'), 'crossing');
  await page.screenshot({ path: join(out, 'dashboard-capacity-whatif.png'), fullPage: true });
  // Export on the capacity page exports the capacity view with the what-if.
  const [capDl] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')]);
  assert.match(capDl.suggestedFilename(), /^portcullis-capacity-.*\.csv$/);
  const capCsv = readFileSync((await capDl.path())!, 'utf8');
  assert.match(capCsv, /^kind,key,maxconn,/);
  assert.match(capCsv, /server,shop\/web2,.*,true\r\n/);

  assert.deepEqual(problems, []);
});
