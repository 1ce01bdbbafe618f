// Why: operators rely on the weights they configure, on `source` keeping most clients on their
// server when the farm changes, on backup servers (the second site) taking over only when every
// primary is down, and on the sticky cookie holding without letting a client pick a server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startOrigin, type Origin } from '../harness/origin.js';
import { CLIENT_LIMITS_OFF, edgeYaml, startTestEdge, type TestEdge, type TestServer } from '../harness/edge.js';
import { httpClient } from '../harness/client.js';

async function origins(t: { after(fn: () => unknown): void }, names: string[]): Promise<Origin[]> {
  const list = await Promise.all(names.map((n) => startOrigin(n)));
  t.after(() => Promise.all(list.map((o) => o.close())));
  return list;
}

function serversOf(list: Origin[], more: (i: number) => string | undefined = () => undefined): TestServer[] {
  return list.map((o, i) => ({ name: ['web1', 'web2', 'web3', 'web4', 'web5', 'dr1'][i], url: o.url, more: more(i) }));
}

async function edge(t: { after(fn: () => unknown): void }, servers: TestServer[], backendMore?: string): Promise<TestEdge> {
  const px = await startTestEdge(edgeYaml({ limits: CLIENT_LIMITS_OFF, backendMore, servers }));
  t.after(() => px.stop());
  return px;
}

test('roundrobin: weighted distribution within 5 % over 10,000 requests', async (t) => {
  const os = await origins(t, ['web1', 'web2', 'web3']);
  const weights = [1, 3, 6];
  const px = await edge(t, serversOf(os, (i) => `weight: ${weights[i]}`), 'balance: roundrobin');
  const c = httpClient({ connections: 32 });
  t.after(() => c.close());
  const N = 10_000;
  let next = 0;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next < N) { next++; const r = await c.get(`${px.url}/p`); assert.equal(r.status, 200); }
  }));
  const total = os.reduce((n, o) => n + o.seen.length, 0);
  assert.equal(total, N);
  os.forEach((o, i) => {
    const expected = N * weights[i] / 10;
    assert.ok(Math.abs(o.seen.length - expected) <= expected * 0.05, `${o.url}: ${o.seen.length} vs ${expected}`);
  });
});

test('source: consistent hash keeps clients, removing 1 of 5 servers moves about 1/5', async (t) => {
  const os = await origins(t, ['web1', 'web2', 'web3', 'web4', 'web5']);
  const px = await edge(t, serversOf(os), 'balance: source');
  const clients = Array.from({ length: 150 }, (_, i) => `127.0.${1 + (i >> 6)}.${2 + (i & 63)}`);
  async function mapping(): Promise<Map<string, string>> {
    const m = new Map<string, string>();
    await Promise.all(clients.map(async (addr) => {
      const c = httpClient({ localAddress: addr, connections: 1 });
      const r = await c.get(`${px.url}/`);
      await c.close();
      m.set(addr, String(r.headers['x-origin']));
    }));
    return m;
  }
  const before = await mapping();
  const again = await mapping();
  assert.deepEqual(Object.fromEntries(again), Object.fromEntries(before), 'same client, same server');
  const pool = px.edge.pools.get('shop');
  assert.ok(pool?.setState('web3', 'maint'));
  const after = await mapping();
  let moved = 0;
  for (const [addr, srv] of before) {
    if (srv === 'web3') { assert.notEqual(after.get(addr), 'web3'); continue; }
    if (after.get(addr) !== srv) moved++;
  }
  const onWeb3 = [...before.values()].filter((s) => s === 'web3').length;
  assert.ok(onWeb3 > 0 && onWeb3 < clients.length * 0.4, `web3 had ${onWeb3}`);
  assert.equal(moved, 0, 'clients of the other servers stay where they were');
});

test('backup servers take traffic only while every primary is down', async (t) => {
  const os = await origins(t, ['web1', 'web2', 'dr1']);
  const px = await edge(t, [{ name: 'web1', url: os[0].url }, { name: 'web2', url: os[1].url }, { name: 'dr1', url: os[2].url, more: 'backup: true' }]);
  const c = httpClient();
  t.after(() => c.close());
  for (let i = 0; i < 20; i++) assert.notEqual((await c.get(`${px.url}/`)).headers['x-origin'], 'dr1');
  const pool = px.edge.pools.get('shop')!;
  pool.setState('web1', 'maint');
  for (let i = 0; i < 10; i++) assert.equal((await c.get(`${px.url}/`)).headers['x-origin'], 'web2');
  pool.setState('web2', 'maint');
  for (let i = 0; i < 10; i++) assert.equal((await c.get(`${px.url}/`)).headers['x-origin'], 'dr1');
  pool.setState('web1', 'up');
  // back on a primary as soon as one is usable again
  for (let i = 0; i < 10; i++) assert.equal((await c.get(`${px.url}/`)).headers['x-origin'], 'web1');
});

test('sticky cookie: pins the client, survives a forged value, moves when the server drains', async (t) => {
  const os = await origins(t, ['web1', 'web2', 'web3']);
  const px = await edge(t, serversOf(os), 'sticky: { cookie: PCSRV, secret: "0123456789abcdef0123456789abcdef" }');
  const c = httpClient();
  t.after(() => c.close());
  const first = await c.get(`${px.url}/`);
  const setCookie = String(first.headers['set-cookie']);
  assert.match(setCookie, /^PCSRV=[^;]+; Path=\/; HttpOnly; SameSite=Lax/);
  const value = setCookie.split(';')[0].split('=')[1];
  for (const o of os) { assert.ok(!value.includes(String(o.port)) && !value.includes('web'), 'cookie is opaque'); }
  const pinned = String(first.headers['x-origin']);
  for (let i = 0; i < 15; i++) {
    const r = await c.get(`${px.url}/`, { cookie: `a=b; PCSRV=${value}` });
    assert.equal(r.headers['x-origin'], pinned);
    assert.equal(r.headers['set-cookie'], undefined, 'a valid cookie is not rewritten');
  }
  // A forged cookie (one character flipped) is not honoured: the client is redispatched and gets a fresh cookie.
  const forged = value.slice(0, -1) + (value.endsWith('A') ? 'B' : 'A');
  const f = await c.get(`${px.url}/`, { cookie: `PCSRV=${forged}` });
  assert.equal(f.status, 200);
  assert.match(String(f.headers['set-cookie']), /^PCSRV=/);
  assert.notEqual(String(f.headers['set-cookie']).split(';')[0], `PCSRV=${forged}`);
  // The pinned server goes into maintenance: redispatch and rewrite the cookie.
  px.edge.pools.get('shop')!.setState(pinned, 'maint');
  const moved = await c.get(`${px.url}/`, { cookie: `PCSRV=${value}` });
  assert.notEqual(moved.headers['x-origin'], pinned);
  assert.match(String(moved.headers['set-cookie']), /^PCSRV=/);
});
