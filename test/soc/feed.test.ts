// Why: a SOC watching node A must see what node B blocks. Events go through one shared Redis
// Stream; each node reads it back into its WebSocket feed. Filters run on the server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { Redis } from 'ioredis';
import { EventBus } from '../../edge/observe/events/bus.js';
import type { EdgeEvent } from '../../edge/observe/events/bus.js';
import { blockEvent, eventClient, eventRequest, healthEvent } from '../../edge/observe/events/build.js';
import { startEventSinks } from '../../edge/observe/events/index.js';
import { Metrics } from '../../edge/observe/metrics.js';
import { startAdminServer } from '../../edge/admin/server.js';
import { testRedis } from '../harness/redis.js';
import { TOKEN, fakeTargets, waitFor } from './fakes.js';

function openFeed(url: string, query = ''): Promise<{ ws: WebSocket; got: EdgeEvent[] }> {
  return new Promise((resolve, reject) => {
    const got: EdgeEvent[] = [];
    const ws = new WebSocket(`${url.replace('http', 'ws')}/api/events/ws${query}`, ['portcullis', `token.${TOKEN}`]);
    ws.on('message', (d) => {
      const m = JSON.parse(String(d)) as EdgeEvent & { kind?: string };
      if (m.kind === 'hello') resolve({ ws, got });
      else if (m.kind === undefined) got.push(m);
    });
    ws.on('error', reject);
  });
}

const deny = (ip: string, rule: string): EdgeEvent => blockEvent('deny', {
  client: eventClient(ip, null, 'DE', 3320), request: eventRequest('GET', 'shop.example', '/x', 'ua', `r-${ip}`), rule, status: 403, term: 'PR',
});

test('an event emitted on node B appears in node A\'s WebSocket feed (one shared Redis)', async (t) => {
  const redis = await testRedis();
  if (redis === null) { t.skip('skipped: no redis'); return; }
  const stream = `pc-test-events-${process.pid}-${Date.now()}`;
  const r = new Redis(redis.url);
  // One hook, in this order (hooks run in the order added): `r` would wait forever on a stopped private server.
  t.after(async () => { await r.del(stream); await r.quit(); await redis.stop(); });

  const nodes: { name: string; bus: EventBus; sinks: Awaited<ReturnType<typeof startEventSinks>>; admin: Awaited<ReturnType<typeof startAdminServer>> }[] = [];
  for (const name of ['node-a', 'node-b']) {
    const bus = new EventBus({ node: name });
    const metrics = new Metrics();
    const sinks = await startEventSinks(bus, { log: null, redis: { url: redis.url, stream, maxLen: 1000 } }, metrics);
    const admin = await startAdminServer({ address: '127.0.0.1:0', token: TOKEN }, fakeTargets(bus).targets, bus, metrics);
    nodes.push({ name, bus, sinks, admin });
  }
  t.after(async () => { for (const n of nodes) { await n.admin.close(); await n.sinks.stop(); } });
  const [a, b] = nodes;
  await Promise.all(nodes.map((n) => n.sinks.redis?.readerReady));

  const all = await openFeed(a.admin.url);
  const onlyHealth = await openFeed(a.admin.url, '?type=health');
  const onlyClient = await openFeed(a.admin.url, '?client=198.51.100.9');
  t.after(() => { for (const f of [all, onlyHealth, onlyClient]) f.ws.close(); });

  b.bus.emit(deny('198.51.100.9', 'scraper'));
  b.bus.emit(healthEvent({ backend: 'app', server: 's2', from: 'up', to: 'down', check: { status: 'L4CON', code: null, durationMs: 3 } }));
  b.bus.emit(deny('192.0.2.1', 'php-probe'));
  a.bus.emit(deny('192.0.2.2', 'local-rule'));

  await waitFor('four events in node A feed', () => all.got.length >= 4, 5000);
  const fromB = all.got.filter((e) => e.node === 'node-b');
  assert.equal(fromB.length, 3);
  assert.deepEqual(fromB.map((e) => e.type), ['deny', 'health', 'deny']);
  assert.equal(fromB[0].rule, 'scraper');
  // Local events are delivered once (not again through the stream).
  await new Promise((res) => setTimeout(res, 300));
  assert.equal(all.got.filter((e) => e.node === 'node-a').length, 1);

  await waitFor('filtered feeds', () => onlyHealth.got.length >= 1 && onlyClient.got.length >= 1, 3000);
  assert.deepEqual(onlyHealth.got.map((e) => e.type), ['health']);
  assert.deepEqual(onlyClient.got.map((e) => (e.client as { ip: string }).ip), ['198.51.100.9']);

  // The stream holds every node's events for the SOC, bounded by MAXLEN.
  const len = await r.xlen(stream);
  assert.equal(len, 4);
  const entries = await r.xrange(stream, '-', '+');
  const nodesInStream = new Set(entries.map(([, f]) => f[f.indexOf('n') + 1]));
  assert.deepEqual([...nodesInStream].sort(), ['node-a', 'node-b']);

  // A filter can be replaced over the socket: now only rule php-probe.
  all.ws.send(JSON.stringify({ filter: { rule: 'php-probe' } }));
  await new Promise((res) => setTimeout(res, 100));
  const before = all.got.length;
  b.bus.emit(deny('192.0.2.3', 'scraper'));
  b.bus.emit(deny('192.0.2.4', 'php-probe'));
  await waitFor('filtered event', () => all.got.length > before, 3000);
  await new Promise((res) => setTimeout(res, 300));
  assert.deepEqual(all.got.slice(before).map((e) => e.rule), ['php-probe']);
});

test('without Redis the feed still shows local events, and /api/events/recent keeps the latest', async (t) => {
  const bus = new EventBus({ node: 'solo' });
  const admin = await startAdminServer({ address: '127.0.0.1:0', token: TOKEN }, fakeTargets(bus).targets, bus, new Metrics());
  t.after(() => admin.close());
  const f = await openFeed(admin.url, '?type=deny&rule=r1');
  t.after(() => f.ws.close());
  bus.emit(deny('192.0.2.10', 'r1'));
  bus.emit(deny('192.0.2.11', 'r2'));
  await waitFor('f.got.length === 1', () => f.got.length === 1);
  const res = await fetch(`${admin.url}/api/events/recent?rule=r2`, { headers: { authorization: `Bearer ${TOKEN}` } });
  const recent = await res.json() as EdgeEvent[];
  assert.deepEqual(recent.map((e) => (e.client as { ip: string }).ip), ['192.0.2.11']);
});
