// Why: the HTTP/1.1 engine owns every byte and every timer of a client connection. These tests pin
// what a client sees and what reaches the origin for the behaviours that are the engine's own:
// pipelining in order without desync, HTTP/1.0 framing, the head and keep-alive deadlines (with
// their events and access lines), Expect: 100-continue, byte-exact obs-text, half-closed clients (abort_on_close),
// and a refused request whose body is never read as a next request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { startBench, exchange, statusesOf, completeResponses } from '../hostile/helpers.js';
import { startRawOrigin } from '../harness/origin.js';
import { CLIENT_LIMITS_OFF, edgeYaml, startTestEdge } from '../harness/edge.js';
import { waitFor } from '../harness/wait.js';
import type { EdgeEvent } from '../../edge/observe/events/bus.js';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Resolves with the event of `type` the edge emits first (or rejects after ms). */
function nextEvent(events: EdgeEvent[], pred: (e: EdgeEvent) => boolean, ms = 5000): Promise<EdgeEvent> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const poll = (): void => {
      const e = events.find(pred);
      if (e !== undefined) { resolve(e); return; }
      if (Date.now() - t0 > ms) { reject(new Error('event did not come')); return; }
      setTimeout(poll, 10);
    };
    poll();
  });
}

/** Opens a connection and collects everything it receives until it closes. */
function openClient(port: number): { s: Socket; data: () => string; closed: Promise<number> } {
  const s = connect(port, '127.0.0.1');
  let data = '';
  const t0 = performance.now();
  s.on('data', (d: Buffer) => { data += d.toString('latin1'); });
  s.on('error', () => {});
  const closed = new Promise<number>((resolve) => s.on('close', () => resolve(performance.now() - t0)));
  return { s, data: () => data, closed };
}

test('pipelined GET + POST (Content-Length) + POST (chunked) in one packet: three answers in order, the origin gets exactly three strict requests', async (t) => {
  const b = await startBench({ reply: (r) => `HTTP/1.1 200 OK\r\ncontent-length: ${r.target.length}\r\n\r\n${r.target}` });
  t.after(() => b.stop());
  const a = await exchange(b.edge.port,
    'GET /one HTTP/1.1\r\nHost: shop\r\n\r\n'
    + 'POST /two HTTP/1.1\r\nHost: shop\r\nContent-Length: 5\r\n\r\nhello'
    + 'POST /three HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n3;ext="a b"\r\nabc\r\n2\r\nde\r\n0\r\nx-trailer: t\r\n\r\n',
  { expectResponses: 3, settleMs: 100 });
  assert.deepEqual(a.statuses, [200, 200, 200]);
  const text = a.data.toString('latin1');
  assert.ok(text.indexOf('/one') < text.indexOf('/two') && text.indexOf('/two') < text.indexOf('/three'), text);
  assert.deepEqual(b.origin.requests.map((r) => [r.method, r.target, r.body.toString('latin1')]),
    [['GET', '/one', ''], ['POST', '/two', 'hello'], ['POST', '/three', 'abcde']]);
  assert.deepEqual(b.origin.framingErrors, []);
  assert.ok(!b.origin.allBytes().toString('latin1').includes('x-trailer'), 'trailers are dropped');
});

