// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// Why: the dashboard is read on ordinary laptop and desktop screens. At 1280, 1440 and 1920 px wide
// (headless Chromium, against the real edge with the example shop rules) no control may sit outside
// the viewport, no label may overlap another (DOM boxes, and the charts' canvas-drawn time labels),
// no cell may cut its text; the events table pages (newest first) instead of growing the page; a
// client already banned shows "banned" with unban, not a ban button; a rule keeps its chart colour
// when the ranking changes. Screenshots: dashboard-layout-<width>.png in the test output directory
// (test/harness/output.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Page } from 'playwright-core';
import { spawnEdge, ADMIN_TOKEN } from '../harness/process.js';
import { startOrigin } from '../harness/origin.js';
import { testOutputDir } from '../harness/output.js';
import { admin, send, waitFor } from './e2e-support.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOP_RULES = fileURLToPath(new URL('../../../examples/rules/shop.rules', import.meta.url));
const WIDTHS = [1280, 1440, 1920];

/**
 * Everything that is wrong with the layout of the page as it is now (empty: nothing). Plain browser
 * JavaScript in a string: this project compiles without the DOM types.
 */
const LAYOUT_PROBLEMS = `(() => {
  const problems = [];
  const vw = document.documentElement.clientWidth;
  const visible = (e) => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== 'hidden'; };
  const name = (e) => (e.id ? '#' + e.id : e.tagName.toLowerCase() + ' "' + (e.textContent || '').trim().slice(0, 40) + '"');
  for (const c of document.querySelectorAll('#app button, #app select, #app input')) {
    if (!visible(c)) continue;
    const r = c.getBoundingClientRect();
    if (r.left < 0 || r.right > vw + 0.5) problems.push('control ' + name(c) + ' at x ' + Math.round(r.left) + '–' + Math.round(r.right) + ', outside the viewport 0–' + vw);
  }
  if (document.documentElement.scrollWidth > vw + 1) problems.push('the page scrolls sideways (' + document.documentElement.scrollWidth + ' > ' + vw + ')');
  for (const p of document.querySelectorAll('#app .panel')) {
    if (p.scrollWidth > p.clientWidth + 1) problems.push('panel "' + (p.querySelector('h2') ? p.querySelector('h2').textContent : '?') + '" hides content sideways (' + p.scrollWidth + ' > ' + p.clientWidth + ')');
  }
  for (const c of document.querySelectorAll('#app td, #app th')) {
    if (visible(c) && c.scrollWidth > c.clientWidth + 1) problems.push('cell ' + name(c) + ' cuts its text (' + c.scrollWidth + ' > ' + c.clientWidth + ')');
  }
  // Labels: no two visible text boxes overlap (a box and its own descendants excepted).
  const labels = [...document.querySelectorAll('#app th, #app td, #app h1, #app h2, .kpi span, .kpi b, header.top > span, header.top > button, .pager > *, #event-count')].filter(visible);
  const boxes = labels.map((e) => e.getBoundingClientRect());
  for (let i = 0; i < labels.length; i++) {
    for (let j = i + 1; j < labels.length; j++) {
      const a = boxes[i], b = boxes[j];
      const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (w > 1 && h > 1 && !labels[i].contains(labels[j]) && !labels[j].contains(labels[i])) problems.push('labels overlap: ' + name(labels[i]) + ' and ' + name(labels[j]));
    }
  }
  // The charts' time labels are drawn on a canvas: measure them where uPlot placed them.
  const charts = window.portcullisDashboard ? window.portcullisDashboard.charts() : [];
  if (charts.length !== 2) problems.push('expected 2 charts, found ' + charts.length);
  const ctx = document.createElement('canvas').getContext('2d');
  for (const u of charts) {
    const ax = u.axes[0];
    const splits = ax._splits || [];
    const values = ax._values || [];
    const chart = u.root.parentElement ? u.root.parentElement.id : '?';
    if (values.length < 2) { problems.push('chart ' + chart + ': fewer than 2 time labels (' + values.length + ')'); continue; }
    ctx.font = Array.isArray(ax.font) ? ax.font[0] : ax.font;
    // However long the history gets, uPlot keeps ticks at least axis.space px apart: that must fit
    // the widest "hh:mm:ss" label, or labels run together once two minutes of history are drawn.
    const minGap = ax.space(u, 0, u.scales.x.min, u.scales.x.max, u.bbox.width / devicePixelRatio);
    const widest = Math.max(...['00:00:00', '88:88:88', '22:22:22'].map((v) => ctx.measureText(v).width)) + 4;
    if (minGap < widest) problems.push('chart ' + chart + ': time ticks may be ' + minGap + ' px apart but a label needs ' + widest.toFixed(1) + ' px');
    for (let k = 0; k + 1 < values.length; k++) {
      const gap = u.valToPos(splits[k + 1], 'x') - u.valToPos(splits[k], 'x');
      const need = (ctx.measureText(String(values[k])).width + ctx.measureText(String(values[k + 1])).width) / 2 + 4;
      if (gap < need) problems.push('chart ' + chart + ': time labels "' + values[k] + '" and "' + values[k + 1] + '" run together (' + gap.toFixed(1) + ' px apart, need ' + need.toFixed(1) + ')');
    }
  }
  return problems;
})()`;

