// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// Listeners change live on a config reload (engine http1, workers: 1): an added listener serves, a
// removed one refuses new connections while the requests it holds finish, a moved one (same name,
// new port) binds the new port before the old one closes, a changed one (limits, TLS certificate)
// applies to new connections while old connections finish their request; a port that cannot be
// bound refuses the whole reload, naming the listener, and the running state stays. A steady client
// on the unchanged listener sees no failure from start to end. With the uws engine the listener
// change is reported as needing a restart, with the reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as netConnect, createServer, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { request } from 'undici';
import { loadConfigFile } from '../../edge/config/load.js';
import { runEdgeProcess } from '../../edge/main/process.js';
import { EventBus } from '../../edge/observe/events/bus.js';
import { startOrigin, type OriginHandler } from '../harness/origin.js';
import { freePort } from '../harness/ports.js';
import { httpClient, parseResponse } from '../harness/client.js';
import { createTestCa } from '../tls/certs.js';
import { sleep, waitFor } from '../harness/wait.js';

const TOKEN = 'test-admin-token-0123456789';

const handler: OriginHandler = (req, res) => {
  if (req.url === '/slow') { setTimeout(() => res.end('slow done\n'), 1200); return; }
  res.end('ok\n');
};

interface Listen { name: string; port: number; extra?: string }
function yamlOf(adminPort: number, origin: string, listen: Listen[], extra = ''): string {
  return [
    'listen:',
    ...listen.map((l) => `  - { name: ${l.name}, address: "127.0.0.1:${l.port}"${l.extra ? `, ${l.extra}` : ''} }`),
    `admin: { address: "127.0.0.1:${adminPort}", token: "${TOKEN}" }`,
    'access_log: { path: "off" }',
    'events: { log: "off" }',
    'limits: { client: { requests: { limit: 0 }, in_flight: 0 }, connection: { in_process: off } }',
    'backends:', '  shop:', '    servers:', `      - { name: a, url: "${origin}" }`,
    extra,
  ].join('\n') + '\n';
}

