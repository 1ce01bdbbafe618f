// Why: the SOC acts from the dashboard. In a real headless Chromium it must log in with the
// token, show numbers that move while traffic flows, show live events, and its buttons must reach
// the edge: ban a client, drain a server, flip a rule's mode. A screenshot goes to the test output directory (test/harness/output.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { testOutputDir } from '../harness/output.js';
import { EventBus } from '../../edge/observe/events/bus.js';
import { blockEvent, eventClient, eventRequest, healthEvent } from '../../edge/observe/events/build.js';
import { Metrics } from '../../edge/observe/metrics.js';
import { startAdminServer } from '../../edge/admin/server.js';
import { TOKEN, fakeTargets, waitFor } from './fakes.js';

const CHROMIUM = '/usr/bin/chromium';

test('dashboard in headless Chromium: live numbers, events, ban / drain / rule-mode buttons', async (t) => {
  if (!existsSync(CHROMIUM)) { t.skip(`skipped: chromium not installed at ${CHROMIUM} (apt-get install -y chromium)`); return; }
  const bus = new EventBus({ node: 'dash-node' });
  const metrics = new Metrics();
  const f = fakeTargets(bus);
  f.tables.data.get('clients')?.set('203.0.113.50', { http_req_rate: 300 });
  const admin = await startAdminServer({ address: '127.0.0.1:0', token: TOKEN }, f.targets, bus, metrics);
  t.after(() => admin.close());

  // Synthetic traffic: requests through the metrics, blocks through the bus, every 50 ms.
  const attackers = [eventClient('203.0.113.50', null, 'NL', 64496), eventClient('198.51.100.23', null, 'BR', 64511)];
  let n = 0;
  const traffic = setInterval(() => {
    for (let i = 0; i < 20; i++) metrics.request('app', i % 2 ? 's1' : 's2', i % 7 === 0 ? 404 : 200, 0.002 + i / 1000);
    for (let i = 0; i < 3; i++) metrics.request(null, null, 403, 0.0001);
    metrics.protocol(n % 4 === 0 ? '1.1' : '2');
    if (n % 10 === 0) metrics.http2Defence('rapid_reset');
    const c = attackers[n++ % 2];
    bus.emit(blockEvent('deny', { client: c, request: eventRequest('GET', 'shop.example', '/wp-login.php', 'curl/8', `r${n}`), rule: n % 3 ? 'php-probe' : 'scraper', status: 403, term: 'PR', counters: { http_req_rate: 100 + n } }));
    metrics.ruleHit('php-probe', 'enforce', 'deny');
  }, 50);
  t.after(() => clearInterval(traffic));

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 1500 } });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('request', (r) => { if (!r.url().startsWith(admin.url)) problems.push(`external request: ${r.url()}`); });

  /** Poll an element's text (no page-side eval: the dashboard's CSP forbids it). */
  const waitText = async (sel: string, pred: (text: string) => boolean, timeoutMs = 8000): Promise<string> => {
    const t0 = Date.now();
    for (;;) {
      const text = (await page.textContent(sel).catch(() => null)) ?? '';
      if (pred(text)) return text;
      if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting on ${sel}; text is ${JSON.stringify(text.slice(0, 200))}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  await page.goto(admin.url + '/');
  // A wrong token is refused on the login form.
  await page.fill('#token', 'definitely-not-the-token');
  await page.click('#login-button');
  await waitText('#login-error', (x) => x !== '');
  assert.equal(await page.textContent('#login-error'), 'Wrong token');
  // The browser logs the refused attempt's 401 as a console error: expected, not a problem.
  const refused = problems.filter((p) => /401/.test(p));
  assert.equal(refused.length, 1, `one 401 for the wrong token: ${problems.join(' | ')}`);
  problems.length = 0;

  await page.fill('#token', TOKEN);
  await page.click('#login-button');
  await page.waitForSelector('#app:not([hidden])');
  assert.equal(await page.evaluate(() => (globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }).sessionStorage.getItem('portcullisToken')), TOKEN);

  const num = async (sel: string): Promise<number> => Number(((await page.textContent(sel)) ?? '').replace(/[^0-9.]/g, ''));
  await waitText('#kpi-total', (x) => Number(x.replace(/\D/g, '')) > 0);
  const total1 = await num('#kpi-total');
  await waitText('#kpi-rps', (x) => Number(x.replace(/\D/g, '')) > 0);
  // Requests by protocol and the HTTP/2 defences that fired (edge/http2/).
  await waitText('#protocols tbody', (x) => /HTTP\/2\d/.test(x) && /HTTP\/1\.1\d/.test(x) && /%/.test(x));
  await waitText('#h2-defences tbody', (x) => /rapid_reset\d/.test(x));
  await new Promise((r) => setTimeout(r, 1500));
  const total2 = await num('#kpi-total');
  assert.ok(total2 > total1, `requests total moves: ${total1} → ${total2}`);
  assert.ok(await num('#kpi-rps') > 0, 'request rate shown');
  assert.equal(await page.textContent('#node'), 'dash-node');

  // Live events arrive over the WebSocket feed.
  await page.locator('#events tbody tr').nth(2).waitFor();
  const firstRow = await page.textContent('#events tbody tr');
  assert.match(firstRow ?? '', /deny/);
  bus.emit(healthEvent({ backend: 'app', server: 's2', from: 'up', to: 'down', check: { status: 'L4CON', code: null, durationMs: 3 } }));
  await waitText('#events tbody', (x) => /app\/s2 up → down/.test(x));

  // Top blocked clients (after the sampler closed a second), with a ban button.
  await page.waitForSelector('#ban-203_0_113_50', { timeout: 5000 });
  assert.match((await page.textContent('#top-clients')) ?? '', /203\.0\.113\.50/);
  assert.match((await page.textContent('#top-countries')) ?? '', /NL/);
  await page.click('#ban-203_0_113_50');
  await waitFor('ban reached the bans target', () => f.bans.isBanned('203.0.113.50'), 5000);
  assert.equal(f.bans.map.get('203.0.113.50')?.source, 'admin');
  await page.waitForSelector('#unban-203_0_113_50');

  // Unban from the bans table.
  await page.click('#unban-203_0_113_50');
  await waitFor('unban reached the bans target', () => !f.bans.isBanned('203.0.113.50'), 5000);

  // Ban form.
  await page.fill('#ban-key', '192.0.2.200');
  await page.fill('#ban-ttl', '30m');
  await page.click('#ban-add');
  await waitFor('ban form', () => f.bans.isBanned('192.0.2.200'), 5000);

  // Drain a server, then make it ready again.
  await page.click('#drain-app-s1');
  await waitFor('drain reached the pool', () => f.pool.servers()[0].state === 'drain', 5000);
  await waitText('#servers tbody tr', (x) => /drain/.test(x));

  // Rule mode select.
  await page.selectOption('#mode-php-probe', 'enforce');
  await waitFor('rule mode reached the rules', () => f.rules.mode('php-probe') === 'enforce', 5000);

  // Event filter (server-side): only health events from now on.
  await page.selectOption('#filter-type', 'health');
  await page.click('#event-filter button[type=submit]');
  await new Promise((r) => setTimeout(r, 300));
  bus.emit(healthEvent({ backend: 'app', server: 's1', from: 'drain', to: 'up', check: null }));
  await waitText('#events tbody', (x) => /app\/s1 drain → up/.test(x));
  const types = await page.$$eval('#events tbody tr td:nth-child(3)', (tds) => tds.map((td) => td.textContent));
  assert.ok(types.length > 0 && types.every((x) => x === 'health'), `only health rows after filtering: ${types.join(',')}`);

  const outDir = testOutputDir();
  await page.screenshot({ path: join(outDir, 'dashboard.png'), fullPage: true });
  assert.ok(existsSync(join(outDir, 'dashboard.png')));
  assert.deepEqual(problems, [], `no page errors, no console errors (CSP), no external requests: ${problems.join(' | ')}`);
});
