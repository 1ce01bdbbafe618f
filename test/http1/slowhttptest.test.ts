// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// Why: slow headers (slowloris), slow body (R-U-Dead-Yet) and slow read are the attacks a new
// operator runs first, with the real tool (Debian's slowhttptest). Each must be cut by its own
// configured deadline — client_head, the body rate, client_write_stall — while a legitimate client
// keeps being served. slowhttptest's own report does not notice connections we reset (slow read),
// so the test counts the server's established connections with `ss` and reads the edge's events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startOrigin } from '../harness/origin.js';
import { spawnEdge } from '../harness/process.js';
import { CLIENT_LIMITS_OFF, edgeYaml } from '../harness/edge.js';
import { SourceClient, legitLoop, sleep } from '../shield/helpers.js';

const have = (cmd: string, arg: string): boolean => spawnSync(cmd, [arg], { stdio: 'ignore' }).error === undefined;

/** Established connections whose local port is `port` (the edge's side). */
function established(port: number): number {
  const r = spawnSync('ss', ['-Htn', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.trim() !== '').length;
}

function run(args: string[]): Promise<void> {
  return new Promise((resolve) => {
    const c = spawn('slowhttptest', args, { stdio: 'ignore' });
    c.on('exit', () => resolve());
    c.on('error', () => resolve());
  });
}

test('slowhttptest slow headers, slow body and slow read: each cut by its deadline, a legitimate client ≥ 99 % served', async (t) => {
  if (!have('slowhttptest', '-h') || !have('ss', '-V')) { t.skip('skipped: slowhttptest (Debian package slowhttptest) or ss (iproute2) missing'); return; }
  const big = Buffer.alloc(2 * 1024 * 1024, 97);
  // The handler runs once the request body was read.
  const origin = await startOrigin('web', (req, res) => { if (req.url === '/big') { res.setHeader('content-length', big.length); res.end(big); } else res.end('ok\n'); });
  t.after(() => origin.close());
  const dir = mkdtempSync(join(tmpdir(), 'pc-slow-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const events = join(dir, 'events.jsonl');
  const px = await spawnEdge(edgeYaml({
    eventLog: events,
    limits: CLIENT_LIMITS_OFF,
    servers: [{ name: 'web', url: origin.url }],
    more: 'timeouts: { client_head: 2s, client_body_first_byte: 2s, client_body_grace: 1s, client_body_min_rate: 1kb, client_write_stall: 2s }',
  }));
  t.after(() => px.stop());
  const legit = new SourceClient('127.0.0.93', 2);
  t.after(() => legit.close());
  const loop = legitLoop(legit, `${px.url}/shop`, 20);
  await sleep(200);

  const url = `${px.url}/`;
  const attacks = Promise.all([
    run(['-H', '-c', '25', '-r', '25', '-i', '1', '-l', '7', '-u', url]),
    run(['-B', '-c', '25', '-r', '25', '-i', '1', '-s', '100000', '-l', '7', '-u', url]),
    run(['-X', '-c', '25', '-r', '25', '-l', '7', '-k', '3', '-n', '1', '-z', '32', '-w', '16', '-y', '64', '-u', `${px.url}/big`]),
  ]);
  // All 75 attack connections open at once; each deadline is 2 s (+ a grace of 1 s for the body
  // rate, + the kernel buffers a slow reader must fill first): within 8 s of the peak (a loaded CI machine) only the
  // legitimate client's connections (at most 2) may remain.
  let peak = 0, peakAt = 0, clearedAt = -1;
  const t0 = performance.now();
  while (performance.now() - t0 < 14_000) {
    const n = established(px.port);
    if (n > peak) { peak = n; peakAt = performance.now(); }
    if (peak >= 60 && n <= 2) { clearedAt = performance.now(); break; }
    await sleep(100);
  }
  await attacks;
  const samples = (await loop.stop(), loop.samples);
  const clearMs = clearedAt < 0 ? -1 : clearedAt - peakAt;
  t.diagnostic(`peak ${peak} established; only the legit client left ${clearMs.toFixed(0)} ms after the peak; legit ${samples.length} requests`);
  assert.ok(peak >= 60, `the attacks opened their connections (peak ${peak})`);
  assert.ok(clearedAt > 0 && clearMs <= 8000, `attack connections still established ${clearMs < 0 ? 'after 14 s' : `${clearMs.toFixed(0)} ms after the peak`}`);
  const ok = samples.filter((s) => s.status === 200).length;
  assert.ok(ok / samples.length >= 0.99, `legit ${ok} of ${samples.length} ok`);
  assert.equal(await px.stop(), 0);
  const reasons = new Map<string, number>();
  for (const line of readFileSync(events, 'utf8').split('\n')) {
    if (line === '') continue;
    const e = JSON.parse(line) as { type: string; reason: string | null };
    if (e.type === 'deadline') reasons.set(e.reason ?? '', (reasons.get(e.reason ?? '') ?? 0) + 1);
  }
  t.diagnostic(`deadline events: ${JSON.stringify([...reasons])}`);
  assert.ok((reasons.get('client_head') ?? 0) >= 20, 'slow headers cut by client_head');
  assert.ok((reasons.get('client_body_min_rate') ?? 0) + (reasons.get('client_body_first_byte') ?? 0) >= 20, 'slow body cut by the body deadlines');
  assert.ok((reasons.get('client_write_stall') ?? 0) >= 20, 'slow read cut by client_write_stall');
});
