// Why: request smuggling needs two parsers that disagree about where a request ends. uWS 20.43's
// parser is lax (docs/http-conformance.md), so every malformed or ambiguous request below is sent
// over a raw socket and we assert both what the client sees AND what reached the origin: nothing,
// or exactly one request in strict, re-serialised HTTP/1.1 framing. Each row is one entry of the
// conformance table in docs/http-conformance.md (the `id` column).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { exchange, startBench, clientHeaderLines, type Answer, type Bench } from './helpers.js';
import type { RawOriginRequest } from '../harness/raw-origin.js';

type Expect =
  /** uWS keeps the connection open without a byte (its parser waits; closes at its 8–12 s timeout). */
  | { kind: 'hang' }
  /** Closed with no response. */
  | { kind: 'close' }
  /** Portcullis answers `status` and closes the connection. */
  | { kind: 'reject'; status: number; reason?: RegExp }
  /** Forwarded: the client gets the origin's 200; `check` inspects the one request the origin got. */
  | { kind: 'forward'; check?: (r: RawOriginRequest, a: Answer) => void; responses?: number };

/** origin: 'none' = not one byte of it; 'atMostFirst' = never the pipelined/smuggled one; 'streaming' = body streamed before uWS finished parsing it. */
interface Case { id: string; name: string; bytes: (p: string) => string | Buffer | (string | Buffer)[]; expect: Expect; origin?: 'none' | 'atMostFirst' | 'streaming' }

const H = 'Host: shop\r\n';
const bin = (...parts: (string | number[])[]): Buffer => Buffer.concat(parts.map((x) => (typeof x === 'string' ? Buffer.from(x, 'latin1') : Buffer.from(x))));
const x = (n: number): string => 'x'.repeat(n);
const headers = (n: number): string => Array.from({ length: n }, (_, i) => `X-H${i}: ${i}\r\n`).join('');
const post = (p: string, extra: string, body: string): string => `POST ${p} HTTP/1.1\r\n${H}${extra}\r\n${body}`;
const chunked = (p: string, body: string): string => post(p, 'Transfer-Encoding: chunked\r\n', body);

function header(r: RawOriginRequest, name: string): string[] { return r.headers.get(name) ?? []; }

