// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// Translation of HTTP/2 requests into the pipeline's view (RFC 9113 §8): what the rules and the
// origin see, what is refused before any stage, and the access line's protocol.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { HOST, curl, h2client, h2get, startH2Edge } from './setup.js';
import { RawH2, T, END_HEADERS, END_STREAM, frame, requestHeaders } from './raw.js';

test('rules see http.version "2"; the access line says HTTP/2.0; HTTP/1.1 still answers on the same TLS listener', async (t) => {
  const dir = (await import('node:fs')).mkdtempSync('/tmp/pc-h2-');
  t.after(() => (import('node:fs')).then((fs) => fs.rmSync(dir, { recursive: true, force: true })));
  const rules = join(dir, 'v.rules');
  writeFileSync(rules, 'version 1\nrule "h2-only-path" {\n  when http.path == "/h2-denied" and http.version == "2"\n  then deny(403)\n}\n');
  const access = join(dir, 'access.log');
  const e = await startH2Edge(t, { more: `rules: { files: ["${rules}"], watch: false }`, accessLog: access });
  const c = h2client(e);
  t.after(() => c.close());
  assert.equal((await h2get(c, '/h2-denied')).status, 403, 'the rule matched http.version "2"');
  assert.equal((await h2get(c, '/fine')).status, 200);
  // HTTP/1.1 over the same listener (ALPN http/1.1): the rule does not match.
  const r = await curl(e, '/h2-denied', ['--http1.1', '-o', '/dev/null', '-w', '%{http_version} %{http_code}']);
  assert.equal(r.stdout.toString(), '1.1 200');
  await e.px.stop();
  const lines = readFileSync(access, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { proto: string; status: number; path: string; sni: string | null });
  assert.deepEqual(lines.map((l) => [l.proto, l.status, l.sni]), [['HTTP/2.0', 403, HOST], ['HTTP/2.0', 200, HOST], ['HTTP/1.1', 200, HOST]]);
});

test(':authority and a differing Host → 400; :authority ≠ TLS SNI → 421 (configurable); neither reaches the origin', async (t) => {
  const e = await startH2Edge(t);
  const c = h2client(e);
  t.after(() => c.close());
  const bad = await h2get(c, '/x', { ':authority': `${HOST}:${e.port}`, host: 'evil.test' });
  assert.equal(bad.status, 400);
  assert.match(bad.body, /:authority and Host differ/);
  const other = await h2get(c, '/x', { ':authority': `other.test:${e.port}` });
  assert.equal(other.status, 421, 'the certificate covers other.test, but this connection was opened for shop.test');
  const same = await h2get(c, '/x', { ':authority': `${HOST}:${e.port}`, host: `${HOST}:${e.port}` });
  assert.equal(same.status, 200);
  assert.equal(e.o.seen.length, 1);
  const ev = e.px.events.filter((x) => x.type === 'guard').map((x) => String((x as { reason?: string }).reason));
  assert.ok(ev.some((r) => r.includes(':authority and Host differ')), ev.join('\n'));
  assert.ok(ev.some((r) => r.includes('differs from the TLS server name')), ev.join('\n'));
});

test('sni_mismatch: allow lets a coalesced connection through', async (t) => {
  const e = await startH2Edge(t, { more: 'http2: { sni_mismatch: allow }' });
  const c = h2client(e);
  t.after(() => c.close());
  assert.equal((await h2get(c, '/x', { ':authority': `other.test:${e.port}` })).status, 200);
});

test('connection-specific fields, te other than trailers, and DATA beyond content-length are refused; the origin sees none', async (t) => {
  const e = await startH2Edge(t);
  const auth = `${HOST}:${e.port}`;
  const cases: [string, Buffer[]][] = [
    ['connection', [frame(T.HEADERS, END_HEADERS | END_STREAM, 1, requestHeaders(auth, '/a', 'GET', [['connection', 'close']]))]],
    ['transfer-encoding', [frame(T.HEADERS, END_HEADERS | END_STREAM, 1, requestHeaders(auth, '/b', 'GET', [['transfer-encoding', 'chunked']]))]],
    ['upgrade', [frame(T.HEADERS, END_HEADERS | END_STREAM, 1, requestHeaders(auth, '/c', 'GET', [['upgrade', 'websocket']]))]],
    ['te', [frame(T.HEADERS, END_HEADERS | END_STREAM, 1, requestHeaders(auth, '/d', 'GET', [['te', 'gzip']]))]],
    ['keep-alive', [frame(T.HEADERS, END_HEADERS | END_STREAM, 1, requestHeaders(auth, '/e', 'GET', [['keep-alive', '5']]))]],
    ['content-length', [frame(T.HEADERS, END_HEADERS, 1, requestHeaders(auth, '/f', 'POST', [['content-length', '3']])), frame(T.DATA, END_STREAM, 1, Buffer.from('too long'))]],
  ];
  for (const [what, frames] of cases) {
    const raw = await RawH2.open(e.port, HOST, e.ca.ca);
    raw.write(Buffer.concat(frames));
    const done = await raw.until((f) => f.some((x) => x.stream === 1 && (x.type === T.RST_STREAM || (x.type === T.HEADERS))));
    assert.ok(done, `${what}: an answer on stream 1`);
    const rst = raw.frames.find((x) => x.stream === 1 && x.type === T.RST_STREAM);
    const status = raw.status(1);
    assert.ok((rst !== undefined && rst.payload.readUInt32BE(0) === 1) || status === 400, `${what}: RST_STREAM PROTOCOL_ERROR or 400 (got ${status}, rst ${rst?.payload.readUInt32BE(0)})`);
    raw.close();
  }
  // A request that is fine on the same kind of connection is served.
  const ok = await RawH2.open(e.port, HOST, e.ca.ca);
  ok.write(frame(T.HEADERS, END_HEADERS | END_STREAM, 1, requestHeaders(auth, '/ok', 'GET', [['te', 'trailers']])));
  assert.ok(await ok.until(() => ok.status(1) !== null));
  assert.equal(ok.status(1), 200);
  ok.close();
  assert.deepEqual(e.o.seen.map((s) => s.url), ['/ok']);
});

test('listen[].http2: false offers only http/1.1', async (t) => {
  const e = await startH2Edge(t, { listener: 'http2: false' });
  const alpn = await new Promise<string | false>((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port: e.port, servername: HOST, ca: e.ca.ca, ALPNProtocols: ['h2', 'http/1.1'] }, () => { resolve(s.alpnProtocol ?? false); s.destroy(); });
    s.on('error', reject);
  });
  assert.equal(alpn, 'http/1.1');
});
