// @slow
// Why: servers come and go (reloads, the admin API, autoscaling scripts). The recorder's per-server
// cells must follow the running config — 10,000 add/remove cycles must not grow memory — while a
// removed server's past minutes stay in the history an operator reads (last week's server that was
// removed yesterday), until retention drops them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { loadConfigFile } from '../../edge/config/load.js';
import { runEdgeProcess } from '../../edge/main/process.js';
import { EventBus } from '../../edge/observe/events/bus.js';
import { startOrigin } from '../harness/origin.js';
import { freePort } from '../harness/ports.js';
import { Sim, SimPool } from './sim.js';

type Series = { kind: string; key: string; points: { requests: number }[] };
const requestsOf = (series: Series[], key: string): number =>
  series.filter((s) => s.kind === 'server' && s.key === key).reduce((n, s) => n + s.points.reduce((m, p) => m + p.requests, 0), 0);

test('10,000 add/remove cycles: live cells stay bounded, removed servers stay in the history', () => {
  const web1 = { name: 'web1', active: 1, maxconn: 10 };
  const pool = new SimPool('shop', [web1]);
  const sim = new Sim([pool]);
  const rec = sim.service.recorder;
  let maxCells = 0;
  for (let i = 0; i < 10_000; i++) {
    // The config in force this minute: web1 and tmp<i> (the previous tmp server is gone).
    pool.list.splice(1, pool.list.length - 1, { name: `tmp${i}`, active: 2, maxconn: 10 });
    sim.run(1, () => {
      rec.request('shop', `tmp${i}`, 200, 5, 0);
      rec.request('shop', 'web1', 200, 5, 0);
    });
    maxCells = Math.max(maxCells, rec.liveCells);
  }
  // shop itself, web1, the current tmp server (the one before it is pruned at the minute close).
  assert.ok(maxCells <= 3, `live cells stayed at most 3 (saw ${maxCells})`);
  // A backend that leaves the config goes too.
  pool.list.splice(0);
  sim.run(1, () => undefined);
  sim.pools.splice(0);
  sim.run(1, () => undefined);
  assert.equal(rec.liveCells, 0);

  const recent = sim.service.history('1h', { kind: 'server' });
  assert.equal(requestsOf(recent.series as Series[], 'shop/tmp9999'), 1, 'the last removed server, minute by minute');
  assert.equal(requestsOf(recent.series as Series[], 'shop/tmp9950'), 1);
  const month = sim.service.history('30d', { kind: 'server' });
  assert.equal(requestsOf(month.series as Series[], 'shop/tmp0'), 1, 'a server removed a week ago, from the hourly tier');
  assert.equal(requestsOf(month.series as Series[], 'shop/tmp5000'), 1);
});

test('servers removed by config reloads: live cells bounded, their minutes in GET /api/history', async (t) => {
  const o = await startOrigin('o1');
  t.after(() => o.close());
  const dir = mkdtempSync(join(tmpdir(), 'pc-history-prune-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const adminPort = await freePort();
  const token = 'test-admin-token-prune-0123456789';
  const file = join(dir, 'edge.yaml');
  const write = (server: string): void => writeFileSync(file, [
    `listen: [{ address: "127.0.0.1:${port}" }]`,
    `admin: { address: "127.0.0.1:${adminPort}", token: "${token}" }`,
    'access_log: { path: "off" }', 'events: { log: "off" }',
    'limits: { client: { requests: { limit: 0 }, in_flight: 0 }, connection: { in_process: off } }',
    'backends:', '  shop:', '    servers:', `      - { name: ${server}, url: "${o.url}", maxconn: 50 }`,
    'history: { dir: off }', '',
  ].join('\n'));
  write('gone0');
  const proc = await runEdgeProcess(loadConfigFile(file), { handleSignals: false, bus: new EventBus({ node: 'prune-node' }) });
  t.after(() => proc.stop());
  const admin = async (method: 'GET' | 'POST', path: string): Promise<{ status: number; text: string }> => {
    const r = await request(`http://127.0.0.1:${adminPort}${path}`, { method, headers: { authorization: `Bearer ${token}` } });
    return { status: r.statusCode, text: await r.body.text() };
  };
  const N = 25;
  let maxCells = 0;
  for (let i = 0; i < N; i++) {
    if (i > 0) {
      write(`gone${i}`);
      const r = await admin('POST', '/api/config/reload');
      assert.equal(r.status, 200, r.text);
    }
    for (let k = 0; k < 2; k++) {
      const r = await request(`http://127.0.0.1:${port}/x/${i}/${k}`);
      await r.body.text();
      assert.equal(r.statusCode, 200);
    }
    proc.history!.sample();
    // Each answer closes what the open minute holds so far, then prunes.
    const h = await admin('GET', '/api/history?range=1h&kind=server');
    assert.equal(h.status, 200, h.text);
    maxCells = Math.max(maxCells, proc.history!.recorder.liveCells);
  }
  // shop itself and the server in force (the previous one is pruned once its minute is recorded).
  assert.ok(maxCells <= 2, `live cells stayed at most 2 over ${N} reloads (saw ${maxCells})`);
  const body = JSON.parse((await admin('GET', '/api/history?range=1h&kind=server')).text) as { series: Series[] };
  for (let i = 0; i < N; i++) assert.equal(requestsOf(body.series, `shop/gone${i}`), 2, `shop/gone${i} still in the history`);
});