type ReloadBody = { ok: boolean; errors: string[]; changes: string[]; restartRequired: string[] };
async function reload(adminPort: number): Promise<{ status: number; body: ReloadBody }> {
  const r = await request(`http://127.0.0.1:${adminPort}/api/config/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
  return { status: r.statusCode, body: (await r.body.json()) as ReloadBody };
}

/** Whether a TCP connection to the port is accepted. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/** A keep-alive connection driven by hand: one request at a time, the response head parsed. */
class KeepAlive {
  private buf = Buffer.alloc(0);
  private waiting: (() => void) | null = null;
  closed = false;
  constructor(readonly sock: Socket | TLSSocket) {
    sock.on('data', (c: Buffer) => { this.buf = Buffer.concat([this.buf, c]); this.waiting?.(); });
    sock.on('close', () => { this.closed = true; this.waiting?.(); });
    sock.on('error', () => {});
  }
  async get(path: string): Promise<{ status: number; headers: Record<string, string> }> {
    this.buf = Buffer.alloc(0);
    this.sock.write(`GET ${path} HTTP/1.1\r\nHost: shop.test\r\n\r\n`);
    for (;;) {
      const r = parseResponse(this.buf);
      if (r !== null && r.body.length >= Number(r.headers['content-length'] ?? 0)) return { status: r.status, headers: r.headers };
      if (this.closed) throw new Error(`connection closed; got ${JSON.stringify(this.buf.toString('latin1'))}`);
      await new Promise<void>((res) => { this.waiting = res; });
      this.waiting = null;
    }
  }
}

function plainConnection(port: number): Promise<KeepAlive> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: '127.0.0.1', port });
    s.once('connect', () => resolve(new KeepAlive(s)));
    s.once('error', reject);
  });
}

test('listeners change live on reload: added serves, removed and moved drain, changed applies to new connections; a bind failure keeps the last good state', async (t) => {
  const o = await startOrigin('a', handler);
  t.after(() => o.close());
  const dir = mkdtempSync(join(tmpdir(), 'pc-reload-listen-'));
  const file = join(dir, 'edge.yaml');
  const adminPort = await freePort();
  const [pMain, pExtra, pAdded, pMoved] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const main: Listen = { name: 'main', port: pMain };
  writeFileSync(file, yamlOf(adminPort, o.url, [main, { name: 'extra', port: pExtra }]));
  const proc = await runEdgeProcess(loadConfigFile(file), { handleSignals: false, bus: new EventBus({ node: 'reload-listen' }) });
  t.after(() => proc.stop());

  // A steady shopper on the main listener (keep-alive) for the whole test: not one failure allowed.
  const shopper = httpClient({ localAddress: '127.0.0.2', connections: 4 });
  t.after(() => shopper.close());
  let failures = 0, served = 0, running = true;
  const errors: string[] = [];
  const loop = (async () => {
    while (running) {
      try {
        const r = await shopper.get(`http://127.0.0.1:${pMain}/shop`);
        if (r.status !== 200) { failures++; errors.push(String(r.status)); } else served++;
      } catch (err) { failures++; errors.push(String(err)); }
      await sleep(3);
    }
  })();
  const stopLoop = async (): Promise<void> => { running = false; await loop; };
  t.after(stopLoop);
  const slowClient = httpClient({ connections: 2 });
  t.after(() => slowClient.close());
  await sleep(100);

  // 1. A listener added: it serves at once.
  writeFileSync(file, yamlOf(adminPort, o.url, [main, { name: 'extra', port: pExtra }, { name: 'added', port: pAdded }]));
  const r1 = await reload(adminPort);
  assert.equal(r1.status, 200, JSON.stringify(r1.body));
  assert.deepEqual(r1.body.restartRequired, []);
  assert.ok(r1.body.changes.includes(`listen 127.0.0.1:${pAdded} (added) added`), JSON.stringify(r1.body.changes));
  assert.equal((await request(`http://127.0.0.1:${pAdded}/x`)).statusCode, 200);

  // 2. "extra" moves to another port while a slow request is on it: the new port serves, the old
  //    one refuses new connections, the request in flight finishes.
  const before = o.active;
  const slowOnExtra = slowClient.get(`http://127.0.0.1:${pExtra}/slow`);
  await waitFor('the slow request on "extra" at the origin', () => o.active > before, 5000);
  writeFileSync(file, yamlOf(adminPort, o.url, [main, { name: 'extra', port: pMoved }, { name: 'added', port: pAdded }]));
  const r2 = await reload(adminPort);
  assert.equal(r2.status, 200, JSON.stringify(r2.body));
  assert.ok(r2.body.changes.some((c) => c.startsWith(`listen extra: 127.0.0.1:${pExtra} → 127.0.0.1:${pMoved}`)), JSON.stringify(r2.body.changes));
  assert.equal((await request(`http://127.0.0.1:${pMoved}/x`)).statusCode, 200, 'the new address serves');
  assert.equal(await accepts(pExtra), false, 'the old address refuses new connections');
  const slow2 = await slowOnExtra;
  assert.equal(slow2.status, 200, 'the request in flight on the moved listener finished');
  assert.equal(slow2.body, 'slow done\n');

  // 3. The main listener changes (limits.request.max_url): an idle keep-alive connection opened
  //    before still gets its next request answered (and is asked to close), new connections get the
  //    new limit; the steady shopper does not notice.
  const old = await plainConnection(pMain);
  assert.equal((await old.get(`/${'a'.repeat(300)}`)).status, 200);
  writeFileSync(file, yamlOf(adminPort, o.url, [main, { name: 'extra', port: pMoved }, { name: 'added', port: pAdded }]).replace(
    'limits: { client:', 'limits: { request: { max_url: 100 }, client:'));
  const r3 = await reload(adminPort);
  assert.equal(r3.status, 200, JSON.stringify(r3.body));
  assert.ok(r3.body.changes.some((c) => c.startsWith(`listen 127.0.0.1:${pMain} (main): limits.request changed`)), JSON.stringify(r3.body.changes));
  assert.deepEqual(r3.body.restartRequired, []);
  const again = await old.get('/after-reload');
  assert.equal(again.status, 200, 'the old connection is still served');
  assert.equal(again.headers.connection, 'close', 'and asked to reconnect onto the new settings');
  const fresh = await plainConnection(pMain);
  assert.equal((await fresh.get(`/${'a'.repeat(300)}`)).status, 414, 'a new connection has the new limit');
  fresh.sock.destroy();

  // 4. A port that cannot be bound refuses the whole reload (naming the listener); the running
  //    listeners and the rest of the config stay as they were.
  const squatter = createServer();
  await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', () => r()));
  t.after(() => new Promise<void>((r) => squatter.close(() => r())));
  const busy = (squatter.address() as { port: number }).port;
  writeFileSync(file, yamlOf(adminPort, o.url, [main, { name: 'extra', port: pMoved }, { name: 'added', port: pAdded }, { name: 'taken', port: busy }], 'timeouts: { server: 5s }').replace(
    'limits: { client:', 'limits: { request: { max_url: 100 }, client:'));
  const r4 = await reload(adminPort);
  assert.equal(r4.status, 422, JSON.stringify(r4.body));
  assert.ok(r4.body.errors.some((e) => e.startsWith(`listen 127.0.0.1:${busy} (taken): cannot listen`)), JSON.stringify(r4.body.errors));
  assert.equal(proc.edge.cfg.timeouts.serverMs, 30_000, 'the rest of that config was not applied either');
  for (const p of [pMain, pMoved, pAdded]) assert.equal((await request(`http://127.0.0.1:${p}/x`)).statusCode, 200, `port ${p} still serves`);

  // 5. A listener removed while a slow request is on it: refused from now on, the request finishes.
  const before5 = o.active;
  const slowOnAdded = slowClient.get(`http://127.0.0.1:${pAdded}/slow`);
  await waitFor('the slow request on "added" at the origin', () => o.active > before5, 5000);
  writeFileSync(file, yamlOf(adminPort, o.url, [main, { name: 'extra', port: pMoved }]).replace('limits: { client:', 'limits: { request: { max_url: 100 }, client:'));
  const r5 = await reload(adminPort);
  assert.equal(r5.status, 200, JSON.stringify(r5.body));
  assert.ok(r5.body.changes.some((c) => c.startsWith(`listen 127.0.0.1:${pAdded} (added) removed`)), JSON.stringify(r5.body.changes));
  assert.equal(await accepts(pAdded), false, 'the removed listener refuses new connections');
  assert.equal((await slowOnAdded).status, 200, 'the request in flight on the removed listener finished');
  assert.deepEqual(proc.edge.listeners.map((l) => l.name).sort(), ['extra', 'main']);

  await stopLoop();
  old.sock.destroy();
  assert.ok(served > 50, `the shopper got ${served} answers`);
  assert.equal(failures, 0, `failed shopper requests across the listener reloads: ${failures} of ${served + failures}: ${errors.slice(0, 5).join('; ')}`);
});

