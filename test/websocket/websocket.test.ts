// Why: WebSocket upgrades must pass the same guard and rules as any request, then be tunnelled to
// the chosen server intact (text, 1 MB binary, subprotocol, close codes, X-Forwarded-For), with
// back-pressure, an idle timeout and a per-client cap — a tunnel is a long-lived resource an
// attacker would love to hoard.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { edgeYaml, startTestEdge, type TestEdge } from '../harness/edge.js';
import { sendableCloseCode, uwsIdleTimeoutSec, normalizeWebSocketLimits } from '../../edge/upstream/websocket.js';
import { sleep, waitFor } from '../harness/wait.js';
import { startOrigin, startRawOrigin } from '../harness/origin.js';

interface WsOrigin {
  url: string;
  upgrades: IncomingMessage[];
  closes: { code: number; reason: string }[];
  /** Server-side sockets, newest last. */
  sockets: WebSocket[];
  close(): Promise<void>;
}

async function startWsOrigin(): Promise<WsOrigin> {
  const upgrades: IncomingMessage[] = [];
  const closes: { code: number; reason: string }[] = [];
  const sockets: WebSocket[] = [];
  const wss = new WebSocketServer({
    host: '127.0.0.1', port: 0, maxPayload: 8 << 20,
    handleProtocols: (protocols) => (protocols.has('p1') ? 'p1' : false),
  });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  wss.on('connection', (ws, req) => {
    upgrades.push(req);
    sockets.push(ws);
    ws.on('close', (code, reason) => closes.push({ code, reason: reason.toString() }));
    ws.on('error', () => {});
    if (req.url === '/close4001') { ws.close(4001, 'bye'); return; }
    if (req.url === '/stall') { ws.pause(); return; } // never reads: client → server back-pressure
    ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
  });
  const port = (wss.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`, upgrades, closes, sockets,
    close: () => new Promise<void>((r) => { for (const c of wss.clients) c.terminate(); wss.close(() => r()); }),
  };
}

function wsEdge(originUrl: string, more?: string): string {
  return edgeYaml({ servers: [{ name: 'ws1', url: originUrl }], more });
}

/** Starts a WebSocket origin and an edge in front of it (`more`: extra config); both stop when `t` ends. */
async function startWsEdge(t: { after(fn: () => unknown): void }, more?: string): Promise<{ o: WsOrigin; px: TestEdge }> {
  const o = await startWsOrigin();
  t.after(() => o.close());
  const px = await startTestEdge(wsEdge(o.url, more));
  t.after(() => px.stop());
  return { o, px };
}

function openClient(px: TestEdge, path: string, protocols: string[] = [], headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${px.port}${path}`, protocols, { headers: { host: 'shop.test', ...headers }, maxPayload: 8 << 20 });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`status ${res.statusCode}`), { status: res.statusCode, headers: res.headers })));
  });
}

const nextMessage = (ws: WebSocket): Promise<{ data: Buffer; binary: boolean }> =>
  new Promise((r) => ws.once('message', (data, binary) => r({ data: data as Buffer, binary })));
const closed = (ws: WebSocket): Promise<{ code: number; reason: string }> =>
  new Promise((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));

