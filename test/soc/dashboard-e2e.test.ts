// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// Why: the SOC acts from the dashboard of the REAL edge process. In a headless Chromium against
// `portcullis run`: it signs in with the token, its numbers move while real traffic flows through the
// proxy, its ban button refuses that client at the proxy, its drain button drains a server (and new
// traffic avoids it), and setting a rule to log_only lets the next matching request through while a
// log_only event appears. Screenshot: dashboard-e2e.png in the test output directory (test/harness/output.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { testOutputDir } from '../harness/output.js';
import { spawnEdge } from '../harness/process.js';
import { startOrigin } from '../harness/origin.js';
import { ADMIN_TOKEN, admin, readEvents, send, rulesDir, socEdgeYaml, waitFor } from './e2e-support.js';

const CHROMIUM = '/usr/bin/chromium';

test('dashboard (headless Chromium) against the real edge: numbers move, ban / drain / log_only buttons act on the proxy', { timeout: 60_000 }, async (t) => {
  if (!existsSync(CHROMIUM)) { t.skip(`skipped: chromium not installed at ${CHROMIUM} (apt-get install -y chromium)`); return; }
  const { rulesFile, eventLog } = rulesDir('pc-e2e-dash-', 'd.rules', 'version 1\nrule "php-probe" { when http.path ends_with ".php" then deny(404) }\nrule "scanners" { when lower(http.user_agent) contains "sqlmap" then deny(403) }\n');
  const o1 = await startOrigin('s1');
  const o2 = await startOrigin('s2');
  t.after(() => Promise.all([o1.close(), o2.close()]));
  const edge = await spawnEdge(socEdgeYaml({ node: 'edge-dash', origins: [o1, o2], rulesFile, eventLog }));
  t.after(() => edge.stop());
  const adminUrl = `http://127.0.0.1:${edge.adminPort}`;

  // Real traffic through the proxy while the page is open: browsing, probes, a scanner.
  let stop = false;
  const traffic = (async () => {
    let i = 0;
    while (!stop) {
      i++;
      await Promise.all([
        send(`${edge.url}/product/${i}`, { from: '127.0.6.1' }).catch(() => null),
        send(`${edge.url}/wp-login.php`, { from: '127.0.6.66' }).catch(() => null),
        i % 3 === 0 ? send(`${edge.url}/search`, { from: '127.0.6.77', headers: { 'user-agent': 'sqlmap/1.7' } }).catch(() => null) : null,
      ]);
      await new Promise((r) => setTimeout(r, 40));
    }
  })();
  t.after(async () => { stop = true; await traffic; });

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 1700 } });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('request', (r) => { if (!r.url().startsWith(adminUrl)) problems.push(`external request: ${r.url()}`); });
  const waitText = async (sel: string, pred: (text: string) => boolean, timeoutMs = 8000): Promise<string> => {
    const t0 = Date.now();
    for (;;) {
      const text = (await page.textContent(sel).catch(() => null)) ?? '';
      if (pred(text)) return text;
      if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting on ${sel}; text is ${JSON.stringify(text.slice(0, 300))}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const num = (s: string): number => Number(s.replace(/[^0-9.]/g, ''));

  await page.goto(`${adminUrl}/`);
  await page.fill('#token', ADMIN_TOKEN);
  await page.click('#login-button');
  await waitText('#node', (x) => x === 'edge-dash');
  await waitText('#feed-state', (x) => x === 'live');

  // Numbers move with the real traffic.
  const total1 = num(await waitText('#kpi-total', (x) => num(x) > 0));
  const total2 = num(await waitText('#kpi-total', (x) => num(x) > total1 + 10, 6000));
  assert.ok(total2 > total1);
  await waitText('#kpi-rps', (x) => num(x) > 0, 6000);
  await waitText('#top-rules', (x) => x.includes('php-probe') && x.includes('scanners'), 6000);
  await waitText('#top-clients', (x) => x.includes('127.0.6.66'), 6000);
  await waitText('#events', (x) => x.includes('php-probe') && x.includes('/wp-login.php'), 6000);
  await waitText('#servers', (x) => x.includes('s1') && x.includes('s2'));

  // Ban button of the top blocked client → that client is refused at the proxy (any path).
  assert.equal((await send(`${edge.url}/`, { from: '127.0.6.66' })).status, 200, 'not banned yet');
  await page.click('#ban-127_0_6_66');
  await waitText('#bans', (x) => x.includes('127.0.6.66'));
  await waitFor('ban in force at the proxy', async () => (await send(`${edge.url}/`, { from: '127.0.6.66' })).status === 403, 3000);
  assert.equal((await send(`${edge.url}/`, { from: '127.0.6.2' })).status, 200, 'other clients still pass');
  // Ban form: any key.
  await page.fill('#ban-key', '127.0.6.99');
  await page.click('#ban-add');
  await waitFor('form ban in force', async () => (await send(`${edge.url}/`, { from: '127.0.6.99' })).status === 403, 3000);

  // Drain button → GET /api/servers says drain, and new traffic avoids s2.
  await page.click('#drain-app-s2');
  await waitText('#servers', (x) => x.includes('drain'));
  const servers = (await admin(edge.adminPort, 'GET', '/api/servers')).body as { name: string; state: string }[];
  assert.equal(servers.find((s) => s.name === 's2')?.state, 'drain');
  const seen2 = o2.seen.length;
  for (let i = 0; i < 20; i++) assert.equal((await send(`${edge.url}/after-drain/${i}`, { from: '127.0.6.3' })).status, 200);
  assert.equal(o2.seen.length, seen2, 'a drained server takes no new requests');

  // Rule mode select → log_only: the next matching request passes, a log_only event appears.
  assert.equal((await send(`${edge.url}/search`, { from: '127.0.6.4', headers: { 'user-agent': 'sqlmap/1.7' } })).status, 403);
  await page.selectOption('#mode-scanners', 'log_only');
  await waitText('#rules', (x) => /scannerslog_only/.test(x.replace(/\s+/g, '')), 5000);
  assert.equal((await send(`${edge.url}/search`, { from: '127.0.6.4', headers: { 'user-agent': 'sqlmap/1.7' } })).status, 200, 'log_only lets it through');
  await waitFor('log_only event in the log', () => readEvents(eventLog).some((e) => e.type === 'log_only' && e.rule === 'scanners' && e.client.ip === '127.0.6.4'), 3000);
  await page.selectOption('#filter-type', 'log_only');
  await page.click('#event-filter button[type=submit]');
  await waitText('#events', (x) => x.includes('scanners') && x.includes('log_only'), 5000);
  await page.selectOption('#filter-type', '');
  await page.click('#event-filter button[type=submit]');
  // Every type again (the table shows the newest page: the banned prober's denies and the scanner's log_only).
  await waitText('#events', (x) => x.includes('deny') && x.includes('log_only'), 5000);

  // Audit trail of what the buttons did.
  const audits = readEvents(eventLog).filter((e) => e.type === 'admin').map((e) => `${e.what} ${e.target}`);
  for (const a of ['ban.add 127.0.6.66', 'ban.add 127.0.6.99', 'server.drain app/s2', 'rule.mode scanners']) assert.ok(audits.includes(a), `audit ${a} in ${audits.join(', ')}`);

  await new Promise((r) => setTimeout(r, 1200)); // one more poll so the charts show the latest second
  const outDir = testOutputDir();
  await page.screenshot({ path: join(outDir, 'dashboard-e2e.png'), fullPage: true });
  await page.screenshot({ path: join(outDir, 'dashboard-e2e-top.png'), clip: { x: 0, y: 0, width: 1400, height: 1000 } });
  assert.deepEqual(problems, [], 'no page errors, no console errors, no external requests');
});
