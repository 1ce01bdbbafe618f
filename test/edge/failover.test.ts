// Why: at peak a server dies mid-run. Shoppers must not see a failed GET: passive checks and
// retries on another server hide it at once, active checks confirm it down, and bring it back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep } from '../harness/wait.js';
import { startOrigin, startRawOrigin } from '../harness/origin.js';
import { CLIENT_LIMITS_OFF, edgeYaml, startOriginAndEdge, startTestEdge } from '../harness/edge.js';
import { httpClient } from '../harness/client.js';

test('a server killed mid-run is marked down (passive, then active) with no failed idempotent request', async (t) => {
  const web1 = await startOrigin('web1');
  const web2 = await startOrigin('web2');
  t.after(() => web1.close());
  const px = await startTestEdge(edgeYaml({
    limits: CLIENT_LIMITS_OFF,
    backendMore: 'health: { path: /health, interval: 200ms, timeout: 1s, rise: 2, fall: 2, passive_failures: 2 }\nretries: 1',
    servers: [{ name: 'web1', url: web1.url }, { name: 'web2', url: web2.url }],
  }));
  t.after(() => px.stop());
  const c = httpClient({ connections: 8 });
  t.after(() => c.close());
  const statuses = new Map<number, number>();
  let stop = false;
  let killed = false;
  const loop = async () => {
    while (!stop) {
      const r = await c.get(`${px.url}/item`);
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    }
  };
  const workers = Array.from({ length: 8 }, loop);
  await sleep(400);
  const port2 = web2.port;
  await web2.close(); // connections reset, port refuses
  killed = true;
  await sleep(1200);
  const pool = px.edge.pools.get('shop')!;
  const down = pool.servers().find((s) => s.name === 'web2');
  assert.equal(down?.state, 'down', 'web2 is down');
  const healthEvents = px.events.filter((e) => e.type === 'health' && e.server === 'web2');
  assert.ok(healthEvents.some((e) => e.to === 'down'), 'a health event says web2 went down');
  // bring it back on the same port: active checks (rise 2) mark it up again
  const back = await startOrigin('web2', undefined, port2);
  t.after(() => back.close());
  await sleep(1000);
  stop = true;
  await Promise.all(workers);
  assert.ok(killed);
  assert.deepEqual([...statuses.keys()], [200], `statuses seen: ${JSON.stringify([...statuses])}`);
  assert.equal(pool.servers().find((s) => s.name === 'web2')?.state, 'up');
  assert.ok(back.seen.some((r) => r.url === '/item'), 'traffic returned to web2');
});

test('connect failure is retried on another server; a POST whose body was sent is not', async (t) => {
  const good = await startOrigin('good');
  t.after(() => good.close());
  // An origin that reads the request and resets the connection without answering.
  const resetter = await startRawOrigin((_r, _n, s) => { s.resetAndDestroy(); }, { answerAt: 'head' });
  t.after(() => resetter.close());
  const resetPort = resetter.port;
  const refused = await startTestEdge(edgeYaml({
    limits: CLIENT_LIMITS_OFF,
    backend: 'refused',
    backendMore: 'retries: 1',
    servers: [{ name: 'dead', url: 'http://127.0.0.1:1' }, { name: 'good', url: good.url }],
  }));
  t.after(() => refused.stop());
  const resets = await startTestEdge(edgeYaml({
    limits: CLIENT_LIMITS_OFF,
    backend: 'resets',
    backendMore: 'balance: first\nretries: 1\nhealth: { path: /health, interval: 1m, passive_failures: 0 }',
    servers: [{ name: 'rst', url: `http://127.0.0.1:${resetPort}` }, { name: 'good', url: good.url }],
  }));
  t.after(() => resets.stop());
  const c = httpClient();
  t.after(() => c.close());
  for (let i = 0; i < 6; i++) assert.equal((await c.get(`${refused.url}/r`)).status, 200, 'refused connection retried on good');
  const before = good.seen.length;
  const g = await c.get(`${resets.url}/idempotent`);
  assert.equal(g.status, 200, 'GET reset after sending is retried on another server');
  assert.equal(good.seen.length, before + 1);
  const p = await c.send(`${resets.url}/order`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'pay 10 EUR' });
  assert.equal(p.status, 502, 'POST whose body was sent is never retried');
  assert.match(p.body, /Bad Gateway/);
  assert.equal(good.seen.filter((r) => r.url === '/order').length, 0, 'the POST never reached a second server');
});

test('an answer that is not HTTP: a GET is retried on another server, a POST whose body was sent gets 502', async (t) => {
  const good = await startOrigin('good');
  t.after(() => good.close());
  const junk = await startRawOrigin(() => 'SSH-2.0-OpenSSH_9.2\r\nthis is no HTTP answer\r\n\r\n');
  t.after(() => junk.close());
  const edge = await startTestEdge(edgeYaml({
    limits: CLIENT_LIMITS_OFF,
    backend: 'junk',
    backendMore: 'balance: first\nretries: 1\nhealth: { path: /health, interval: 1m, passive_failures: 0 }',
    servers: [{ name: 'junk', url: junk.url }, { name: 'good', url: good.url }],
  }));
  t.after(() => edge.stop());
  const c = httpClient();
  t.after(() => c.close());
  const g = await c.get(`${edge.url}/page`);
  assert.equal(g.status, 200, 'the GET answered with junk is retried on the good server');
  assert.equal(junk.requests.filter((r) => r.target === '/page').length, 1, 'it did reach the junk server first');
  assert.equal(good.seen.filter((r) => r.url === '/page').length, 1);
  const p = await c.send(`${edge.url}/order`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'pay 10 EUR' });
  assert.equal(p.status, 502, 'a POST is never sent twice');
  assert.equal(good.seen.filter((r) => r.url === '/order').length, 0);
});

test('a single server that resets a GET: the client gets 502 (what the server did), not a 503 "no server" from a retry with nowhere to go', async (t) => {
  const resetting = await startRawOrigin((_r, _i, sock) => { sock.resetAndDestroy(); });
  t.after(() => resetting.close());
  const url = resetting.url;
  const edge = await startTestEdge(edgeYaml({
    limits: CLIENT_LIMITS_OFF,
    backendMore: 'retries: 1\nhealth: { path: /health, interval: 1m, passive_failures: 0 }',
    servers: [{ name: 'only', url }],
  }));
  t.after(() => edge.stop());
  const c = httpClient();
  t.after(() => c.close());
  const r = await c.get(`${edge.url}/page`);
  assert.equal(r.status, 502);
  assert.equal(resetting.requests.filter((r) => r.target === '/page').length, 1, 'sent once: there is no other server to retry on');
  await edge.collector.expect({ type: 'error', term: 'SH', status: 502 });
});

test('upstream timeout gives 504 with a clear body', async (t) => {
  const { px } = await startOriginAndEdge(t, {
    origin: 'slow',
    handler: (_req, res) => { setTimeout(() => res.end('late'), 1500); },
    limits: CLIENT_LIMITS_OFF,
    backendMore: 'retries: 0\ntimeouts: { server: 300ms }',
  });
  const c = httpClient();
  t.after(() => c.close());
  const r = await c.get(`${px.url}/`);
  assert.equal(r.status, 504);
  assert.match(r.body, /Gateway Timeout/);
});