const CASES: Case[] = [
  // --- uWS itself never lets these reach JS: no response, connection held until its timeout ---
  { id: 'F01', name: 'HTTP/1.0 request line', bytes: (p) => `GET ${p} HTTP/1.0\r\n${H}\r\n`, expect: { kind: 'hang' } },
  { id: 'F02', name: 'HTTP/1.1 without Host', bytes: (p) => `GET ${p} HTTP/1.1\r\n\r\n`, expect: { kind: 'hang' } },
  { id: 'F03', name: 'bare LF line endings', bytes: (p) => `GET ${p} HTTP/1.1\nHost: shop\n\n`, expect: { kind: 'hang' } },
  { id: 'F04', name: 'bare LF inside the header block', bytes: (p) => `GET ${p} HTTP/1.1\r\nHost: shop\nX-A: 1\r\n\r\n`, expect: { kind: 'hang' } },
  { id: 'F05', name: 'obs-fold continuation line', bytes: (p) => `GET ${p} HTTP/1.1\r\n${H}X-A: 1\r\n  folded\r\n\r\n`, expect: { kind: 'hang' } },
  { id: 'F06', name: 'whitespace between field name and colon', bytes: (p) => `GET ${p} HTTP/1.1\r\n${H}X-A : 1\r\n\r\n`, expect: { kind: 'hang' } },
  { id: 'F07', name: '`_` in a field name', bytes: (p) => `GET ${p} HTTP/1.1\r\n${H}X_A: 1\r\n\r\n`, expect: { kind: 'hang' } },
  { id: 'F08', name: '`.` in a field name', bytes: (p) => `GET ${p} HTTP/1.1\r\n${H}X.A: 1\r\n\r\n`, expect: { kind: 'hang' } },
  { id: 'F09', name: 'NUL in a field value', bytes: (p) => `GET ${p} HTTP/1.1\r\n${H}X-A: a\0b\r\n\r\n`, expect: { kind: 'hang' } },
  { id: 'F10', name: 'bare CR in a field value', bytes: (p) => `GET ${p} HTTP/1.1\r\n${H}X-A: a\rb\r\n\r\n`, expect: { kind: 'hang' } },
  { id: 'F11', name: '0x01 in a field value', bytes: (p) => `GET ${p} HTTP/1.1\r\n${H}X-A: a\x01b\r\n\r\n`, expect: { kind: 'hang' } },
  { id: 'F12', name: 'space inside the request target', bytes: (p) => `GET ${p}a b HTTP/1.1\r\n${H}\r\n`, expect: { kind: 'hang' } },
  { id: 'F13', name: 'absolute-form target', bytes: (p) => `GET http://shop${p} HTTP/1.1\r\n${H}\r\n`, expect: { kind: 'hang' } },
  { id: 'F14', name: 'absolute-form target whose host disagrees with Host', bytes: (p) => `GET http://evil${p} HTTP/1.1\r\n${H}\r\n`, expect: { kind: 'hang' } },
  { id: 'F15', name: 'OPTIONS * (asterisk-form)', bytes: () => `OPTIONS * HTTP/1.1\r\n${H}\r\n`, expect: { kind: 'hang' } },
  { id: 'F16', name: 'CONNECT authority-form', bytes: () => 'CONNECT shop:443 HTTP/1.1\r\nHost: shop:443\r\n\r\n', expect: { kind: 'hang' } },
  { id: 'F17', name: '49 header fields (uWS limit is 48 incl. Host)', bytes: (p) => `GET ${p} HTTP/1.1\r\n${H}${headers(48)}\r\n`, expect: { kind: 'hang' } },
  { id: 'F18', name: 'chunk extension `5;a=b`', bytes: (p) => chunked(p, '5;a=b\r\nhello\r\n0\r\n\r\n'), expect: { kind: 'hang' }, origin: 'streaming' },
  { id: 'F19', name: 'header line without a colon', bytes: (p) => `GET ${p} HTTP/1.1\r\n${H}NoColon\r\n\r\n`, expect: { kind: 'hang' } },
  { id: 'F20', name: 'UTF-8 bytes in a field name', bytes: (p) => bin(`GET ${p} HTTP/1.1\r\n${H}X`, [0xc3, 0xa9], ': 1\r\n\r\n'), expect: { kind: 'hang' } },
  { id: 'F21', name: 'TLS ClientHello on the plain-text port', bytes: () => Buffer.from(`160301002a010000260303${'00'.repeat(32)}000000`, 'hex'), expect: { kind: 'hang' } },
  { id: 'F22', name: 'HTTP/2 prior-knowledge preface', bytes: () => 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', expect: { kind: 'hang' } },
  { id: 'F23', name: 'HTTP/1.2 version', bytes: (p) => `GET ${p} HTTP/1.2\r\n${H}\r\n`, expect: { kind: 'hang' } },
  // --- uWS closes at once, no response ---
  { id: 'F24', name: 'lower-case method `get`', bytes: (p) => `get ${p} HTTP/1.1\r\n${H}\r\n`, expect: { kind: 'close' } },
  { id: 'F25', name: 'custom method PURGE', bytes: (p) => `PURGE ${p} HTTP/1.1\r\n${H}\r\n`, expect: { kind: 'close' } },
  { id: 'F26', name: 'Content-Length with Transfer-Encoding', bytes: (p) => post(p, 'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n'), expect: { kind: 'close' } },
  { id: 'F27', name: 'Content-Length: 5, 5', bytes: (p) => post(p, 'Content-Length: 5, 5\r\n', 'hello'), expect: { kind: 'close' } },
  { id: 'F28', name: 'Content-Length: +5', bytes: (p) => post(p, 'Content-Length: +5\r\n', 'hello'), expect: { kind: 'close' } },
  { id: 'F29', name: 'Content-Length with 10 digits', bytes: (p) => post(p, 'Content-Length: 1000000000\r\n', 'abc'), expect: { kind: 'close' } },
  { id: 'F30', name: 'chunk size beyond 64 bits', bytes: (p) => chunked(p, 'ffffffffffffffffff\r\nabc\r\n0\r\n\r\n'), expect: { kind: 'close' } },
  { id: 'F31', name: '8 KB head split over three reads', bytes: (p) => [`GET ${p} HTTP/1.1\r\n${H}X-Big: ${x(3000)}`, x(3000), `${x(2000)}\r\n\r\n`], expect: { kind: 'close' } },
  // --- uWS accepts, Portcullis rejects (400/413/414/431 + Connection: close) ---
  { id: 'F32', name: 'empty Host', bytes: (p) => `GET ${p} HTTP/1.1\r\nHost:\r\n\r\n`, expect: { kind: 'reject', status: 400, reason: /Host/ } },
  { id: 'F33', name: 'two Host headers', bytes: (p) => `GET ${p} HTTP/1.1\r\nHost: shop\r\nHost: evil\r\n\r\n`, expect: { kind: 'reject', status: 400, reason: /several Host/ } },
  { id: 'F34', name: 'two differing Content-Length', bytes: (p) => post(p, 'Content-Length: 3\r\nContent-Length: 5\r\n', 'abcde'), expect: { kind: 'reject', status: 400, reason: /several Content-Length/ } },
  { id: 'F35', name: 'two identical Content-Length', bytes: (p) => post(p, 'Content-Length: 3\r\nContent-Length: 3\r\n', 'abc'), expect: { kind: 'reject', status: 400, reason: /several Content-Length/ } },
  { id: 'F36', name: 'empty Content-Length', bytes: (p) => post(p, 'Content-Length:\r\n', ''), expect: { kind: 'reject', status: 400, reason: /plain decimal/ } },
  { id: 'F37', name: 'Transfer-Encoding: gzip', bytes: (p) => post(p, 'Transfer-Encoding: gzip\r\n', '0\r\n\r\n'), expect: { kind: 'reject', status: 400, reason: /other than chunked/ } },
  { id: 'F38', name: 'Transfer-Encoding: xchunked', bytes: (p) => post(p, 'Transfer-Encoding: xchunked\r\n', '0\r\n\r\n'), expect: { kind: 'reject', status: 400, reason: /other than chunked/ } },
  { id: 'F39', name: 'Transfer-Encoding: gzip, chunked', bytes: (p) => post(p, 'Transfer-Encoding: gzip, chunked\r\n', '0\r\n\r\n'), expect: { kind: 'reject', status: 400, reason: /other than chunked/ } },
  { id: 'F40', name: 'two Transfer-Encoding: chunked', bytes: (p) => post(p, 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n'), expect: { kind: 'reject', status: 400, reason: /several Transfer-Encoding/ } },
  { id: 'F41', name: 'Transfer-Encoding: chunked with an empty Content-Length', bytes: (p) => post(p, 'Transfer-Encoding: chunked\r\nContent-Length:\r\n', '0\r\n\r\n'), expect: { kind: 'reject', status: 400, reason: /Content-Length with Transfer-Encoding/ } },
  { id: 'F42', name: 'DEL in a field value', bytes: (p) => `GET ${p} HTTP/1.1\r\n${H}X-A: a\x7fb\r\n\r\n`, expect: { kind: 'reject', status: 400, reason: /header x-a/ } },
  { id: 'F43', name: 'UTF-8 U+010D U+010A in a value (would leave as CR LF: header injection)', bytes: (p) => bin(`GET ${p} HTTP/1.1\r\n${H}X-A: a`, [0xc4, 0x8d, 0xc4, 0x8a], 'X-Injected: 1\r\n\r\n'), expect: { kind: 'reject', status: 400, reason: /header x-a/ } },
  { id: 'F44', name: 'invalid UTF-8 (0xE9 0xFF) in a value', bytes: (p) => bin(`GET ${p} HTTP/1.1\r\n${H}X-A: a`, [0xe9, 0xff], 'b\r\n\r\n'), expect: { kind: 'reject', status: 400, reason: /header x-a/ } },
  { id: 'F45', name: 'DEL in the request target', bytes: (p) => `GET ${p}a\x7fb HTTP/1.1\r\n${H}\r\n`, expect: { kind: 'reject', status: 400, reason: /request target/ } },
  { id: 'F46', name: 'UTF-8 U+010D U+010A in the target (would split the request line)', bytes: (p) => bin(`GET ${p}a`, [0xc4, 0x8d, 0xc4, 0x8a], 'X-Injected:', [0xc4, 0xa0], `1 HTTP/1.1\r\n${H}\r\n`), expect: { kind: 'reject', status: 400, reason: /request target/ } },
  { id: 'F47', name: 'fragment in the target', bytes: (p) => `GET ${p}admin#x HTTP/1.1\r\n${H}\r\n`, expect: { kind: 'reject', status: 400, reason: /request target/ } },
  { id: 'F48', name: 'Host with a space', bytes: (p) => `GET ${p} HTTP/1.1\r\nHost: shop evil\r\n\r\n`, expect: { kind: 'reject', status: 400, reason: /Host is not/ } },
  { id: 'F49', name: 'Host with userinfo `@`', bytes: (p) => `GET ${p} HTTP/1.1\r\nHost: user@evil\r\n\r\n`, expect: { kind: 'reject', status: 400, reason: /Host is not/ } },
  { id: 'F50', name: 'Host with a path `/`', bytes: (p) => `GET ${p} HTTP/1.1\r\nHost: shop/evil\r\n\r\n`, expect: { kind: 'reject', status: 400, reason: /Host is not/ } },
  { id: 'F51', name: '64 KB head in one read (uWS limit bypass)', bytes: (p) => `GET ${p} HTTP/1.1\r\n${H}X-Big: ${x(64000)}\r\n\r\n`, expect: { kind: 'reject', status: 431 } },
  { id: 'F52', name: '10 KB request target', bytes: (p) => `GET ${p}${x(10000)} HTTP/1.1\r\n${H}\r\n`, expect: { kind: 'reject', status: 414 } },
  { id: 'F53', name: 'Content-Length above limits.request.max_body', bytes: (p) => post(p, 'Content-Length: 2000\r\n', 'a'), expect: { kind: 'reject', status: 413 } },
  // --- ambiguous requests with something pipelined behind them: nothing behind a reject is parsed ---
  { id: 'F54', name: 'two Content-Length (3, 40) with a GET hidden in the "body"', bytes: (p) => post(p, 'Content-Length: 3\r\nContent-Length: 40\r\n', `abcGET ${p}smuggled HTTP/1.1\r\n${H}\r\n`), expect: { kind: 'close' }, origin: 'none' },
  { id: 'F55', name: 'two Host headers, then a pipelined GET', bytes: (p) => `GET ${p} HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\nGET ${p}smuggled HTTP/1.1\r\n${H}\r\n`, expect: { kind: 'close' }, origin: 'none' },
  { id: 'F56', name: 'empty Content-Length, then a pipelined GET', bytes: (p) => `POST ${p} HTTP/1.1\r\n${H}Content-Length:\r\n\r\nGET ${p}smuggled HTTP/1.1\r\n${H}\r\n`, expect: { kind: 'close' }, origin: 'none' },
  // --- uWS lax, but Portcullis re-frames: the origin gets one strictly framed request ---
  { id: 'F57', name: 'TE.TE: `0\\r\\nXX` then a smuggled GET in the same packet', bytes: (p) => chunked(p, `5\r\nhello\r\n0\r\nXXGET ${p}smuggled HTTP/1.1\r\n${H}\r\n`), expect: { kind: 'close' }, origin: 'atMostFirst' },
  { id: 'F58', name: 'two pipelined GETs in one packet', bytes: (p) => `GET ${p} HTTP/1.1\r\n${H}\r\nGET ${p}second HTTP/1.1\r\n${H}\r\n`, expect: { kind: 'close' }, origin: 'atMostFirst' },
  { id: 'F59', name: 'chunk size `g` (read as 16)', bytes: (p) => chunked(p, `g\r\n${x(16)}\r\n0\r\n\r\n`), expect: { kind: 'forward', check: (r) => { assert.equal(r.body.toString(), x(16)); assert.deepEqual(header(r, 'transfer-encoding'), ['chunked']); } } },
  { id: 'F60', name: 'chunk size `:` (read as 10)', bytes: (p) => chunked(p, `:\r\n${x(10)}\r\n0\r\n\r\n`), expect: { kind: 'forward', check: (r) => assert.equal(r.body.toString(), x(10)) } },
  { id: 'F61', name: 'bare LF after the chunk size', bytes: (p) => chunked(p, '5\nhello\r\n0\r\n\r\n'), expect: { kind: 'forward', check: (r) => assert.equal(r.body.toString(), 'hello') } },
  { id: 'F62', name: 'chunk data followed by `XY` instead of CRLF', bytes: (p) => chunked(p, '5\r\nhelloXY0\r\n\r\n'), expect: { kind: 'forward', check: (r) => assert.equal(r.body.toString(), 'hello') } },
  { id: 'F63', name: 'trailer field after the last chunk', bytes: (p) => chunked(p, '5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n'), expect: { kind: 'forward', check: (r) => { assert.equal(r.body.toString(), 'hello'); assert.ok(!r.raw.toString('latin1').includes('X-Trailer'), 'trailer not forwarded'); } } },
  { id: 'F64', name: 'Transfer-Encoding: Chunked (case)', bytes: (p) => post(p, 'Transfer-Encoding: Chunked\r\n', '5\r\nhello\r\n0\r\n\r\n'), expect: { kind: 'forward', check: (r) => { assert.equal(r.body.toString(), 'hello'); assert.deepEqual(header(r, 'transfer-encoding'), ['chunked']); } } },
  { id: 'F65', name: 'Content-Length: 005', bytes: (p) => post(p, 'Content-Length: 005\r\n', 'hello'), expect: { kind: 'forward', check: (r) => { assert.deepEqual(header(r, 'content-length'), ['5']); assert.equal(r.body.toString(), 'hello'); } } },
  { id: 'F66', name: 'Connection names a header; Upgrade: h2c', bytes: (p) => `GET ${p} HTTP/1.1\r\n${H}X-Secret: s\r\nConnection: X-Secret, Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAA\r\n\r\n`, expect: { kind: 'forward', check: (r) => { for (const h of ['x-secret', 'connection', 'upgrade', 'http2-settings']) assert.equal(r.headers.get(h), undefined, h); } } },
  { id: 'F67', name: 'Expect: 100-continue', bytes: (p) => post(p, 'Expect: 100-continue\r\nContent-Length: 3\r\n', 'abc'), expect: { kind: 'forward', responses: 1, check: (r, a) => { assert.equal(r.headers.get('expect'), undefined); assert.match(a.data.toString('latin1'), /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /); } } },
  { id: 'F68', name: 'HTAB inside a value', bytes: (p) => `GET ${p} HTTP/1.1\r\n${H}X-A: a\tb\r\n\r\n`, expect: { kind: 'forward', check: (r) => assert.deepEqual(header(r, 'x-a'), ['a\tb']) } },
  { id: 'F69', name: '48 header fields (incl. Host)', bytes: (p) => `GET ${p} HTTP/1.1\r\n${H}${headers(47)}\r\n`, expect: { kind: 'forward', check: (r) => assert.equal(clientHeaderLines(r.headerLines).length, 48) } },
  { id: 'F70', name: '3 KB head split over two reads', bytes: (p) => [`GET ${p} HTTP/1.1\r\n${H}X-Big: ${x(1500)}`, `${x(1500)}\r\n\r\n`], expect: { kind: 'forward', check: (r) => assert.equal(header(r, 'x-big')[0].length, 3000) } },
  { id: 'F71', name: 'empty field name `: v`', bytes: (p) => `GET ${p} HTTP/1.1\r\n${H}: v\r\n\r\n`, expect: { kind: 'forward', check: (r) => assert.deepEqual(clientHeaderLines(r.headerLines), ['host: shop']) } },
  { id: 'F72', name: 'dot segments and %-escapes are forwarded canonical (the path the rules judged), the query as sent', bytes: (p) => `GET ${p}/x/../%61dmin//y?q=%2e HTTP/1.1\r\n${H}\r\n`, expect: { kind: 'forward', check: (r) => assert.equal(r.target, '/F72_/admin/y?q=%2e') } },
];

let bench: Bench;
before(async () => { bench = await startBench({ requestLimits: 'max_body: 1kb' }); });
after(async () => { await bench.stop(); });

const prefix = (c: Case): string => `/${c.id}_`;
function originSaw(c: Case): RawOriginRequest[] {
  const p = prefix(c);
  return bench.origin.requests.filter((r) => r.target.startsWith(p) || r.target.startsWith(`http://shop${p}`) || r.target.startsWith(`http://evil${p}`));
}

test(`conformance table: ${CASES.length} malformed or ambiguous requests`, async (t) => {
  assert.ok(CASES.length >= 30);
  // All rows run at once on their own connections (the hang rows only need a short wait to show
  // that nothing came back and nothing was forwarded); the origin sorts requests by path prefix.
  const answers = await Promise.all(CASES.map((c) => {
    const e = c.expect;
    const opts = e.kind === 'forward' ? { expectResponses: e.responses ?? 1, waitMs: 3000 } : e.kind === 'hang' ? { waitMs: 900 } : { waitMs: 3000 };
    return exchange(bench.edge.port, c.bytes(prefix(c)), opts);
  }));
  await new Promise((r) => setTimeout(r, 150));
  for (let i = 0; i < CASES.length; i++) {
    const c = CASES[i];
    const a = answers[i];
    await t.test(`${c.id} ${c.name}`, () => {
      const e = c.expect;
      const seen = originSaw(c);
      const what = `${c.id}: got ${JSON.stringify(a.data.toString('latin1').slice(0, 200))} closed=${a.closed}`;
      switch (e.kind) {
        case 'hang':
          assert.equal(a.data.length, 0, what);
          assert.equal(a.closed, false, `${what} (uWS holds the connection until its own timeout)`);
          assert.equal(seen.length, 0, 'no complete request reached the origin');
          if (c.origin !== 'streaming') assert.ok(!bench.origin.allBytes().includes(prefix(c)), 'not one byte reached the origin');
          break;
        case 'close':
          assert.equal(a.closed, true, what);
          assert.deepEqual(a.statuses, [], what);
          break;
        case 'reject': {
          assert.deepEqual(a.statuses, [e.status], what);
          assert.equal(a.closed, true, `${what}: the connection is closed after a reject`);
          assert.match(a.data.toString('latin1'), /\r\nConnection: close\r\n/i);
          if (e.reason) assert.match(a.data.toString('latin1'), e.reason);
          assert.equal(seen.length, 0, 'nothing reached the origin');
          break;
        }
        case 'forward': {
          assert.equal(a.statuses.at(-1), 200, what);
          assert.equal(seen.length, 1, `exactly one request reached the origin (${seen.map((r) => r.line).join(' | ')})`);
          e.check?.(seen[0], a);
          break;
        }
      }
      if (c.origin === 'none') assert.ok(!bench.origin.allBytes().includes(prefix(c)), `not one byte reached the origin, got ${seen.map((r) => r.line).join(' | ')}`);
      if (e.kind === 'reject') assert.ok(!bench.origin.allBytes().includes(prefix(c)), 'not one byte reached the origin');
      if (c.origin === 'atMostFirst') {
        assert.ok(seen.length <= 1, `at most the first request reached the origin, got ${seen.map((r) => r.line).join(' | ')}`);
        for (const r of seen) assert.equal(r.target, prefix(c), 'never the smuggled/pipelined one');
        if (seen.length === 1 && c.id === 'F57') assert.equal(seen[0].body.toString(), 'hello', 'body exactly as uWS parsed it');
      }
    });
  }
  // Whatever crossed the proxy was strict HTTP/1.1 (CRLF only, one framing, valid chunks).
  assert.deepEqual(bench.origin.framingErrors, []);
  for (const r of bench.origin.requests) {
    assert.ok(r.raw.indexOf('\n') === r.raw.indexOf('\r\n') + 1, 'first line ends in CRLF');
    assert.ok(!/\r\n[ \t]/.test(r.raw.toString('latin1')), 'no obs-fold reaches the origin');
  }
});

test('HEAD is answered without a body and the connection stays usable', async () => {
  // Sent one after the other on one connection (uWS refuses pipelining behind an async handler, F58).
  const { connect } = await import('node:net');
  const s = connect(bench.edge.port, '127.0.0.1');
  let data = '';
  const until = async (ok: () => boolean): Promise<void> => { for (let i = 0; i < 100 && !ok(); i++) await new Promise((r) => setTimeout(r, 20)); };
  s.on('data', (d) => { data += d.toString('latin1'); });
  s.write(`HEAD /HEAD_3 HTTP/1.1\r\n${H}\r\n`);
  await until(() => data.includes('\r\n\r\n'));
  s.write(`GET /HEAD_4 HTTP/1.1\r\n${H}\r\n`);
  await until(() => data.endsWith('ok'));
  await new Promise((r) => setTimeout(r, 50));
  s.destroy();
  const parts = data.split('HTTP/1.1 ');
  assert.equal(parts.length, 3, `${data} ORIGIN ${JSON.stringify(bench.origin.connections.map((c) => c.toString('latin1').slice(-120)))} REQS ${bench.origin.requests.length}`);
  assert.match(parts[1], /^200 /);
  assert.match(parts[1], /content-length: 2\r\n/i, 'HEAD keeps the length of the GET body');
  assert.ok(parts[1].endsWith('\r\n\r\n'), `no body after the HEAD head: ${JSON.stringify(parts[1])}`);
  assert.match(parts[2], /^200 [\s\S]*\r\n\r\nok$/);
});
