// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// HTTP/2 with the rest of the edge: the advertised concurrent streams follow limits.client.in_flight
// (a browser queues instead of meeting 429s), a refused stream gets its access line, and h2 behind
// accept_proxy takes the client address from the PROXY header.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { connect as h2connect } from 'node:http2';
import { HOST, h2client, h2get, run, startH2Edge } from './setup.js';
import { RawH2, T, END_HEADERS, END_STREAM, frame, requestHeaders } from './raw.js';
import { proxyV1, proxyV2 } from '../harness/proxy-header.js';

function tmpDir(t: { after(fn: () => unknown): void }): string {
  const dir = mkdtempSync('/tmp/pc-h2b-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface Line { client: string; method: string; status: number; term: string; proto: string; path: string }
const accessLines = (file: string): Line[] => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line);

test('default limits: SETTINGS advertises min(100, limits.client.in_flight) = 32; 60 concurrent streams on one connection all get 200 (the client queues), none 429', async (t) => {
  // Only the connection-level in-process guard off (the client comes from 127.0.0.1 like every test);
  // limits.client keeps its defaults: in_flight 32.
  const e = await startH2Edge(t, { limits: 'connection: { in_process: off }' });
  // What the server advertises, as nghttp prints it.
  const r = await run('nghttp', ['-v', '-n', '-H', `:authority: ${HOST}:${e.port}`, `https://127.0.0.1:${e.port}/x`]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout.toString(), /recv SETTINGS frame[\s\S]*?\[SETTINGS_MAX_CONCURRENT_STREAMS\(0x03\):32\]/);
  // A browser-like client (nghttp2 under node:http2): once the server's SETTINGS arrived, 60 requests
  // at once; the client keeps streams beyond 32 queued until one ends, as Chrome and Firefox do.
  const c = h2client(e);
  t.after(() => c.close());
  const remote = await new Promise<number | undefined>((resolve) => c.once('remoteSettings', (s) => resolve(s.maxConcurrentStreams)));
  assert.equal(remote, 32);
  // /slow/200: each stream stays in flight long enough for the limit to be reached.
  const statuses = await Promise.all(Array.from({ length: 60 }, (_v, i) => h2get(c, `/slow/200?n=${i}`).then((x) => x.status)));
  assert.deepEqual([...new Set(statuses)], [200], `no 429: ${statuses.join(' ')}`);
  assert.equal(e.o.seen.length, 61);
  assert.equal(e.px.events.filter((x) => x.type === 'guard').length, 0, 'neither 429s nor refused streams');
  // nghttp -m 60 opens its 60 streams before our SETTINGS reaches it (the opening race): the excess is
  // refused (REFUSED_STREAM, retryable, never processed), every stream it was allowed is 200, none 429.
  const n = await run('nghttp', ['-v', '-n', '-m', '60', '-H', `:authority: ${HOST}:${e.port}`, `https://127.0.0.1:${e.port}/slow/200`], 60_000);
  const out = n.stdout.toString();
  const ok = [...out.matchAll(/recv \(stream_id=\d+\) :status: (\d+)/g)].map((m) => m[1]);
  const refused = (out.match(/error_code=REFUSED_STREAM/g) ?? []).length;
  assert.deepEqual([...new Set(ok)], ['200'], out.slice(-2000));
  assert.equal(ok.length + refused, 60, `${ok.length} answered + ${refused} refused`);
  assert.ok(ok.length >= 32, `at least the advertised 32 served (${ok.length})`);
});

test('max_concurrent_streams set explicitly wins over the in_flight default; in_flight 0 (off) advertises 100', async (t) => {
  const a = await startH2Edge(t, { limits: 'connection: { in_process: off }', more: 'http2: { max_concurrent_streams: 50 }' });
  const b = await startH2Edge(t, { limits: 'client: { in_flight: 0 }, connection: { in_process: off }' });
  for (const [e, want] of [[a, 50], [b, 100]] as const) {
    const r = await run('nghttp', ['-v', '-n', '-H', `:authority: ${HOST}:${e.port}`, `https://127.0.0.1:${e.port}/x`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.toString(), new RegExp(`SETTINGS_MAX_CONCURRENT_STREAMS\\(0x03\\):${want}\\]`));
  }
});

test('a stream refused beyond max_concurrent_streams gets one access line: status 0 (no response), term PR, proto HTTP/2.0', async (t) => {
  const access = join(tmpDir(t), 'access.log');
  const e = await startH2Edge(t, { more: 'http2: { max_concurrent_streams: 2 }', accessLog: access });
  const raw = await RawH2.open(e.port, HOST, e.ca.ca);
  raw.write(Buffer.concat([1, 3, 5, 7].map((id) => frame(T.HEADERS, END_HEADERS | END_STREAM, id, requestHeaders(`${HOST}:${e.port}`, `/slow/300?s=${id}`)))));
  assert.ok(await raw.until((f) => f.filter((x) => x.type === T.RST_STREAM && x.payload.readUInt32BE(0) === 7).length >= 2), 'streams 5 and 7 refused');
  assert.ok(await raw.until(() => raw.status(1) === 200 && raw.status(3) === 200), 'streams 1 and 3 answered');
  raw.close();
  await e.px.stop();
  const lines = accessLines(access);
  const refused = lines.filter((l) => l.status === 0);
  assert.equal(refused.length, 2, JSON.stringify(lines));
  for (const l of refused) {
    assert.equal(l.term, 'PR');
    assert.equal(l.proto, 'HTTP/2.0');
    assert.equal(l.client, '127.0.0.1');
  }
  assert.equal(lines.filter((l) => l.status === 200).length, 2);
  assert.equal(lines.length, 4, 'one line per stream the client opened');
});

test('accept_proxy + TLS + ALPN h2: the PROXY v1/v2 client address reaches the rules, the origin and the access line', async (t) => {
  const dir = tmpDir(t);
  const rules = join(dir, 'p.rules');
  writeFileSync(rules, 'version 1\nrule "proxied-client" { when ip.src == 192.0.2.44 then deny(403) }\n');
  const access = join(dir, 'access.log');
  const e = await startH2Edge(t, {
    listener: 'accept_proxy: true',
    more: `trusted_proxies: [127.0.0.0/8]\nrules: { files: ["${rules}"], watch: false }`,
    accessLog: access,
  });
  const viaProxy = async (header: Buffer, path: string): Promise<{ status: number; alpn: string | false }> => {
    let alpn: string | false = false;
    const c = h2connect(`https://${HOST}:${e.port}`, {
      createConnection: () => {
        const sock = connect(e.port, '127.0.0.1');
        // The PROXY header and the ClientHello in one segment, as balancers send them.
        sock.cork();
        sock.write(header);
        const s = tlsConnect({ socket: sock, servername: HOST, ca: e.ca.ca, ALPNProtocols: ['h2'] }, () => { alpn = s.alpnProtocol ?? false; });
        process.nextTick(() => sock.uncork());
        return s;
      },
    });
    try {
      const r = await h2get(c, path);
      return { status: r.status, alpn };
    } finally {
      c.close();
    }
  };
  const v2 = await viaProxy(proxyV2({ src: '192.0.2.44', dst: '127.0.0.1', srcPort: 5555, dstPort: 443 }), '/v2');
  assert.deepEqual(v2, { status: 403, alpn: 'h2' }, 'the rule saw ip.src from the v2 header');
  const v1 = await viaProxy(proxyV1({ proto: 'TCP4', src: '198.51.100.7', dst: '127.0.0.1', srcPort: 40000, dstPort: 443 }), '/v1');
  assert.deepEqual(v1, { status: 200, alpn: 'h2' });
  assert.equal(e.o.seen.length, 1, 'the denied request never reached the origin');
  assert.equal(e.o.seen[0].headers['x-forwarded-for'], '198.51.100.7');
  await e.px.stop();
  const lines = accessLines(access);
  assert.deepEqual(lines.map((l) => [l.client, l.status, l.proto, l.path]), [['192.0.2.44', 403, 'HTTP/2.0', '/v2'], ['198.51.100.7', 200, 'HTTP/2.0', '/v1']]);
});
