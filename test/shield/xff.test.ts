// Why: if any client could name its own address in X-Forwarded-For, every per-client limit would be
// one header away from useless (a fresh forged address per request). Only a peer inside
// trusted_proxies may speak for the client; from it, the XFF client is the one that gets limited.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startOriginAndEdge } from '../harness/edge.js';
import { SourceClient } from './helpers.js';

const LIMIT = 5;

async function setup(t: import('node:test').TestContext) {
  return startOriginAndEdge(t, {
    origin: 'web',
    limits: `client: { requests: { limit: ${LIMIT}, window: 10s, status: 429 }, in_flight: 0 }`,
    more: 'trusted_proxies: [127.0.0.9/32]',
  });
}

test('X-Forwarded-For from an untrusted peer is ignored: the limit follows the socket address', async (t) => {
  const { o, px } = await setup(t);
  const c = new SourceClient('127.0.0.21');
  t.after(() => c.close());
  const statuses: number[] = [];
  // a forged, different XFF on every request: were it believed, none would ever be limited
  for (let i = 0; i < LIMIT + 5; i++) statuses.push((await c.get(`${px.url}/x`, { 'x-forwarded-for': `203.0.113.${i + 1}` })).status);
  assert.deepEqual(statuses, [...Array(LIMIT).fill(200), ...Array(5).fill(429)]);
  // the origin is told the real peer, not the forged chain
  assert.equal(o.seen[0].headers['x-forwarded-for'], '127.0.0.21');
  const rejected = px.events.filter((e) => e.type === 'rate_limit');
  assert.ok(rejected.length >= 5);
  assert.equal((rejected[0] as unknown as { client: { ip: string } }).client.ip, '127.0.0.21');
});

test('from a trusted proxy (127.0.0.9) the XFF client is limited, and other XFF clients behind it pass', async (t) => {
  const { o, px } = await setup(t);
  const proxy = new SourceClient('127.0.0.9');
  t.after(() => proxy.close());
  const a: number[] = [];
  for (let i = 0; i < LIMIT + 3; i++) a.push((await proxy.get(`${px.url}/a`, { 'x-forwarded-for': '198.51.100.7' })).status);
  assert.deepEqual(a, [...Array(LIMIT).fill(200), 429, 429, 429], 'client 198.51.100.7 limited at its own count');
  // another client behind the same proxy has its own budget (the proxy itself is not the client)
  const b: number[] = [];
  for (let i = 0; i < LIMIT; i++) b.push((await proxy.get(`${px.url}/b`, { 'x-forwarded-for': '198.51.100.8' })).status);
  assert.deepEqual(b, Array(LIMIT).fill(200));
  // walked from the right: a forged left-most entry is not the client
  const forged = await proxy.get(`${px.url}/c`, { 'x-forwarded-for': '10.9.9.9, 198.51.100.7' });
  assert.equal(forged.status, 429, 'the right-most untrusted hop (198.51.100.7) is the client');
  assert.equal(o.seen.find((s) => s.url === '/b')?.headers['x-forwarded-for'], '198.51.100.8, 127.0.0.9');
  const ev = px.events.find((e) => e.type === 'rate_limit') as { client: { ip: string } } | undefined;
  assert.equal(ev?.client.ip, '198.51.100.7');
});
