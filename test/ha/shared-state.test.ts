// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// Why: when the address moves to the other node, the shop must look the same from there: a shopper
// keeps its server (same cookie secret, same server names), a ban or a rule mode an operator set on
// one node holds on the other at once, and a client's request count is one sum across both nodes.
// Two real edge processes share a private Redis.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { spawnEdge } from '../harness/process.js';
import { startOrigin } from '../harness/origin.js';
import { startPrivateRedis } from '../harness/redis.js';
import { admin, rulesDir, send, socEdgeYaml, waitFor } from '../soc/e2e-support.js';

const RULES = 'version 1\nrule "probe" { mode = log_only  when http.path == "/probe"  then deny(404) }\n';

test('a pair sharing Redis: sticky server, ban, rule mode and summed counters hold across the nodes', { timeout: 60_000 }, async (t) => {
  const redis = await startPrivateRedis();
  if (redis === null) { t.skip('skipped: no redis'); return; }
  const stops: (() => Promise<unknown>)[] = [];
  t.after(async () => { for (const s of stops.reverse()) await s(); await redis.stop(); });
  const o1 = await startOrigin('s1');
  const o2 = await startOrigin('s2');
  stops.push(() => o1.close(), () => o2.close());
  const { dir, rulesFile } = rulesDir('pc-ha-shared-', 'p.rules', RULES);
  stops.unshift(async () => rmSync(dir, { recursive: true, force: true }));
  const yaml = (node: string): string => socEdgeYaml({
    node, origins: [o1, o2], rulesFile,
    backendMore: 'sticky: { cookie: PCSRV, secret: "pair-secret-0123456789abcdef" }',
    limits: 'client: { requests: { limit: 10, window: 20s }, in_flight: 0 }',
    more: `shared: { redis: "${redis.url}", node_count: 2, sync_interval: 100ms }`,
  });
  const a = await spawnEdge(yaml('edge-a'));
  stops.push(() => a.stop());
  const b = await spawnEdge(yaml('edge-b'));
  stops.push(() => b.stop());

  // Sticky: the server a shopper got on A is the server B sends it to, every time.
  for (const from of ['127.0.6.1', '127.0.6.2', '127.0.6.3']) {
    const first = await send(`${a.url}/`, { from });
    const cookie = String(first.headers['set-cookie']).split(';')[0];
    const origin = first.headers['x-origin'];
    for (let i = 0; i < 3; i++) {
      const onB = await send(`${b.url}/`, { from, headers: { cookie } });
      assert.equal(onB.headers['x-origin'], origin, `${from} kept ${String(origin)} on B`);
      assert.equal(onB.headers['set-cookie'], undefined, 'no new cookie: B honoured it');
    }
  }

  // A ban made on A holds on B within 1 s.
  const t0 = Date.now();
  assert.equal((await admin(a.adminPort, 'POST', '/api/bans', { key: '127.0.6.9', ttl: 60, reason: 'pair' })).status, 201);
  await waitFor('ban on B', async () => (await send(`${b.url}/`, { from: '127.0.6.9' })).status === 403, 1000, 20);
  assert.ok(Date.now() - t0 <= 1000);

  // A rule mode set on A is in force on B within 1 s (and the reset too, through a reload on B).
  assert.equal((await send(`${b.url}/probe`, { from: '127.0.6.4' })).status, 200, 'log_only on B at first');
  const t1 = Date.now();
  assert.equal((await admin(a.adminPort, 'PUT', '/api/rules/probe/mode', { mode: 'enforce' })).status, 200);
  await waitFor('enforce on B', async () => (await send(`${b.url}/probe`, { from: '127.0.6.4' })).status === 404, 1000, 20);
  assert.ok(Date.now() - t1 <= 1000);
  assert.equal(((await admin(b.adminPort, 'GET', '/api/rules')).body as { id: string; mode: string }[]).find((r) => r.id === 'probe')?.mode, 'enforce');
  assert.equal((await admin(a.adminPort, 'DELETE', '/api/rules/probe/mode')).status, 200);
  await waitFor('file mode back on B', async () => (await send(`${b.url}/probe`, { from: '127.0.6.4' })).status === 200, 3000, 50);

  // Counters summed: 10 per 20 s for one client, spread over both nodes.
  const from = '127.0.6.5';
  let ok = 0;
  for (let i = 0; i < 5; i++) if ((await send(`${a.url}/`, { from })).status === 200) ok++;
  await new Promise((r) => setTimeout(r, 1000)); // sync rounds every 100 ms
  for (let i = 0; i < 5; i++) if ((await send(`${b.url}/`, { from })).status === 200) ok++;
  assert.equal(ok, 10);
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal((await send(`${b.url}/`, { from })).status, 429, 'the 11th request is refused: B counted what A served');
  assert.equal((await send(`${a.url}/`, { from })).status, 429, '…and so does A');
});