test('echo through the tunnel: text and a 1 MB binary message, subprotocol chosen by the server, X-Forwarded-For upstream', async (t) => {
  const { o, px } = await startWsEdge(t);
  const ws = await openClient(px, '/chat?room=1', ['p0', 'p1'], { 'x-forwarded-for': '198.51.100.1' });
  assert.equal(ws.protocol, 'p1', 'the server\'s choice reaches the client');
  ws.send('hello');
  const m1 = await nextMessage(ws);
  assert.equal(m1.binary, false);
  assert.equal(m1.data.toString(), 'hello');
  const big = randomBytes(1 << 20);
  ws.send(big);
  const m2 = await nextMessage(ws);
  assert.equal(m2.binary, true);
  assert.equal(createHash('sha256').update(m2.data).digest('hex'), createHash('sha256').update(big).digest('hex'));
  const up = o.upgrades[0];
  assert.equal(up.url, '/chat?room=1');
  // Not a trusted proxy: the client's own XFF is replaced by its address.
  assert.equal(up.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(up.headers['x-forwarded-proto'], 'http');
  assert.equal(up.headers.host, 'shop.test');
  assert.equal(up.headers['sec-websocket-protocol'], 'p0,p1');
  const done = closed(ws);
  ws.close(4002, 'client done');
  assert.deepEqual(await done, { code: 4002, reason: 'client done' });
  await waitFor('o.closes.length === 1', () => o.closes.length === 1);
  assert.deepEqual(o.closes[0], { code: 4002, reason: 'client done' }, 'client close code reaches the server');
  await waitFor('px.edge.websocket.tunnels.size === 0', () => px.edge.websocket.tunnels.size === 0);
  assert.equal(px.edge.pipeline.inFlight, 0);
});

test('server close code 4001 reaches the client; a close without code is sent as 1000, never 1005', async (t) => {
  const { o, px } = await startWsEdge(t);
  const ws = await openClient(px, '/close4001');
  assert.deepEqual(await closed(ws), { code: 4001, reason: 'bye' });
  const ws2 = await openClient(px, '/echo');
  ws2.close(); // no status code: the server must see 1000, not 1005
  await closed(ws2);
  await waitFor('o.closes.length === 2', () => o.closes.length === 2);
  assert.equal(o.closes[1].code, 1000);
  assert.equal(sendableCloseCode(1005), 1000);
  assert.equal(sendableCloseCode(1006), 1011);
  assert.equal(sendableCloseCode(1015), 1011);
  assert.equal(sendableCloseCode(999), 1011);
  assert.equal(sendableCloseCode(4999), 4999);
});

test('a rule that denies the upgrade path answers 403 and no tunnel reaches the server', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-ws-rules-'));
  const rules = join(dir, 'ws.rules');
  writeFileSync(rules, 'version 1\nrule "no-admin-socket" { when http.path starts_with "/admin" then deny(403) }\n');
  const { o, px } = await startWsEdge(t, `rules: { files: ["${rules}"], watch: false, run_tests: false }`);
  await assert.rejects(openClient(px, '/admin/live'), (e: Error & { status?: number }) => e.status === 403);
  const ok = await openClient(px, '/live');
  ok.close(1000);
  await closed(ok);
  assert.deepEqual(o.upgrades.map((u) => u.url), ['/live']);
  assert.ok(px.events.some((e) => e.type === 'deny' || (e as { rule?: string }).rule === 'no-admin-socket'), 'deny event emitted');
});

test('per-client tunnel cap: the 3rd concurrent tunnel of a client gets 429, a slot frees when one closes', async (t) => {
  const { o, px } = await startWsEdge(t, 'limits: { websocket: { per_client: 2 } }');
  const a = await openClient(px, '/a');
  const b = await openClient(px, '/b');
  await assert.rejects(openClient(px, '/c'), (e: Error & { status?: number; headers?: Record<string, string> }) => e.status === 429 && e.headers?.['retry-after'] === '5');
  assert.equal(o.upgrades.length, 2, 'the refused tunnel never reached the server');
  assert.equal(px.edge.websocket.tunnelsOf('127.0.0.1'), 2);
  // A stage decision before any server is leased: a guard event like every other refusal.
  const refusal = await px.collector.expect({ type: 'guard', reason: 'websocket_per_client', status: 429, term: 'PR' });
  assert.equal((refusal.request as { path?: string } | null)?.path, '/c');
  a.close(1000);
  await closed(a);
  await waitFor(`px.edge.websocket.tunnelsOf('127.0.0.1') === 1`, () => px.edge.websocket.tunnelsOf('127.0.0.1') === 1);
  const c = await openClient(px, '/c');
  c.send('x');
  assert.equal((await nextMessage(c)).data.toString(), 'x');
  b.terminate();
  c.terminate();
});

test('idle timeout: a tunnel without messages is closed (1001) on both sides', async (t) => {
  const { o, px } = await startWsEdge(t, 'limits: { websocket: { idle_timeout: 1s } }');
  const ws = await openClient(px, '/idle');
  const t0 = Date.now();
  // Activity keeps it open …
  for (let i = 0; i < 3; i++) { await sleep(500); ws.send('ping'); await nextMessage(ws); }
  assert.equal(ws.readyState, WebSocket.OPEN);
  // … silence closes it.
  const c = await closed(ws);
  assert.equal(c.code, 1001);
  assert.equal(c.reason, 'idle timeout');
  assert.ok(Date.now() - t0 >= 2400, 'not before the idle time after the last message');
  await waitFor('o.closes.length === 1', () => o.closes.length === 1);
  assert.equal(o.closes[0].code, 1001);
});