test('HTTP/1.0: served; keep-alive only when asked; an unknown-length response is close-delimited, never chunked', async (t) => {
  const b = await startBench({
    reply: (r) => r.target === '/stream'
      ? 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'
      : 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok',
  });
  t.after(() => b.stop());
  const plain = await exchange(b.edge.port, 'GET / HTTP/1.0\r\n\r\n', { waitMs: 2000 });
  assert.deepEqual(plain.statuses, [200]);
  assert.ok(plain.closed, 'HTTP/1.0 without keep-alive: closed after the response');
  assert.match(plain.data.toString('latin1'), /connection: close\r\n/i);
  const ka = await exchange(b.edge.port, ['GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', 'GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'], { gapMs: 150, expectResponses: 2, settleMs: 100 });
  assert.deepEqual(ka.statuses, [200, 200], 'two requests on one HTTP/1.0 keep-alive connection');
  assert.match(ka.data.toString('latin1'), /connection: keep-alive\r\n/i);
  assert.equal(ka.closed, false);
  const stream = await exchange(b.edge.port, 'GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', { waitMs: 2000 });
  const s = stream.data.toString('latin1');
  assert.doesNotMatch(s, /transfer-encoding/i);
  assert.ok(s.endsWith('\r\n\r\nhello'), s);
  assert.ok(stream.closed, 'the close ends the body');
  // the origin always gets HTTP/1.1 with a Host (the listener's address for a 1.0 request without one)
  assert.match(b.origin.requests[0].line, /^GET \/ HTTP\/1\.1$/);
  assert.ok((b.origin.requests[0].headers.get('host') ?? [''])[0].startsWith('127.0.0.1:'));
});

test('client_head: a head still incomplete at the deadline gets 408, a deadline event and an access line; a silent connection is closed without an answer', async (t) => {
  const b = await startBench({ extra: 'timeouts: { client_head: 1s, client_idle: 1500ms }' });
  t.after(() => b.stop());
  const partial = openClient(b.edge.port);
  partial.s.write('GET /slow HTTP/1.1\r\nHost: sh');
  const after = await partial.closed;
  assert.match(partial.data(), /^HTTP\/1\.1 408 /);
  assert.ok(after >= 900 && after < 2500, `closed after ${after.toFixed(0)} ms`);
  const ev = await nextEvent(b.edge.events, (e) => e.type === 'deadline');
  assert.equal(ev.reason, 'client_head');
  assert.equal(ev.status, 408);
  const silent = openClient(b.edge.port);
  const silentAfter = await silent.closed;
  assert.equal(silent.data(), '', 'nothing sent, nothing answered');
  assert.ok(silentAfter >= 900 && silentAfter < 2500, `silent connection closed after ${silentAfter.toFixed(0)} ms`);
  assert.equal(b.origin.requests.length, 0);
});

test('client_idle: a keep-alive connection is closed after the idle time, not before; a request in time is served', async (t) => {
  const b = await startBench({ extra: 'timeouts: { client_head: 5s, client_idle: 1s }' });
  t.after(() => b.stop());
  const c = openClient(b.edge.port);
  c.s.write('GET /1 HTTP/1.1\r\nHost: shop\r\n\r\n');
  await new Promise((r) => setTimeout(r, 600));
  c.s.write('GET /2 HTTP/1.1\r\nHost: shop\r\n\r\n');
  const after = await c.closed;
  assert.deepEqual(statusesOf(Buffer.from(c.data(), 'latin1')), [200, 200]);
  assert.ok(after >= 1500 && after < 3500, `closed ${after.toFixed(0)} ms after the open (last request at ~600 ms, idle 1 s)`);
});

