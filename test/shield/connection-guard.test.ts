// Why: the in-process connection guard is what stops one address from holding or churning the
// edge's connections before a byte is read (issue 12 item 6). Its limits must bite exactly at the
// configured numbers of `limits.connection` (the same section the nftables layer renders), release
// on close, skip exempt CIDRs and trusted proxies, group IPv6 by prefix like the request guard, and
// every refusal must be visible: a schema-valid `guard` event, a metric by reason, the counts in the
// `client` stick table that the admin API shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { Ajv } from 'ajv';
import { ClientGuard, guardConfigFrom } from '../../edge/shield/guard.js';
import {
  ConnectionGuard, connectionGuardConfig, connectionGuardConfigOf, CONN_ADMIT, CONN_CUR, CONN_GLOBAL, CONN_RATE,
} from '../../edge/shield/connection-guard.js';
import { normalizeConnectionLimits } from '../../edge/shield/firewall/config.js';
import { EventBus, type EdgeEvent } from '../../edge/observe/events/bus.js';
import { securityEventSchema } from '../../edge/observe/events/schema.js';
import { Metrics } from '../../edge/observe/metrics.js';
import { compileIdentity, resolveClient, parseAddressInto as parseInto } from '../../edge/pipeline/identity.js';
import { loadConfigText } from '../../edge/config/load.js';
import { adminTargetsFor } from '../../edge/main/admin-targets.js';
import type { RunningEdge } from '../../edge/main/edge.js';

interface Built { conn: ConnectionGuard; guard: ClientGuard; events: EdgeEvent[]; metrics: Metrics }

/** A guard pair (request guard's table + connection guard) for a raw `limits.connection` section. */
function build(connection: unknown, opts: { trusted?: string[]; tarpitMs?: number; tarpitMax?: number } = {}): Built {
  const limits = { connection };
  const guard = new ClientGuard(guardConfigFrom(limits, null), { now: T0 });
  const bus = new EventBus({ node: 'edge-a' });
  const events: EdgeEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const metrics = new Metrics();
  const cfg = connectionGuardConfig(normalizeConnectionLimits(connection), { trustedProxies: opts.trusted, tarpitMs: opts.tarpitMs, tarpitMax: opts.tarpitMax });
  const conn = new ConnectionGuard(cfg, { guard, bus, metrics });
  metrics.bind({ connections: () => ({ open: conn.openConnections, tarpitted: conn.tarpitted }) });
  return { conn, guard, events, metrics };
}

const T0 = 1_700_000_000_000;

function opens(g: ConnectionGuard, key: string, n: number, now: number, ip = key): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(g.open(key, ip, 'main', now));
  return out;
}

function metricValue(text: string, name: string, label = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(name + (label ? `{${label}}` : ' ')));
  return line === undefined ? NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('concurrent: the limit bites exactly at limits.connection.concurrent and a close frees a place', async () => {
  const { conn, guard, events, metrics } = build({ concurrent: 3, rate: false });
  const a = '198.51.100.7';
  assert.deepEqual(opens(conn, a, 4, T0), [CONN_ADMIT, CONN_ADMIT, CONN_ADMIT, CONN_CUR]);
  assert.equal(conn.open('198.51.100.8', '198.51.100.8', 'main', T0), CONN_ADMIT, 'another client is not affected');
  assert.equal(guard.table.entry(a, T0)?.conn_cur, 3, 'the client table shows the open connections');
  assert.equal(conn.connCurOf(a), 3);
  conn.close(a, T0 + 10);
  assert.equal(guard.table.entry(a, T0 + 10)?.conn_cur, 2);
  assert.equal(conn.open(a, a, 'main', T0 + 20), CONN_ADMIT, 'a closed connection frees its place');
  assert.equal(conn.open(a, a, 'main', T0 + 20), CONN_CUR);
  assert.equal(conn.openConnections, 4, 'node-wide open count (3 of a + 1 of b)');

  const ev = events.filter((e) => e.type === 'guard');
  assert.equal(ev.length, 2);
  assert.equal(ev[0].reason, 'conn_cur');
  assert.equal(ev[0].listener, 'main');
  assert.equal(ev[0].action, 'reject');
  assert.equal(ev[0].term, 'PR');
  assert.equal(ev[0].status, null);
  assert.deepEqual(ev[0].client, { ip: a, key: a, country: null, asn: null });
  assert.equal((ev[0].counters as Record<string, number>).conn_cur, 3);

  const text = await metrics.text();
  assert.equal(metricValue(text, 'portcullis_guard_rejections_total', 'reason="conn_cur"'), 2);
  assert.equal(metricValue(text, 'portcullis_client_connections_open'), 4);
});