test('back-pressure server → client: a client that stops reading pauses the server side; everything arrives once it reads', async (t) => {
  const { o, px } = await startWsEdge(t, 'limits: { websocket: { max_message: 1mb, max_backpressure: 2mb } }');
  const ws = await openClient(px, '/flood');
  (ws as unknown as { _socket: import('node:net').Socket })._socket.pause(); // stop reading at TCP level
  await waitFor('o.sockets.length === 1', () => o.sockets.length === 1);
  const server = o.sockets[0];
  const n = 48;
  const chunk = randomBytes(1 << 20);
  for (let i = 0; i < n; i++) server.send(chunk);
  // The edge stops reading from the server: bytes pile up in the server's own buffer, not in the edge.
  await sleep(1500);
  assert.ok(server.bufferedAmount > 16 << 20, `server-side buffered ${server.bufferedAmount} bytes (edge paused it)`);
  let got = 0;
  let bytes = 0;
  const all = new Promise<void>((r) => ws.on('message', (d) => { got++; bytes += (d as Buffer).length; if (got === n) r(); }));
  (ws as unknown as { _socket: import('node:net').Socket })._socket.resume();
  await all;
  assert.equal(bytes, n << 20);
  ws.close(1000);
});

test('back-pressure client → server: a server that does not read gets the tunnel closed with 1013 once max_backpressure is queued', async (t) => {
  const { px } = await startWsEdge(t, 'limits: { websocket: { max_message: 256kb, max_backpressure: 1mb } }');
  const ws = await openClient(px, '/stall');
  const c = closed(ws);
  const chunk = randomBytes(200 * 1024);
  let sent = 0;
  const pump = setInterval(() => { if (ws.readyState === WebSocket.OPEN && sent < 400) { ws.send(chunk); sent++; } }, 2);
  t.after(() => clearInterval(pump));
  const r = await c;
  clearInterval(pump);
  assert.equal(r.code, 1013);
  assert.ok(sent < 400, `closed after ${sent} messages`);
});

test('a server that is down gives 502 to the upgrade; a server that refuses the upgrade has its status relayed', async (t) => {
  const o = await startWsOrigin();
  const deadUrl = o.url;
  await o.close();
  const px = await startTestEdge(wsEdge(deadUrl, ''));
  t.after(() => px.stop());
  await assert.rejects(openClient(px, '/x'), (e: Error & { status?: number }) => e.status === 502 || e.status === 503);
  const plain = await startOrigin('plain', (_req, res) => { res.statusCode = 404; res.end('no socket here'); });
  t.after(() => plain.close());
  const px2 = await startTestEdge(wsEdge(plain.url));
  t.after(() => px2.stop());
  await assert.rejects(openClient(px2, '/x'), (e: Error & { status?: number }) => e.status === 404);
});

test('a server that answers the upgrade with a broken handshake (101 with a wrong Sec-WebSocket-Accept) gives 502, not a 503 "no server", and is tried once', async (t) => {
  const broken = await startRawOrigin((_r, _n, s) => {
    s.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: not-the-right-hash\r\n\r\n');
  });
  t.after(() => broken.close());
  const px = await startTestEdge(wsEdge(broken.url));
  t.after(() => px.stop());
  await assert.rejects(openClient(px, '/x'), (e: Error & { status?: number }) => e.status === 502);
  assert.equal(broken.requests.length, 1, 'a junk handshake is not retried on the only server');
  const queued = px.events.filter((e) => e.type === 'queue' && e.action === 'no_server');
  assert.equal(queued.length, 0, 'no "no server" event for a backend whose only server is up');
});

test('uWS idleTimeout is always 0 or 9..960 (else std::terminate); limits are normalised', () => {
  for (const ms of [0, 1, 1000, 8000, 9000, 120_000, 960_000, 10_000_000]) {
    const s = uwsIdleTimeoutSec(ms);
    assert.ok(s === 0 || (s >= 9 && s <= 960), `${ms} ms → ${s}`);
  }
  const l = normalizeWebSocketLimits({ max_message: 4 << 20, max_backpressure: 1 << 20 });
  assert.equal(l.maxBackpressure, 8 << 20, 'raised to hold two whole messages');
  assert.deepEqual(normalizeWebSocketLimits(undefined), { enabled: true, perClient: 20, idleTimeoutMs: 120_000, maxMessage: 1 << 20, maxBackpressure: 2 << 20 });
});