test('a TLS listener reloaded with another certificate: new connections get it, an open one is still served; a certificate that does not load refuses the reload', async (t) => {
  const o = await startOrigin('a', handler);
  t.after(() => o.close());
  const ca = createTestCa(t);
  const first = ca.issue('first', ['first.test']);
  const second = ca.issue('second', ['second.test']);
  const dir = mkdtempSync(join(tmpdir(), 'pc-reload-tls-'));
  const file = join(dir, 'edge.yaml');
  const adminPort = await freePort();
  const port = await freePort();
  const tlsOf = (c: { cert: string; key: string }): string => `tls: { cert: "${c.cert}", key: "${c.key}", reload_interval: 0 }`;
  writeFileSync(file, yamlOf(adminPort, o.url, [{ name: 'secure', port, extra: tlsOf(first) }]));
  const proc = await runEdgeProcess(loadConfigFile(file), { handleSignals: false, bus: new EventBus({ node: 'reload-tls' }) });
  t.after(() => proc.stop());

  const open = (): Promise<{ conn: KeepAlive; cn: string }> => new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca: ca.ca, servername: 'shop.test', checkServerIdentity: () => undefined });
    s.once('secureConnect', () => resolve({ conn: new KeepAlive(s), cn: String(s.getPeerCertificate().subject.CN) }));
    s.once('error', reject);
  });
  const before = await open();
  assert.equal(before.cn, 'first.test');
  assert.equal((await before.conn.get('/x')).status, 200);

  writeFileSync(file, yamlOf(adminPort, o.url, [{ name: 'secure', port, extra: tlsOf(second) }]));
  const r = await reload(adminPort);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.ok(r.body.changes.some((c) => c.startsWith(`listen 127.0.0.1:${port} (secure): listen[].tls changed`)), JSON.stringify(r.body.changes));
  const after = await open();
  assert.equal(after.cn, 'second.test', 'a new connection gets the new certificate');
  assert.equal((await after.conn.get('/x')).status, 200);
  const old = await before.conn.get('/y');
  assert.equal(old.status, 200, 'the connection opened before the reload is still served');
  assert.equal(old.headers.connection, 'close');

  writeFileSync(file, yamlOf(adminPort, o.url, [{ name: 'secure', port, extra: tlsOf({ cert: join(dir, 'missing.crt'), key: second.key }) }]));
  const bad = await reload(adminPort);
  assert.equal(bad.status, 422, JSON.stringify(bad.body));
  assert.ok(bad.body.errors.some((e) => e.startsWith(`listen 127.0.0.1:${port} (secure):`)), JSON.stringify(bad.body.errors));
  const still = await open();
  assert.equal(still.cn, 'second.test', 'the last good certificate stays in service');
  assert.equal((await still.conn.get('/z')).status, 200);
  for (const c of [before, after, still]) c.conn.sock.destroy();
});

test('with the uws engine a listener change needs a restart: reported with the reason, the rest applied, the old port still serves', async (t) => {
  const o = await startOrigin('a', handler);
  t.after(() => o.close());
  const dir = mkdtempSync(join(tmpdir(), 'pc-reload-uws-'));
  const file = join(dir, 'edge.yaml');
  const adminPort = await freePort();
  const [port, other] = [await freePort(), await freePort()];
  writeFileSync(file, yamlOf(adminPort, o.url, [{ name: 'main', port, extra: 'engine: uws' }]));
  const proc = await runEdgeProcess(loadConfigFile(file), { handleSignals: false, bus: new EventBus({ node: 'reload-uws' }) });
  t.after(() => proc.stop());
  writeFileSync(file, yamlOf(adminPort, o.url, [{ name: 'main', port, extra: 'engine: uws' }, { name: 'more', port: other, extra: 'engine: uws' }], 'timeouts: { server: 5s }'));
  const r = await reload(adminPort);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.ok(r.body.restartRequired.includes(`listen 127.0.0.1:${other} (more) added (engine uws: uWebSockets.js owns its sockets)`), JSON.stringify(r.body));
  assert.ok(r.body.changes.some((c) => c.startsWith('timeouts: serverMs 30000 → 5000')), JSON.stringify(r.body.changes));
  assert.equal(await accepts(other), false);
  assert.equal((await request(`http://127.0.0.1:${port}/x`)).statusCode, 200);
});
