// Why: the simplest proxied GET must reach the origin with X-Forwarded-* set and come back intact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { httpClient, rawRequest } from '../harness/client.js';
import { startOriginAndEdge } from '../harness/edge.js';

test('GET is proxied with X-Forwarded-* and the origin body', async (t) => {
  const { o, px } = await startOriginAndEdge(t);
  const r = await rawRequest(px.port, 'GET /hello?x=1 HTTP/1.1\r\nHost: shop.test\r\nX-Test: a\r\nConnection: x-drop\r\nX-Drop: gone\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n\r\n', 500);
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'hello from web1\n');
  assert.equal(r.headers['x-origin'], 'web1');
  assert.equal(o.seen.length, 1);
  const seen = o.seen[0];
  assert.equal(seen.url, '/hello?x=1');
  assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(seen.headers['x-forwarded-proto'], 'http');
  assert.equal(seen.headers['x-test'], 'a');
  assert.equal(seen.headers['x-drop'], undefined);
  assert.equal(seen.headers['keep-alive'], undefined);
  assert.equal(seen.headers.te, undefined);
  assert.equal(seen.headers['x-forwarded-host'], 'shop.test');
  assert.match(String(seen.headers['x-request-id']), /^[0-9a-f]{8}-[0-9a-z]+$/);
});

test('keep-alive client gets many responses on one connection', async (t) => {
  const { o, px } = await startOriginAndEdge(t);
  const c = httpClient({ connections: 1 });
  t.after(() => c.close());
  for (let i = 0; i < 20; i++) {
    const r = await c.get(`${px.url}/n${i}`);
    assert.equal(r.status, 200);
  }
  assert.equal(o.seen.length, 20);
});

test('request ids are the node prefix and a base-36 sequence, consecutive across a block of 36', async (t) => {
  const { o, px } = await startOriginAndEdge(t);
  const c = httpClient({ connections: 1 });
  t.after(() => c.close());
  for (let i = 0; i < 80; i++) assert.equal((await c.get(`${px.url}/id${i}`)).status, 200);
  const ids = o.seen.map((s) => String(s.headers['x-request-id']));
  const prefix = ids[0].slice(0, ids[0].indexOf('-'));
  const first = parseInt(ids[0].slice(prefix.length + 1), 36);
  assert.deepEqual(ids, ids.map((_, i) => `${prefix}-${(first + i).toString(36)}`));
});
