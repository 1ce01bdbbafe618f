// Why: someone who types http://shop:443/ (or a monitor with the wrong scheme) used to get a closed
// connection and nothing else: no answer, no access line. nginx answers "400 The plain HTTP request
// was sent to HTTPS port"; so do we, in clear text, with a guard event, an access line and an error on
// the client's record — while a real TLS client on the same listener is served as before and bytes
// that are neither TLS nor HTTP are still just closed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startOriginAndEdge, CLIENT_LIMITS_OFF } from '../harness/edge.js';
import { waitFor } from '../harness/wait.js';
import { createTestCa } from './certs.js';

interface RawAnswer { text: string; ms: number; closed: boolean }

/** Sends `bytes` over plain TCP and collects everything until the server closes (or 3 s); `ms`: from the write to the first byte back. */
function rawExchange(port: number, bytes: string | Buffer): Promise<RawAnswer> {
  return new Promise((resolve) => {
    let t0 = 0;
    let text = '';
    let firstMs = -1;
    const s = tcpConnect(port, '127.0.0.1', () => { t0 = Date.now(); s.write(bytes); });
    const timer = setTimeout(() => { s.destroy(); resolve({ text, ms: firstMs, closed: false }); }, 3000);
    s.on('data', (d: Buffer) => { if (firstMs < 0) firstMs = Date.now() - t0; text += d.toString('latin1'); });
    s.on('error', () => {});
    s.on('close', () => { clearTimeout(timer); resolve({ text, ms: firstMs, closed: true }); });
  });
}

test('plain HTTP to a TLS listener: 400 in clear text with Connection: close, a guard event, an access line and an error on the client\'s record; TLS clients still served; garbage still just closed', async (t) => {
  const ca = createTestCa(t);
  const a = ca.issue('a', ['shop.test']);
  const log = join(ca.dir, 'access.log');
  const { o, px } = await startOriginAndEdge(t, { limits: CLIENT_LIMITS_OFF, accessLog: log, listener: `tls: { cert: "${a.cert}", key: "${a.key}" }` });

  const r = await rawExchange(px.port, 'GET /cart HTTP/1.1\r\nHost: shop.test\r\n\r\n');
  assert.ok(r.closed, 'the connection is closed after the answer');
  assert.ok(r.ms >= 0 && r.ms < 100, `answered within 100 ms (${r.ms} ms)`);
  const [head, body] = r.text.split('\r\n\r\n');
  const lines = head.split('\r\n');
  assert.equal(lines[0], 'HTTP/1.1 400 Bad Request');
  assert.ok(lines.includes('connection: close'), head);
  assert.ok(lines.includes(`content-length: ${body.length}`), head);
  assert.match(body, /plain HTTP request was sent to an HTTPS port/);
  assert.ok(!/strict-transport-security/i.test(head), 'no HSTS on a plain-HTTP answer');

  const ev = await px.collector.expect({ type: 'guard', reason: 'plain_http_on_tls_port', term: 'PR', status: 400 });
  assert.equal((ev.client as { ip: string }).ip, '127.0.0.1');
  const entry = px.edge.guard.table.entry('127.0.0.1', px.edge.pipeline.clock.now());
  assert.ok(entry !== null && entry.http_err_rate === 1, `one error on the client's record: ${JSON.stringify(entry)}`);
  assert.equal(o.seen.length, 0, 'nothing reached the origin');

  // A real TLS client on the same listener is served.
  const tlsAnswer = await new Promise<string>((resolve, reject) => {
    const s = tlsConnect({ port: px.port, host: '127.0.0.1', servername: 'shop.test', ca: ca.ca }, () => s.write('GET /hello HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n'));
    let got = '';
    s.on('data', (d: Buffer) => { got += d.toString(); });
    s.on('close', () => resolve(got));
    s.on('error', reject);
  });
  assert.match(tlsAnswer, /^HTTP\/1\.1 200 /);
  assert.match(tlsAnswer, /hello from web1/);

  // Neither TLS nor HTTP: closed without an answer, as before (a failed handshake).
  const g = await rawExchange(px.port, Buffer.from([0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09]));
  assert.ok(g.closed);
  assert.equal(g.text, '', 'no answer to garbage');
  await waitFor('a tls_handshake_failed event for the garbage', () => px.events.find((e) => e.type === 'guard' && typeof e.reason === 'string' && e.reason.startsWith('tls_handshake_failed')));

  // From outside: curl with the wrong scheme gets the answer (when curl is installed).
  // (Asynchronous: the edge runs in this process.)
  const curlOut = await new Promise<string | null>((resolve, reject) => {
    execFile('curl', ['-s', '-i', '--max-time', '3', `http://127.0.0.1:${px.port}/`], { encoding: 'latin1' }, (err, out) => {
      if (err === null) resolve(out);
      else if ((err as NodeJS.ErrnoException).code === 'ENOENT') resolve(null);
      else reject(err);
    });
  });
  if (curlOut !== null) assert.match(curlOut, /^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*plain HTTP request was sent to an HTTPS port/);

  // The access lines: the plain-HTTP requests (400, PR) and the TLS request (200); the garbage has none.
  await waitFor('the access lines', () => existsSync(log) && readFileSync(log, 'utf8').trim().split('\n').length >= (curlOut !== null ? 3 : 2), 3000);
  const access = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const plain = access.filter((l) => l.status === 400);
  assert.equal(plain.length, curlOut !== null ? 2 : 1, JSON.stringify(access));
  for (const l of plain) {
    assert.equal(l.term, 'PR');
    assert.equal(l.method, '<BADREQ>');
  }
  assert.equal(access.filter((l) => l.status === 200).length, 1);
});