test('rate: limits.connection.rate.limit new connections per window, counted at open and not released by close', () => {
  const { conn, guard, events } = build({ rate: { limit: 5, window: '1s' }, concurrent: false });
  const a = '203.0.113.9';
  const got = opens(conn, a, 5, T0);
  for (let i = 0; i < 5; i++) conn.close(a, T0);
  got.push(...opens(conn, a, 2, T0 + 1));
  assert.deepEqual(got, [0, 0, 0, 0, 0, CONN_RATE, CONN_RATE]);
  assert.equal(guard.table.entry(a, T0 + 1)?.conn_rate, 5, 'conn_rate counts admitted connections');
  assert.equal(guard.table.entry(a, T0 + 1)?.conn_cur, 0, 'closed connections left conn_cur');
  // Two windows later the client starts afresh; other clients were never limited.
  assert.equal(conn.open(a, a, 'main', T0 + 2100), CONN_ADMIT);
  assert.deepEqual(opens(conn, '203.0.113.10', 5, T0 + 1), [0, 0, 0, 0, 0]);
  const ev = events.filter((e) => e.type === 'guard');
  assert.deepEqual(ev.map((e) => e.reason), ['conn_rate', 'conn_rate']);
  assert.equal((ev[0].counters as Record<string, number>).conn_rate, 5);
});

test('global: the node-wide cap bites at limits.connection.global, for exempt clients too', () => {
  const { conn, events } = build({ global: 4, concurrent: false, rate: false, exempt: ['10.0.0.0/8'] });
  const keys = ['192.0.2.1', '192.0.2.2', '10.1.1.1', '10.1.1.2'];
  for (const k of keys) assert.equal(conn.open(k, k, 'main', T0), CONN_ADMIT);
  assert.equal(conn.open('192.0.2.3', '192.0.2.3', 'main', T0), CONN_GLOBAL);
  assert.equal(conn.open('10.1.1.3', '10.1.1.3', 'main', T0), CONN_GLOBAL, 'exempt skips the per-client limits only');
  conn.close('192.0.2.1', T0);
  assert.equal(conn.open('192.0.2.3', '192.0.2.3', 'main', T0), CONN_ADMIT);
  assert.equal(conn.openConnections, 4);
  assert.equal(events.filter((e) => e.type === 'guard' && e.reason === 'conn_global').length, 2);
});

test('exempt CIDRs and trusted proxies skip the per-client limits but are still counted', () => {
  const { conn, guard } = build({ concurrent: 2, rate: { limit: 3, window: '1s' }, exempt: ['192.0.2.10', '2001:db8:1::/48'] }, { trusted: ['10.0.0.0/8'] });
  for (const ip of ['192.0.2.10', '10.9.8.7', '::ffff:10.9.8.7']) {
    const key = ip.replace('::ffff:', '');
    assert.deepEqual(opens(conn, key, 10, T0, ip), new Array(10).fill(CONN_ADMIT), ip);
  }
  const v6 = '2001:db8:1:2::/64';
  assert.deepEqual(opens(conn, v6, 10, T0, '2001:db8:1:2::99'), new Array(10).fill(CONN_ADMIT));
  assert.equal(guard.table.entry('192.0.2.10', T0)?.conn_cur, 10);
  assert.equal(guard.table.entry('10.9.8.7', T0)?.conn_rate, 20);
  // The neighbour outside the exempt range is limited.
  assert.deepEqual(opens(conn, '192.0.2.11', 3, T0), [0, 0, CONN_CUR]);
  // The address may be given as its bytes (what the connection layer holds): same answers.
  const bytes4 = Uint8Array.from([192, 0, 2, 10]);
  const mapped = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 9, 8, 7]);
  for (let i = 0; i < 5; i++) assert.equal(conn.open('192.0.2.10', bytes4, 'main', T0), CONN_ADMIT);
  for (let i = 0; i < 5; i++) assert.equal(conn.open('10.9.8.7', mapped, 'main', T0), CONN_ADMIT);
  const other = Uint8Array.from([192, 0, 2, 12]);
  assert.deepEqual([0, 1, 2].map(() => conn.open('192.0.2.12', other, 'main', T0)), [0, 0, CONN_CUR]);
});

