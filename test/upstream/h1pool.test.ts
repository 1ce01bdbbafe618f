// h1pool specifics: strict response parsing, connection reuse rules, stale-socket replay, the
// per-origin cap, idle socket expiry, request validation and PROXY v2.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import { H1Pool, H1RequestError } from '../../edge/upstream/h1pool.js';
import { ResponseParser, type ResponseParserHandler } from '../../edge/upstream/h1-parser.js';
import { buildProxyV2Header } from '../../edge/upstream/h1-proxy-v2.js';
import { CollectSink, T, fetchOnce, get, pumpBody } from './helpers.js';
import { waitFor } from '../harness/wait.js';
import { startOrigin, startRawOrigin } from '../harness/origin.js';

const pool = new H1Pool({ tickMs: 50 });
after(() => pool.close());

async function rawFetch(response: string | Buffer, method = 'GET'): Promise<CollectSink> {
  const raw = await startRawOrigin((_r, _n, sock) => { sock.write(response); }, { answerAt: 'head' });
  try {
    return await fetchOnce(pool, raw.url, { method, path: '/', headers: ['host', 'o'], bodyLength: -1 }, { connectMs: 1000, responseMs: 1500, idleMs: 1500 });
  } finally { await raw.close(); }
}

describe('h1pool strict response parsing', () => {
  const big = 'x'.repeat(70 * 1024);
  const malformed: [string, string][] = [
    ['status code of 4 digits', 'HTTP/1.1 2000 OK\r\ncontent-length: 0\r\n\r\n'],
    ['HTTP/2 status line', 'HTTP/2 200 OK\r\ncontent-length: 0\r\n\r\n'],
    ['non-digit status', 'HTTP/1.1 2x0 OK\r\ncontent-length: 0\r\n\r\n'],
    ['lower-case protocol', 'http/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'],
    ['control char in reason', 'HTTP/1.1 200 O\x01K\r\ncontent-length: 0\r\n\r\n'],
    ['obs-fold', 'HTTP/1.1 200 OK\r\nx-a: b\r\n  folded\r\ncontent-length: 0\r\n\r\n'],
    ['bare LF line endings', 'HTTP/1.1 200 OK\ncontent-length: 0\n\n'],
    ['bare LF inside a CRLF head', 'HTTP/1.1 200 OK\r\nx-a: b\nx-b: c\r\ncontent-length: 0\r\n\r\n'],
    ['bare CR in a value', 'HTTP/1.1 200 OK\r\nx-a: b\rc\r\ncontent-length: 0\r\n\r\n'],
    ['space in header name', 'HTTP/1.1 200 OK\r\nx a: b\r\ncontent-length: 0\r\n\r\n'],
    ['whitespace before colon', 'HTTP/1.1 200 OK\r\ncontent-length : 0\r\n\r\n'],
    ['empty header name', 'HTTP/1.1 200 OK\r\n: b\r\ncontent-length: 0\r\n\r\n'],
    ['NUL in value', 'HTTP/1.1 200 OK\r\nx-a: b\x00c\r\ncontent-length: 0\r\n\r\n'],
    ['DEL in name', 'HTTP/1.1 200 OK\r\nx\x7fa: b\r\ncontent-length: 0\r\n\r\n'],
    ['content-length and transfer-encoding', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
    ['differing content-length headers', 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!'],
    ['differing content-length list', 'HTTP/1.1 200 OK\r\ncontent-length: 5, 6\r\n\r\nhello!'],
    ['content-length with sign', 'HTTP/1.1 200 OK\r\ncontent-length: +5\r\n\r\nhello'],
    ['negative content-length', 'HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n'],
    ['hex content-length', 'HTTP/1.1 200 OK\r\ncontent-length: 0x5\r\n\r\nhello'],
    ['decimal point content-length', 'HTTP/1.1 200 OK\r\ncontent-length: 5.0\r\n\r\nhello'],
    ['empty content-length', 'HTTP/1.1 200 OK\r\ncontent-length: \r\n\r\n'],
    ['huge content-length', 'HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n'],
    ['transfer-encoding gzip', 'HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nxx'],
    ['transfer-encoding chunked, gzip', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\n0\r\n\r\n'],
    ['transfer-encoding gzip, chunked', 'HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n'],
    ['transfer-encoding twice', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['transfer-encoding in HTTP/1.0', 'HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['chunk size not hex', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n'],
    ['chunk size with space', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n'],
    ['chunk size empty', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n'],
    ['chunk size too long', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0000000000005\r\nhello\r\n0\r\n\r\n'],
    ['chunk size bare LF', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n'],
    ['missing CRLF after chunk data', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n'],
    ['control char in chunk extension', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;a=\x01\r\nhello\r\n0\r\n\r\n'],
    ['bad trailer field', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nbad trailer: x\r\n\r\n'],
    ['oversized header block', `HTTP/1.1 200 OK\r\nx-big: ${big}\r\ncontent-length: 0\r\n\r\n`],
    ['oversized header block without terminator', `HTTP/1.1 200 OK\r\nx-big: ${big}`],
    ['101 switching protocols', 'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n'],
  ];
  for (const [name, resp] of malformed) {
    it(`rejects ${name} with a protocol error`, async () => {
      const s = await rawFetch(resp);
      assert.equal(s.error?.kind, 'protocol', `got ${JSON.stringify(s.error)} status ${s.status} body ${JSON.stringify(s.body.slice(0, 40))}`);
      assert.equal(s.error?.requestSent, true);
      assert.ok(s.error?.message.startsWith('invalid response from origin'));
    });
  }

  it('the socket of a protocol error is closed, never reused', async () => {
    let closed = 0;
    const raw = await startRawOrigin((_r, _n, sock) => { sock.on('close', () => closed++); sock.write('HTTP/1.1 200 OK\r\nx a: b\r\ncontent-length: 0\r\n\r\n'); }, { answerAt: 'head' });
    try {
      await fetchOnce(pool, raw.url, get());
      await waitFor('the origin to see the socket close', () => closed === 1, 1000);
      assert.equal(closed, 1);
      assert.equal(pool.stats(raw.url).connections, 0);
    } finally { await raw.close(); }
  });

  it('skips 100 Continue and 103 Early Hints, then reads the final response', async () => {
    const s = await rawFetch('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    assert.equal(s.error, null);
    assert.equal(s.status, 200);
    assert.equal(s.body, 'ok');
    assert.equal(s.header('link'), undefined);
  });

  it('accepts identical duplicate content-length, chunk extensions, trailers and a reason-less status line', async () => {
    const a = await rawFetch('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nContent-Length: 2, 2\r\n\r\nok');
    assert.equal(a.body, 'ok');
    const b = await rawFetch('HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n3;name=val\r\nabc\r\n2\r\nde\r\n0\r\nx-trailer: 1\r\n\r\n');
    assert.equal(b.error, null);
    assert.equal(b.body, 'abcde');
    const c = await rawFetch('HTTP/1.1 404\r\ncontent-length: 0\r\n\r\n');
    assert.equal(c.status, 404);
    const d = await rawFetch('HTTP/1.1 200 \r\nX-UPPER: Value\t\r\ncontent-length: 0\r\n\r\n');
    assert.equal(d.header('x-upper'), 'Value', 'names lower-cased, trailing OWS trimmed');
  });

  it('parses a response fed one byte at a time (every split point)', () => {
    const wire = Buffer.from('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-a: 1\r\n\r\n4;e=1\r\nwiki\r\n5\r\npedia\r\n0\r\nt: v\r\n\r\n');
    const seen: { status: number; body: string } = { status: 0, body: '' };
    const h: ResponseParserHandler = {
      onParsedHead(status) { seen.status = status; return true; },
      onParsedBody(chunk) { seen.body += chunk.toString('latin1'); return true; },
    };
    const p = new ResponseParser(h, { maxHeaderBytes: 65536, maxHeaderCount: 100 });
    p.reset(false);
    for (let i = 0; i < wire.length; i++) {
      const n = p.execute(wire.subarray(i, i + 1));
      assert.equal(p.failed, false, p.error);
      assert.equal(n, 1);
      if (i < wire.length - 1) assert.equal(p.done, false);
    }
    assert.equal(p.done, true);
    assert.deepEqual(seen, { status: 200, body: 'wikipedia' });
  });
});

describe('h1pool connection reuse', () => {
  it('does not reuse after Connection: close, HTTP/1.0, or a read-until-close body', async () => {
    const cases = [
      'HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok',
      'HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok',
    ];
    for (const resp of cases) {
      const raw = await startRawOrigin((_r, _n, sock) => { sock.write(resp); }, { answerAt: 'head' });
      try {
        for (let i = 0; i < 3; i++) assert.equal((await fetchOnce(pool, raw.url, get())).body, 'ok');
        assert.equal(raw.accepted, 3, resp);
      } finally { await raw.close(); }
    }
    const eof = await startRawOrigin((_r, _n, sock) => { sock.end('HTTP/1.1 200 OK\r\n\r\nok'); }, { answerAt: 'head' });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await fetchOnce(pool, eof.url, get())).body, 'ok');
      assert.equal(eof.accepted, 3, 'read-until-close');
    } finally { await eof.close(); }
    const keep = await startRawOrigin((_r, _n, sock) => { sock.write('HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 2\r\n\r\nok'); }, { answerAt: 'head' });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await fetchOnce(pool, keep.url, get())).body, 'ok');
      assert.equal(keep.accepted, 1, 'HTTP/1.0 with keep-alive is reused');
    } finally { await keep.close(); }
  });

  it('does not reuse a socket whose response ended before the request body was complete', async () => {
    const raw = await startRawOrigin((_r, _n, sock) => { sock.write('HTTP/1.1 413 Payload Too Large\r\ncontent-length: 3\r\n\r\nbig'); }, { answerAt: 'head' });
    try {
      const sink = new CollectSink();
      const st = pool.request(raw.url, { method: 'POST', path: '/', headers: ['host', 'o'], bodyLength: 100 }, T, sink);
      st.writeBody(Buffer.alloc(10));
      await sink.done;
      assert.equal(sink.status, 413);
      assert.equal(sink.body, 'big');
      assert.equal(st.writeBody(Buffer.alloc(10)), true, 'writes after the end are ignored');
      assert.equal(pool.stats(raw.url).connections, 0);
    } finally { await raw.close(); }
  });

  it('bytes after a complete response (origin confusion) close the socket', async () => {
    const raw = await startRawOrigin((_r, _n, sock) => { sock.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokEXTRA'); }, { answerAt: 'head' });
    try {
      const s = await fetchOnce(pool, raw.url, get());
      assert.equal(s.body, 'ok');
      assert.equal(pool.stats(raw.url).connections, 0);
    } finally { await raw.close(); }
  });

  it('replays an idempotent request once when a reused socket was closed by the origin', async () => {
    // first connection: answers once, then closes as soon as the next request arrives (stale keep-alive race)
    const raw = await startRawOrigin((_r, n, sock) => {
      if (n === 0) sock.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfirst');
      else if (n === 1) sock.destroy();
      else sock.write('HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecond');
    }, { answerAt: 'head' });
    try {
      assert.equal((await fetchOnce(pool, raw.url, get())).body, 'first');
      const s = await fetchOnce(pool, raw.url, get());
      assert.equal(s.error, null);
      assert.equal(s.body, 'second');
      assert.equal(raw.accepted, 2);
    } finally { await raw.close(); }
  });

  it('does not replay a request with a body: reset with requestSent true', async () => {
    const raw = await startRawOrigin((_r, n, sock) => {
      if (n === 0) sock.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfirst');
      else sock.destroy();
    }, { answerAt: 'head' });
    try {
      await fetchOnce(pool, raw.url, get());
      const s = await fetchOnce(pool, raw.url, { method: 'POST', path: '/', headers: ['host', 'o'], bodyLength: 2 }, T, [Buffer.from('hi')]);
      assert.equal(s.error?.kind, 'reset');
      assert.equal(s.error?.requestSent, true);
      assert.equal(raw.accepted, 1);
    } finally { await raw.close(); }
  });

  it('caps sockets per origin; extra requests wait FIFO and all complete', async () => {
    let open = 0;
    let maxOpen = 0;
    const order: string[] = [];
    const origin = await startOrigin('origin', (req, res) => {
      order.push(req.url ?? '');
      setTimeout(() => res.end('done' + req.url), 60);
    }, { answerAt: 'head' });
    origin.sockets.add = function (this: Set<net.Socket>, s: net.Socket) {
      open++; maxOpen = Math.max(maxOpen, open); s.on('close', () => open--);
      return Set.prototype.add.call(this, s) as Set<net.Socket>;
    };
    const capped = new H1Pool({ maxConnectionsPerOrigin: 2, tickMs: 50 });
    try {
      const sinks = Array.from({ length: 8 }, (_, i) => {
        const s = new CollectSink();
        capped.request(origin.url, get('/' + i), T, s);
        return s;
      });
      assert.equal(capped.stats(origin.url).waiting, 6);
      await Promise.all(sinks.map((s) => s.done));
      sinks.forEach((s, i) => assert.equal(s.body, 'done/' + i));
      assert.equal(maxOpen, 2);
      assert.equal(origin.accepted, 2);
      assert.deepEqual(order, ['/0', '/1', '/2', '/3', '/4', '/5', '/6', '/7']);
    } finally {
      await capped.close();
      await origin.close();
    }
  });

  it('a request body written while waiting for a socket is held, then drained onto it', async () => {
    const origin = await startOrigin('origin', (req, res) => {
      let n = 0;
      req.on('data', (c: Buffer) => { n += c.length; });
      req.on('end', () => setTimeout(() => res.end(req.url + ':' + n), 50));
    }, { answerAt: 'head' });
    const capped = new H1Pool({ maxConnectionsPerOrigin: 1, tickMs: 50 });
    try {
      const first = new CollectSink();
      capped.request(origin.url, get('/first'), T, first);
      const second = new CollectSink();
      const st = capped.request(origin.url, { method: 'POST', path: '/second', headers: ['host', 'o'], bodyLength: 6 }, T, second);
      assert.equal(st.writeBody(Buffer.from('abc')), false, 'no socket yet: back-pressure');
      await new Promise<void>((r) => { second.onDrain = r; });
      assert.equal(first.ended, true, 'drained once the first request released the socket');
      st.writeBody(Buffer.from('def'));
      st.endBody();
      await second.done;
      assert.equal(second.body, '/second:6');
      assert.equal(origin.accepted, 1);
    } finally {
      await capped.close();
      await origin.close();
    }
  });

  it('an origin that stops reading the request body → timeout_idle', async () => {
    const raw = await startRawOrigin((_r, _n, sock) => { sock.pause(); }, { answerAt: 'head' });
    try {
      const sink = new CollectSink();
      const st = pool.request(raw.url, { method: 'PUT', path: '/', headers: ['host', 'o'], bodyLength: -2 }, { connectMs: 1000, responseMs: 5000, idleMs: 300 }, sink);
      void pumpBody(st, sink, 64 * 1024 * 1024);
      await sink.done;
      assert.equal(sink.error?.kind, 'timeout_idle');
      assert.equal(sink.error?.requestSent, true);
    } finally { await raw.close(); }
  });

  it('closes idle sockets after idleSocketTimeoutMs', async () => {
    const origin = await startOrigin('origin', (_req, res) => res.end('x'), { answerAt: 'head' });
    const p = new H1Pool({ idleSocketTimeoutMs: 150, tickMs: 25 });
    try {
      await fetchOnce(p, origin.url, get());
      assert.equal(p.stats(origin.url).idle, 1);
      // idleSocketTimeoutMs 150: closed well within a second (never while in use: the test above).
      await waitFor('the idle socket closed at both ends', () => p.stats(origin.url).connections === 0 && origin.sockets.size === 0, 1000);
      assert.equal(p.stats(origin.url).connections, 0);
      assert.equal(origin.sockets.size, 0, 'origin saw the close');
    } finally {
      await p.close();
      await origin.close();
    }
  });
});

describe('h1pool request validation', () => {
  const bad: [string, Partial<{ method: string; path: string; headers: string[] }>][] = [
    ['CRLF in a header value', { headers: ['x-a', 'b\r\nx-injected: 1'] }],
    ['LF in a header value', { headers: ['x-a', 'b\nc'] }],
    ['NUL in a header value', { headers: ['x-a', 'b\0c'] }],
    ['CR in a header name', { headers: ['x-a\r', 'b'] }],
    ['space in a header name', { headers: ['x a', 'b'] }],
    ['CRLF in the path', { path: '/a\r\nHost: evil' }],
    ['space in the path', { path: '/a HTTP/1.1' }],
    ['space in the method', { method: 'GET /x' }],
  ];
  for (const [name, patch] of bad) {
    it(`throws H1RequestError for ${name}, before any I/O`, () => {
      const sink = new CollectSink();
      assert.throws(() => pool.request('http://127.0.0.1:1', { method: 'GET', path: '/', headers: [], bodyLength: -1, ...patch }, T, sink), H1RequestError);
      assert.deepEqual(sink.calls, []);
    });
  }
  it('rejects https origins with a pointer to the undici client', () => {
    assert.throws(() => pool.request('https://127.0.0.1:1', get(), T, new CollectSink()), /undici/);
  });
  it('strips caller framing headers and adds host when missing', async () => {
    let head = '';
    const raw = await startRawOrigin((r, _n, sock) => { head = r.head; sock.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'); }, { answerAt: 'head' });
    try {
      await fetchOnce(pool, raw.url, { method: 'GET', path: '/p', headers: ['connection', 'close', 'content-length', '9', 'transfer-encoding', 'chunked', 'x-a', 'b'], bodyLength: -1 });
      assert.equal(head, `GET /p HTTP/1.1\r\nx-a: b\r\nhost: 127.0.0.1:${raw.port}\r\n\r\n`);
    } finally { await raw.close(); }
  });
  it('writes the head as UTF-8, byte-exact, whatever the values hold', async () => {
    // uWS hands over the client's bytes decoded from UTF-8: re-encoding must give the same bytes back.
    let head = '';
    const raw = await startRawOrigin((r, _n, sock) => { head = r.head; sock.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'); }, { answerAt: 'head' });
    try {
      const values = ['caf\u00e9', '\u00ff\u0080', '\u20ac 5', 'smile \ud83d\ude00', 'lone \ud800 surrogate', 'tab\there'];
      const headers = values.flatMap((v, i) => [`x-v${i}`, v]);
      await fetchOnce(pool, raw.url, { method: 'POST', path: '/caf\u00e9', headers: ['host', 'h', ...headers], bodyLength: -1 });
      const expected = `POST /caf\u00e9 HTTP/1.1\r\nhost: h\r\n${values.map((v, i) => `x-v${i}: ${v}\r\n`).join('')}content-length: 0\r\n\r\n`;
      assert.equal(Buffer.from(head, 'latin1').toString('hex'), Buffer.from(expected, 'utf8').toString('hex'));
    } finally { await raw.close(); }
  });
});

describe('h1pool PROXY protocol v2', () => {
  it('builds the v2 header for IPv4 and IPv6', () => {
    const v4 = buildProxyV2Header({ srcAddress: '192.0.2.1', srcPort: 5000, dstAddress: '127.0.0.1', dstPort: 8080 });
    assert.equal(v4.toString('hex'), '0d0a0d0a000d0a515549540a' + '21' + '11' + '000c' + 'c0000201' + '7f000001' + '1388' + '1f90');
    const v6 = buildProxyV2Header({ srcAddress: '2001:db8::1', srcPort: 1, dstAddress: '::ffff:127.0.0.1', dstPort: 2 });
    assert.equal(v6.length, 16 + 36);
    assert.equal(v6[13], 0x21);
    assert.equal(v6.subarray(16, 32).toString('hex'), '20010db8000000000000000000000001');
    assert.equal(v6.subarray(32, 48).toString('hex'), '00000000000000000000ffff7f000001');
    assert.throws(() => buildProxyV2Header({ srcAddress: 'nope', srcPort: 1, dstAddress: '127.0.0.1', dstPort: 2 }), /invalid address/);
  });

  it('sends the header first on each connection, one connection per client address', async () => {
    const origin = await startRawOrigin(() => 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    const url = origin.url;
    try {
      const a = buildProxyV2Header({ srcAddress: '10.0.0.1', srcPort: 1111, dstAddress: '127.0.0.1', dstPort: 80 });
      const b = buildProxyV2Header({ srcAddress: '10.0.0.2', srcPort: 2222, dstAddress: '127.0.0.1', dstPort: 80 });
      for (const ph of [a, a, b, a]) {
        const s = await fetchOnce(pool, url, { ...get(), proxyHeader: ph });
        assert.equal(s.body, 'ok');
      }
      const firstBytes = origin.connections.map((c) => c.subarray(0, 28).toString('hex'));
      assert.deepEqual(firstBytes, [a.toString('hex'), b.toString('hex')]);
      assert.equal(pool.stats(url).connections, 2);
    } finally {
      await origin.close();
    }
  });
});