function layoutProblems(page: Page): Promise<string[]> {
  return page.evaluate(LAYOUT_PROBLEMS) as Promise<string[]>;
}

test('dashboard layout at 1280, 1440 and 1920 px: controls on screen, no overlapping labels, paged events, ban state, stable rule colours', { timeout: 120_000 }, async (t) => {
  if (!existsSync(CHROMIUM)) { t.skip(`skipped: chromium not installed at ${CHROMIUM} (apt-get install -y chromium)`); return; }
  const web = await startOrigin('web1');
  const api = await startOrigin('api1');
  t.after(() => Promise.all([web.close(), api.close()]));
  const dir = mkdtempSync(join(tmpdir(), 'pc-dash-layout-'));
  const edge = await spawnEdge([
    'listen: [{ address: "127.0.0.1:{{PORT}}" }]',
    'access_log: { path: "off" }',
    'events: { log: "off" }',
    `admin: { address: "127.0.0.1:{{ADMIN_PORT}}", token: "\${PORTCULLIS_ADMIN_TOKEN}", state_file: "${join(dir, 'state.json')}" }`,
    'backends:',
    `  shop: { servers: [{ name: web1, url: "${web.url}" }] }`,
    `  api: { servers: [{ name: api1, url: "${api.url}" }] }`,
    'default_backend: shop',
    `rules: { files: ["${SHOP_RULES}"], watch: false }`,
    '',
  ].join('\n'));
  t.after(() => edge.stop());
  const adminUrl = `http://127.0.0.1:${edge.adminPort}`;
  const traffic = async (n: number, path: string, from: string, headers?: Record<string, string>): Promise<void> => {
    for (let i = 0; i < n; i++) await send(`${edge.url}${path.replace('{i}', String(i))}`, { from, headers });
  };
  // Blocks by two rules (ua-scanners ahead), log_only probes with a query, ordinary traffic.
  await traffic(40, '/search?q={i}', '127.0.7.1', { 'user-agent': 'sqlmap/1.7' });
  await traffic(25, '/admin/orders/{i}', '127.0.7.2');
  await traffic(30, '/wp-login.php?u={i}', '127.0.7.3');
  await traffic(20, '/product/{i}', '127.0.7.4');
  assert.equal((await admin(edge.adminPort, 'POST', '/api/bans', { key: '127.0.7.1', ttl: '10m', reason: 'layout test' })).status, 201);
  for (let i = 0; i < 2; i++) assert.equal((await admin(edge.adminPort, 'GET', '/api/stats', undefined, 'wrong-token-wrong-token')).status, 401);

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.after(() => browser.close());
  const outDir = testOutputDir();

  for (const width of WIDTHS) {
    const context = await browser.newContext({ viewport: { width, height: 900 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const text = async (sel: string): Promise<string> => (await page.textContent(sel)) ?? '';
    await page.goto(`${adminUrl}/`);
    await page.fill('#token', ADMIN_TOKEN);
    await page.click('#login-button');
    await waitFor(`${width}: stats and events shown`, async () => (await text('#top-clients')).includes('127.0.7.1') && (await page.locator('#events tbody tr').count()) > 0, 10_000);
    await waitFor(`${width}: the block chart has its rule series`, async () => (await text('#chart-blocked')).includes('ua-scanners'), 10_000);
    // The time axis is measured once the history spans a few samples (a fresh page draws one point:
    // no time labels at all yet, which says nothing about their spacing).
    await waitFor(`${width}: the charts have time labels`, async () => page.evaluate(() => {
      const d = (globalThis as unknown as { portcullisDashboard?: { charts(): { axes: { _values?: unknown[] }[] }[] } }).portcullisDashboard;
      const charts = d ? d.charts() : [];
      return charts.length === 2 && charts.every((u) => (u.axes[0]._values ?? []).length >= 2);
    }), 15_000);
    await new Promise((r) => setTimeout(r, 300)); // the event burst is drawn on the next frame

    const problems = await layoutProblems(page);
    await page.screenshot({ path: join(outDir, `dashboard-layout-${width}.png`), fullPage: true });
    assert.deepEqual(problems, [], `${width} px: ${problems.join('\n')}`);

    // A banned client: "banned" and unban, no ban button.
    assert.equal(await page.locator('#ban-127_0_7_1').count(), 0, `${width}: no ban button for a client already banned`);
    assert.ok((await text('#top-clients')).includes('banned'), `${width}: shown as banned`);
    assert.equal(await page.locator('#topunban-127_0_7_1').count(), 1, `${width}: with an unban button`);
    assert.equal(await page.locator('#ban-127_0_7_2').count(), 1, `${width}: a client not banned keeps its ban button`);

    // Events: one page of at most 25 rows, newest first; "older" shows the next (older) page.
    const times = async (): Promise<string[]> => page.$$eval('#events tbody tr td:first-child', (tds) => tds.map((td) => td.textContent ?? ''));
    const first = await times();
    assert.ok(first.length > 0 && first.length <= 25, `${width}: ${first.length} rows on the first page`);
    assert.deepEqual([...first].sort().reverse(), first, `${width}: newest first`);
    assert.match(await text('#events-page'), /^page 1 of [2-9]/, `${width}: more than one page of events`);
    const height = await page.evaluate('document.documentElement.scrollHeight') as number;
    assert.ok(height < 3200, `${width}: the page is ${height} px tall (the events table must not grow it)`);

    await page.click('#events-older');
    const second = await times();
    assert.ok(second.length > 0 && second[0] <= first[first.length - 1], `${width}: page 2 holds older events`);
    assert.match(await text('#events-page'), /^page 2 of/);
    await page.click('#events-newer');
    assert.deepEqual((await times()).slice(0, 3), (await times()).slice(0, 3));

    if (width === 1440) {
      // A rule keeps its colour when the ranking changes: admin-office-only overtakes ua-scanners.
      const colours = (): Promise<Record<string, string>> => page.evaluate(`(() => {
        const out = {};
        for (const r of document.querySelectorAll('#chart-blocked .u-legend .u-series')) {
          const label = r.querySelector('.u-label');
          const marker = r.querySelector('.u-marker');
          if (label && label.textContent !== '' && marker) out[label.textContent] = getComputedStyle(marker).borderLeftColor;
        }
        return out;
      })()`) as Promise<Record<string, string>>;
      const before = await colours();
      assert.ok(before['ua-scanners'] && before['admin-office-only'], `legend before: ${JSON.stringify(before)}`);
      const topRule = async (): Promise<string> => (await page.textContent('#top-rules tbody tr:first-child td:first-child')) ?? '';
      assert.equal(await topRule(), 'ua-scanners');
      await traffic(40, '/backoffice/{i}', '127.0.7.5');
      await waitFor('admin-office-only to lead the ranking', async () => (await topRule()) === 'admin-office-only', 10_000);
      await waitFor('the chart to follow the new ranking', async () => Object.keys(await colours())[0] === 'admin-office-only', 5000).catch(() => null);
      const after = await colours();
      for (const rule of ['ua-scanners', 'admin-office-only']) assert.equal(after[rule], before[rule], `${rule} keeps its colour (${JSON.stringify(before)} → ${JSON.stringify(after)})`);
      const again = await layoutProblems(page);
      assert.deepEqual(again, [], `1440 px after the ranking change: ${again.join('\n')}`);
    }
    assert.deepEqual(errors, [], `${width}: no page errors`);
    await context.close();
  }
});