test('a refusal for an address given as bytes reports it as text', () => {
  const { conn, events } = build({ concurrent: 1, rate: false });
  const b = Uint8Array.from([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]);
  conn.open('2001:db8::/64', b, 'main', T0);
  conn.open('2001:db8::/64', b, 'main', T0);
  assert.deepEqual(events[0].client, { ip: '2001:db8::5', key: '2001:db8::/64', country: null, asn: null });
});

test('IPv6 clients are grouped by prefix and IPv4-mapped addresses count as IPv4, as the request guard keys them', () => {
  const { conn } = build({ concurrent: 2, rate: false });
  const id = compileIdentity({ ipv6Prefix: 64 });
  const key = (ip: string): { ip: string; key: string } => {
    const bytes = ip.includes(':') ? v6Bytes(ip) : Uint8Array.from(ip.split('.').map(Number));
    const c = resolveClient(bytes, undefined, id)!;
    return { ip: c.ip, key: c.key };
  };
  const a1 = key('2001:db8:aa:bb::1'), a2 = key('2001:db8:aa:bb:ffff::2'), b = key('2001:db8:aa:bc::1');
  assert.equal(a1.key, a2.key);
  assert.equal(conn.open(a1.key, a1.ip, 'main', T0), CONN_ADMIT);
  assert.equal(conn.open(a2.key, a2.ip, 'main', T0), CONN_ADMIT);
  assert.equal(conn.open(a2.key, a2.ip, 'main', T0), CONN_CUR, 'two addresses of one /64 share the limit');
  assert.equal(conn.open(b.key, b.ip, 'main', T0), CONN_ADMIT, 'the next /64 is another client');
  const m = key('::ffff:198.51.100.20'), v4 = key('198.51.100.20');
  assert.equal(m.key, '198.51.100.20');
  assert.equal(conn.open(m.key, m.ip, 'main', T0), CONN_ADMIT);
  assert.equal(conn.open(v4.key, v4.ip, 'main', T0), CONN_ADMIT);
  assert.equal(conn.open(v4.key, v4.ip, 'main', T0), CONN_CUR, 'the mapped and the plain address are one client');
});

function v6Bytes(text: string): Uint8Array {
  const w = new Uint32Array(4);
  // parseAddressInto is the edge's own text parser; mapped addresses come back as ::ffff:a.b.c.d words.
  const fam = parseInto(text, w);
  assert.ok(fam !== 0, text);
  const b = new Uint8Array(16);
  for (let i = 0; i < 4; i++) { b[4 * i] = w[i] >>> 24; b[4 * i + 1] = (w[i] >>> 16) & 255; b[4 * i + 2] = (w[i] >>> 8) & 255; b[4 * i + 3] = w[i] & 255; }
  return b;
}

test('in_process: off counts every connection and refuses none', () => {
  const { conn, guard, events } = build({ concurrent: 1, rate: { limit: 1, window: '1s' }, global: 1, in_process: 'off' });
  assert.deepEqual(opens(conn, '192.0.2.50', 5, T0), [0, 0, 0, 0, 0]);
  assert.equal(guard.table.entry('192.0.2.50', T0)?.conn_cur, 5);
  assert.equal(events.length, 0);
});