test('Expect: 100-continue: the client gets 100 Continue, then the answer; the origin gets the body once', async (t) => {
  const b = await startBench();
  t.after(() => b.stop());
  const c = openClient(b.edge.port);
  c.s.write('POST /up HTTP/1.1\r\nHost: shop\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n');
  await waitFor('100 Continue', () => c.data().includes('100 Continue'), 2000);
  assert.match(c.data(), /^HTTP\/1\.1 100 Continue\r\n\r\n$/);
  c.s.write('data');
  // completeResponses counts final answers only (the 100 is not one).
  await waitFor('the final answer after 100 Continue', () => completeResponses(Buffer.from(c.data(), 'latin1')) >= 1, 2000);
  assert.match(c.data(), /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
  c.s.destroy();
  assert.equal(b.origin.requests.length, 1);
  assert.equal(b.origin.requests[0].body.toString(), 'data');
  assert.equal(b.origin.requests[0].headers.get('expect'), undefined, 'Expect is hop-by-hop here: we answered it');
  const bad = await exchange(b.edge.port, 'POST / HTTP/1.1\r\nHost: shop\r\nContent-Length: 1\r\nExpect: teapot\r\n\r\nx');
  assert.deepEqual(bad.statuses, [417]);
});

test('obs-text in a header value reaches the origin byte for byte', async (t) => {
  const b = await startBench();
  t.after(() => b.stop());
  const head = Buffer.concat([Buffer.from('GET /o HTTP/1.1\r\nHost: shop\r\nX-Name: caf'), Buffer.from([0xe9, 0xff, 0x80]), Buffer.from('\r\n\r\n')]);
  const a = await exchange(b.edge.port, head, { expectResponses: 1 });
  assert.deepEqual(a.statuses, [200]);
  const raw = b.origin.requests[0].raw;
  assert.ok(raw.includes(Buffer.concat([Buffer.from('x-name: caf'), Buffer.from([0xe9, 0xff, 0x80]), Buffer.from('\r\n')])), raw.toString('latin1'));
});

test('abort_on_close (default): a client that closes before the answer frees its server slot and leaves the queue; the origin never gets the queued request', async (t) => {
  const origin = await startRawOrigin((r) => (r.target.startsWith('/hang') ? null : 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'));
  t.after(() => origin.close());
  const dir = mkdtempSync(join(tmpdir(), 'pc-http1-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const log = join(dir, 'access.log');
  const px = await startTestEdge(edgeYaml({ limits: CLIENT_LIMITS_OFF, accessLog: log, servers: [{ name: 'raw', url: origin.url, more: 'maxconn: 1' }] }));
  t.after(() => px.stop());
  const pipeline = px.edge.pipeline;
  // A holds the only slot; B queues behind it and closes its side; A closes its side too.
  const a = openClient(px.port);
  a.s.write('GET /hang-a HTTP/1.1\r\nHost: shop\r\n\r\n');
  await origin.waitFor(1);
  const b = openClient(px.port);
  b.s.end('GET /queued-b HTTP/1.1\r\nHost: shop\r\n\r\n');
  await b.closed;
  assert.equal(b.data(), '', 'no answer to a client that left');
  await waitFor('the queued request to leave', () => pipeline.inFlight === 1, 3000);
  a.s.end();
  await a.closed;
  await waitFor('the aborted request to finish', () => pipeline.inFlight === 0, 3000);
  // The slot is free at once (not after timeouts.server): the next client is served.
  const c = await exchange(px.port, 'GET /fine HTTP/1.1\r\nHost: shop\r\n\r\n', { expectResponses: 1 });
  assert.deepEqual(c.statuses, [200]);
  assert.deepEqual(origin.requests.map((r) => r.target), ['/hang-a', '/fine'], 'the queued request never reached the origin');
  await waitFor('three access lines', () => existsSync(log) && readFileSync(log, 'utf8').trim().split('\n').length >= 3, 3000);
  const terms = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { path: string; term: string });
  assert.deepEqual(terms.map((l) => [l.path, l.term]).sort(), [['/fine', '--'], ['/hang-a', 'CH'], ['/queued-b', 'CQ']]);
});

test('abort_on_close: false answers a client that half-closes after its request (HAProxy\'s default)', async (t) => {
  const b = await startBench({ backendMore: 'abort_on_close: false', reply: (r) => (r.target === '/late' ? null : 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok') });
  t.after(() => b.stop());
  const c = openClient(b.edge.port);
  c.s.end('GET /half HTTP/1.1\r\nHost: shop\r\n\r\n');
  await c.closed;
  assert.deepEqual(statusesOf(Buffer.from(c.data(), 'latin1')), [200]);
  // An answer that comes after the half-close still reaches the client.
  const late = openClient(b.edge.port);
  late.s.end('GET /late HTTP/1.1\r\nHost: shop\r\n\r\n');
  await b.origin.waitFor(2);
  b.origin.send(b.origin.requests[1].conn, 'HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nlate');
  await late.closed;
  assert.match(late.data(), /^HTTP\/1\.1 200 [^]*late$/);
});

test('a request refused before its body arrived: the connection closes, the unread body is never parsed as a request', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-http1-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const rules = join(dir, 'deny.rules');
  writeFileSync(rules, 'version 1\nrule "no-post" {\n  when http.path == "/deny"\n  then deny(403)\n}\n');
  const b = await startBench({ extra: `rules: { files: ["${rules}"], watch: false }` });
  t.after(() => b.stop());
  const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: shop\r\n\r\n';
  // The body is announced longer than what is sent: the deny comes while it is still unread.
  const a = await exchange(b.edge.port, `POST /deny HTTP/1.1\r\nHost: shop\r\nContent-Length: ${smuggled.length + 20}\r\n\r\n${smuggled}`, { waitMs: 1500 });
  assert.deepEqual(a.statuses, [403]);
  assert.ok(a.closed, 'closed after the deny');
  assert.equal(b.origin.requests.length, 0, 'nothing reached the origin');
});

test('refused heads count in the client\'s http_err_rate (rules and the admin view see the scanner), with guard events that name the reason', async (t) => {
  const b = await startBench();
  t.after(() => b.stop());
  for (const bad of ['GET / HTTP/1.1\r\nHost : x\r\n\r\n', 'GET / HTTP/2.0\r\nHost: x\r\n\r\n', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n']) {
    const a = await exchange(b.edge.port, bad);
    assert.ok(a.closed && a.statuses.length === 1 && a.statuses[0] >= 400, JSON.stringify(a.statuses));
  }
  const entry = b.edge.edge.guard.table.entry('127.0.0.1', b.edge.edge.pipeline.clock.now());
  assert.ok(entry !== null && entry.http_err_rate === 3, JSON.stringify(entry));
  const guards = b.edge.events.filter((e) => e.type === 'guard').map((e) => [e.status, e.term]);
  assert.deepEqual(guards, [[400, 'PR'], [505, 'PR'], [501, 'PR']], 'a 505 or 501 for a bad head is the client\'s fault: guard events, not internal errors');
});

test('bytes kept between reads stay intact while other connections read: a body sent in pieces and a head split across packets reach the origin byte for byte', async (t) => {
  // Client sockets read into one shared buffer (edge/http1/shared-read.ts): whatever a connection keeps
  // past a read (body bytes held for the upstream, a partial head) must be its own copy, not a view that
  // the next read of another connection overwrites.
  const b = await startBench({ reply: (r) => `HTTP/1.1 200 OK\r\ncontent-length: ${r.target.length}\r\n\r\n${r.target}` });
  t.after(() => b.stop());
  const body = Buffer.alloc(100_000);
  for (let i = 0; i < body.length; i++) body[i] = 97 + (i % 23);
  const a = openClient(b.edge.port);
  t.after(() => a.s.destroy());
  await new Promise<void>((r) => a.s.once('connect', () => r()));
  const other = async (n: number): Promise<void> => {
    const r = await exchange(b.edge.port, `GET /other${n} HTTP/1.1\r\nHost: shop\r\nX-Fill: ${'z'.repeat(4000)}\r\n\r\n`, { expectResponses: 1 });
    assert.deepEqual(r.statuses, [200]);
  };
  a.s.write(`POST /body HTTP/1.1\r\nHost: shop\r\nContent-Length: ${body.length}\r\n\r\n`);
  a.s.write(body.subarray(0, 30_000));
  await other(1);
  a.s.write(body.subarray(30_000));
  a.s.write('GET /af');
  await waitFor('the POST answered', () => a.data().includes('/body'), 5000);
  await other(2);
  a.s.write('ter HTTP/1.1\r\nHost: shop\r\n\r\n');
  await waitFor('the split GET answered', () => a.data().includes('/after'), 5000);
  const seen = b.origin.requests.filter((r) => r.target === '/body' || r.target === '/after');
  assert.deepEqual(seen.map((r) => r.target), ['/body', '/after']);
  assert.ok(seen[0].body.equals(body), 'the body reaches the origin unchanged');
  assert.deepEqual(b.origin.framingErrors, []);
});