test('the counts show in the admin API\'s per-client view (GET /api/tables/client/keys/:key and top?by=conn_cur)', async () => {
  const { conn, guard } = build({ concurrent: 10, rate: false });
  opens(conn, '192.0.2.61', 3, Date.now());
  opens(conn, '192.0.2.62', 1, Date.now());
  const edge = { guard, bans: { list: () => [], size: 0 }, pools: new Map(), rules: null, pipeline: { inFlight: 0 }, ready: true, share: null } as unknown as RunningEdge;
  const targets = adminTargetsFor(edge);
  const one = await targets.tables.lookup('client', '192.0.2.61');
  assert.equal(one?.conn_cur, 3);
  assert.equal(one?.conn_rate, 3);
  const top = await targets.tables.top('client', 'conn_cur', 5);
  assert.deepEqual(top?.map((r) => [r.key, r.values.conn_cur]), [['192.0.2.61', 3], ['192.0.2.62', 1]]);
});

test('guard events of refused connections are valid against the event schema', () => {
  const { conn, events } = build({ concurrent: 1, rate: false }, { tarpitMs: 1000 });
  conn.open('192.0.2.70', '192.0.2.70', 'tls', T0);
  conn.open('192.0.2.70', '192.0.2.70', 'tls', T0);
  const ajv = new Ajv({ strict: true, strictTypes: false, strictRequired: false, allErrors: true });
  ajv.addFormat('date-time', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  const v = ajv.compile(securityEventSchema);
  assert.equal(events.length, 1);
  assert.ok(v(JSON.parse(JSON.stringify(events[0]))), ajv.errorsText(v.errors));
});

test('config: the in-process guard reads the same limits.connection numbers as the firewall, plus trusted_proxies and the tarpit keys', () => {
  const yaml = (extra: string): string => `
listen: [{ address: "127.0.0.1:18080" }]
admin: { address: "127.0.0.1:19090", token: "0123456789abcdef0123" }
backends: { shop: { servers: [{ name: a, url: "http://127.0.0.1:18081" }] } }
trusted_proxies: ["10.0.0.0/8"]
timeouts: { tarpit: 2s }
limits:
  tarpit: { max_concurrent: 7 }
  connection:
    rate: { limit: 20, window: 2s, burst: 40 }
    concurrent: 9
    exempt: ["192.0.2.10"]
${extra}`;
  const cfg = connectionGuardConfigOf(loadConfigText(yaml(''), 'edge.yaml', {}));
  assert.deepEqual(cfg.rate, { limit: 20, windowMs: 2000 });
  assert.equal(cfg.concurrent, 9);
  assert.equal(cfg.global, 20000);
  assert.equal(cfg.action, 'close');
  assert.deepEqual(cfg.exempt, ['192.0.2.10', '10.0.0.0/8']);
  assert.equal(cfg.tarpitMs, 2000);
  assert.equal(cfg.tarpitMax, 7);
  assert.equal(connectionGuardConfigOf(loadConfigText(yaml('    in_process: tarpit'), 'edge.yaml', {})).action, 'tarpit');
  assert.throws(() => loadConfigText(yaml('    in_process: drop'), 'edge.yaml', {}), /edge\.yaml:\d+.*limits\.connection\.in_process/s);
  // Defaults: the documented numbers.
  const d = connectionGuardConfig(undefined);
  assert.deepEqual([d.rate, d.concurrent, d.global, d.action], [{ limit: 50, windowMs: 1000 }, 100, 20000, 'close']);
});

test('a guard over a client table without connection columns is refused with a clear message', () => {
  const guard = new ClientGuard({ ...guardConfigFrom({}, null), connRateMs: 0 });
  assert.throws(() => new ConnectionGuard(connectionGuardConfig(undefined), { guard }), /conn_cur\/conn_rate/);
});

// ------------------------------------------------------------------------------ tarpit, on sockets

/** A server with pauseOnConnect (nothing read until the guard admits), guarded by `conn`. */
async function guardedServer(conn: ConnectionGuard): Promise<{ port: number; reads: number[]; close(): Promise<void> }> {
  const reads: number[] = [];
  const sockets = new Set<Socket>();
  const server = createServer({ pauseOnConnect: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    const ip = s.remoteAddress ?? '';
    const key = ip.replace(/^::ffff:/, '');
    const v = conn.open(key, ip, 'main', Date.now());
    if (v !== CONN_ADMIT) { conn.refuse(s, v); return; }
    s.on('data', (d) => { reads.push(d.length); s.write('ok'); });
    s.on('close', () => conn.close(key));
    s.resume();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port, reads,
    close: async () => { conn.stop(); for (const s of sockets) s.destroy(); server.close(); await once(server, 'close'); },
  };
}

/** Resolves when the socket is closed, whatever the cause (a reset is how a refusal often looks). */
function closed(s: Socket): Promise<void> {
  return new Promise((resolve) => { if (s.destroyed) resolve(); else s.on('close', () => resolve()); });
}

async function dial(port: number, localAddress: string): Promise<Socket> {
  const s = connect({ port, host: '127.0.0.1', localAddress });
  s.on('error', () => {});
  await once(s, 'connect');
  return s;
}

test('tarpit: a refused connection is held unread for timeouts.tarpit, then closed; beyond tarpitMax it is closed at once', async (t) => {
  const { conn, events } = build({ concurrent: 1, rate: false, in_process: 'tarpit' }, { tarpitMs: 600, tarpitMax: 1 });
  const srv = await guardedServer(conn);
  t.after(() => srv.close());
  const first = await dial(srv.port, '127.0.0.81');
  first.write('GET / HTTP/1.1\r\n\r\n');
  await once(first, 'data'); // admitted and served
  const held = await dial(srv.port, '127.0.0.81');
  const heldAt = Date.now();
  held.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  const heldClosed = closed(held);
  // The tarpit holds one: a third connection from the client is closed at once.
  const third = await dial(srv.port, '127.0.0.81');
  await closed(third);
  assert.ok(!held.destroyed && held.readyState === 'open', 'the tarpitted connection is still held');
  await heldClosed;
  assert.ok(Date.now() - heldAt >= 500, `held ${Date.now() - heldAt} ms (tarpit 600 ms)`);
  assert.equal(srv.reads.length, 1, 'nothing of the refused connections was read');
  const ev = events.filter((e) => e.type === 'guard');
  assert.deepEqual(ev.map((e) => [e.reason, e.action, e.term]), [['conn_cur', 'tarpit', 'PT'], ['conn_cur', 'reject', 'PR']]);
  first.destroy();
});

test('close action: an over-limit connection is closed before anything is read; the client\'s other connection is served', async (t) => {
  const { conn } = build({ concurrent: 1, rate: false });
  const srv = await guardedServer(conn);
  t.after(() => srv.close());
  const ok = await dial(srv.port, '127.0.0.82');
  const refused = await dial(srv.port, '127.0.0.82');
  refused.write('GET / HTTP/1.1\r\n\r\n');
  await closed(refused);
  ok.write('GET / HTTP/1.1\r\n\r\n');
  const [d] = await once(ok, 'data') as [Buffer];
  assert.equal(d.toString(), 'ok');
  assert.equal(srv.reads.length, 1);
  ok.destroy();
  // The close released the place: a new connection is admitted.
  await waitUntil(() => conn.connCurOf('127.0.0.82') === 0);
  const again = await dial(srv.port, '127.0.0.82');
  again.write('x');
  await once(again, 'data');
  again.destroy();
});

async function waitUntil(cond: () => boolean, ms = 3000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('50 connections from one 127.x address: only the limit is held, another address is served', async (t) => {
  const { conn, events } = build({ concurrent: 10, rate: false });
  const srv = await guardedServer(conn);
  t.after(() => srv.close());
  const socks: Socket[] = [];
  t.after(() => { for (const s of socks) s.destroy(); });
  for (let i = 0; i < 50; i++) socks.push(await dial(srv.port, '127.0.0.84'));
  await waitUntil(() => events.filter((e) => e.type === 'guard').length === 40);
  await Promise.all(socks.slice(10).map(closed)); // the refused ones are closed by the server
  assert.equal(socks.filter((s) => !s.destroyed).length, 10, 'exactly the limit is held');
  assert.equal(conn.connCurOf('127.0.0.84'), 10);
  // Each held connection is served; another address is served too.
  for (const s of socks.slice(0, 10)) { s.write('x'); await once(s, 'data'); }
  const other = await dial(srv.port, '127.0.0.85');
  socks.push(other);
  other.write('y');
  const [d] = await once(other, 'data') as [Buffer];
  assert.equal(d.toString(), 'ok');
});
