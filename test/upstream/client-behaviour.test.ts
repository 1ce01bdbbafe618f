// Behaviour every UpstreamClient must show (h1pool and undici), against real loopback origins.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { UpstreamClient } from '../../edge/upstream/types.js';
import { buildProxyV2Header } from '../../edge/upstream/h1-proxy-v2.js';
import { freePort } from '../harness/ports.js';
import {
  CLIENTS, CollectSink, blackholeListener, T, fetchOnce, get, pumpBody, sleep,
} from './helpers.js';
import { startOrigin, startRawOrigin, type Origin } from '../harness/origin.js';

const MB = 1024 * 1024;

/** node:http origin: /echo echoes the body (chunked answer), /len answers a body of ?n bytes, /info reports framing. */
function handler(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname === '/echo') {
    req.on('data', (c: Buffer) => { if (!res.write(c)) { req.pause(); res.once('drain', () => req.resume()); } });
    req.on('end', () => res.end());
    return;
  }
  if (url.pathname === '/count') {
    let n = 0;
    req.on('data', (c: Buffer) => { n += c.length; });
    req.on('end', () => res.end(JSON.stringify({ n, te: req.headers['transfer-encoding'] ?? null, cl: req.headers['content-length'] ?? null })));
    return;
  }
  if (url.pathname === '/len') {
    const n = Number(url.searchParams.get('n'));
    res.setHeader('content-length', n);
    const block = Buffer.alloc(64 * 1024, 0x62);
    let left = n;
    const write = (): void => {
      while (left > 0) {
        const k = Math.min(left, block.length);
        left -= k;
        if (!res.write(k === block.length ? block : block.subarray(0, k))) { res.once('drain', write); return; }
      }
      res.end();
    };
    write();
    return;
  }
  if (url.pathname === '/status') {
    const code = Number(url.searchParams.get('code'));
    if (code === 204 || code === 304) { res.writeHead(code, { etag: '"a"' }); res.end(); return; }
    res.writeHead(code, { 'content-length': '5', etag: '"a"' });
    res.end('hello');
    return;
  }
  res.setHeader('x-method', req.method ?? '');
  res.setHeader('x-host', req.headers.host ?? '');
  res.end(req.method === 'HEAD' ? undefined : 'ok:' + req.url);
}

for (const cc of CLIENTS) {
  describe(`upstream client ${cc.name}`, () => {
    let origin: Origin;
    let client: UpstreamClient;
    before(async () => {
      origin = await startOrigin('origin', handler, { answerAt: 'head' });
      client = cc.make();
    });
    after(async () => {
      await client.close();
      await origin.close();
    });

    it('GET: status, lower-case headers, body', async () => {
      const s = await fetchOnce(client, origin.url, get('/hello?x=1'));
      assert.equal(s.error, null);
      assert.equal(s.status, 200);
      assert.equal(s.body, 'ok:/hello?x=1');
      assert.equal(s.header('x-method'), 'GET');
      assert.equal(s.header('x-host'), 'origin.test');
      assert.deepEqual(s.calls.filter((c) => c !== 'data'), ['start', 'end']);
    });

    it('POST with a content-length body and with a chunked body', async () => {
      const a = await fetchOnce(client, origin.url, { method: 'POST', path: '/count', headers: ['host', 'o'], bodyLength: 11 }, T,
        [Buffer.from('hello '), Buffer.from('world')]);
      assert.deepEqual(JSON.parse(a.body), { n: 11, te: null, cl: '11' });
      const b = await fetchOnce(client, origin.url, { method: 'POST', path: '/count', headers: ['host', 'o'], bodyLength: -2 }, T,
        [Buffer.from('abc'), Buffer.from('defg')]);
      // undici frames an already-ended stream body with content-length; h1pool always sends chunked for -2
      assert.equal(JSON.parse(b.body).n, 7);
      if (cc.name === 'h1pool') assert.deepEqual(JSON.parse(b.body), { n: 7, te: 'chunked', cl: null });
      const c = await fetchOnce(client, origin.url, { method: 'POST', path: '/echo', headers: ['host', 'o'], bodyLength: -2 }, T,
        [Buffer.from('round'), Buffer.from('trip')]);
      assert.equal(c.body, 'roundtrip');
      assert.equal(c.header('transfer-encoding'), 'chunked');
    });

    it('POST without body sends content-length: 0', async () => {
      const s = await fetchOnce(client, origin.url, { method: 'POST', path: '/count', headers: ['host', 'o'], bodyLength: -1 });
      assert.deepEqual(JSON.parse(s.body), { n: 0, te: null, cl: '0' });
    });

    it('10 MB upload streamed with back-pressure, 10 MB download', async () => {
      const sink = new CollectSink();
      const st = client.request(origin.url, { method: 'PUT', path: '/count', headers: ['host', 'o'], bodyLength: -2 }, T, sink);
      const refusals = await pumpBody(st, sink, 10 * MB);
      await sink.done;
      assert.equal(sink.error, null);
      assert.equal(JSON.parse(sink.body).n, 10 * MB);
      assert.ok(refusals > 0, 'writeBody must refuse at some point for 10 MB');

      const heap0 = process.memoryUsage().heapUsed;
      const d = new CollectSink();
      d.keepBody = false;
      client.request(origin.url, get('/len?n=' + 10 * MB), T, d);
      await d.done;
      assert.equal(d.error, null);
      assert.equal(d.bytes, 10 * MB);
      assert.ok(process.memoryUsage().heapUsed - heap0 < 8 * MB, 'download must not accumulate in the heap');
    });

    it('keep-alive: 20 sequential requests use one TCP connection', async () => {
      const before = origin.accepted;
      for (let i = 0; i < 20; i++) {
        const s = await fetchOnce(client, origin.url, get('/k' + i));
        assert.equal(s.body, 'ok:/k' + i);
      }
      // the earlier tests may have left sockets in the pool; at most one new one for this loop
      assert.ok(origin.accepted - before <= 1, `opened ${origin.accepted - before} connections`);
    });

    it('HEAD, 204 and 304 have no body and the connection stays usable', async () => {
      const h = await fetchOnce(client, origin.url, { method: 'HEAD', path: '/len?n=100', headers: ['host', 'o'], bodyLength: -1 });
      assert.equal(h.status, 200);
      assert.equal(h.bytes, 0);
      const n = await fetchOnce(client, origin.url, get('/status?code=204'));
      assert.equal(n.status, 204);
      assert.equal(n.bytes, 0);
      const m = await fetchOnce(client, origin.url, get('/status?code=304'));
      assert.equal(m.status, 304);
      assert.equal(m.bytes, 0);
      const after = await fetchOnce(client, origin.url, get('/after'));
      assert.equal(after.body, 'ok:/after');
    });

    it('a paused 50 MB response is not buffered; resume delivers all of it', async () => {
      const sink = new CollectSink();
      sink.keepBody = false;
      sink.accept = false; // first chunk → back-pressure
      const rss0 = process.memoryUsage().rss;
      const st = client.request(origin.url, get('/len?n=' + 50 * MB), T, sink);
      await sleep(800);
      assert.ok(sink.bytes < 2 * MB, `received ${sink.bytes} bytes while paused`);
      assert.ok(process.memoryUsage().rss - rss0 < 40 * MB, 'paused response must not be buffered');
      sink.accept = true;
      st.resume();
      await sink.done;
      assert.equal(sink.error, null);
      assert.equal(sink.bytes, 50 * MB);
    });

    it('connect refused → connect, requestSent false', async () => {
      const port = await freePort();
      const s = await fetchOnce(client, `http://127.0.0.1:${port}`, get('/'));
      assert.equal(s.error?.kind, 'connect');
      assert.equal(s.error?.requestSent, false);
      assert.deepEqual(s.calls, ['error']);
    });

    it('connect that never completes → timeout_connect, requestSent false', async (t) => {
      const bh = await blackholeListener();
      if (bh === null) { t.skip('skipped: python3 needed for a full accept queue'); return; }
      try {
        const t0 = Date.now();
        const s = await fetchOnce(client, bh.url, get('/'), { connectMs: 300, responseMs: 5000, idleMs: 5000 });
        assert.equal(s.error?.kind, 'timeout_connect');
        assert.equal(s.error?.requestSent, false);
        const took = Date.now() - t0;
        assert.ok(took >= 250 && took < 5000, `took ${took} ms`);
      } finally { bh.close(); }
    });

    it('origin resets mid-response → reset, requestSent true', async () => {
      const raw = await startRawOrigin((_r, _n, sock) => {
        sock.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\npartial');
        setTimeout(() => sock.resetAndDestroy(), 50);
      }, { answerAt: 'head' });
      try {
        const s = await fetchOnce(client, raw.url, get('/'));
        assert.equal(s.status, 200);
        assert.equal(s.error?.kind, 'reset');
        assert.equal(s.error?.requestSent, true);
      } finally { await raw.close(); }
    });

    it('origin closes before answering → reset (fresh connection, not retried)', async () => {
      const raw = await startRawOrigin((_r, _n, sock) => { sock.destroy(); }, { answerAt: 'head' });
      try {
        const s = await fetchOnce(client, raw.url, { method: 'POST', path: '/', headers: ['host', 'o'], bodyLength: 2 }, T, [Buffer.from('hi')]);
        assert.equal(s.error?.kind, 'reset');
        assert.equal(s.error?.requestSent, true);
      } finally { await raw.close(); }
    });

    it('no response head within responseMs → timeout_response', async () => {
      const raw = await startRawOrigin(() => { /* never answer */ }, { answerAt: 'head' });
      try {
        const t0 = Date.now();
        const s = await fetchOnce(client, raw.url, get('/'), { connectMs: 1000, responseMs: 300, idleMs: 5000 });
        assert.equal(s.error?.kind, 'timeout_response');
        assert.equal(s.error?.requestSent, true);
        const took = Date.now() - t0;
        assert.ok(took >= 250 && took < 2500, `took ${took} ms`);
      } finally { await raw.close(); }
    });

    it('body stalls longer than idleMs → timeout_idle', async () => {
      const raw = await startRawOrigin((_r, _n, sock) => { sock.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nabc'); }, { answerAt: 'head' });
      try {
        const s = await fetchOnce(client, raw.url, get('/'), { connectMs: 1000, responseMs: 5000, idleMs: 300 });
        assert.equal(s.status, 200);
        assert.equal(s.body, 'abc');
        assert.equal(s.error?.kind, 'timeout_idle');
      } finally { await raw.close(); }
    });

    it('abort() closes the origin connection and stops sink calls', async () => {
      let closed = false;
      const raw = await startRawOrigin((_r, _n, sock) => {
        sock.on('close', () => { closed = true; });
        sock.write('HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\nfirst');
        const iv = setInterval(() => { if (!sock.destroyed) sock.write('more'); else clearInterval(iv); }, 20);
      }, { answerAt: 'head' });
      try {
        const sink = new CollectSink();
        const st = client.request(raw.url, get('/'), T, sink);
        await new Promise<void>((r) => { sink.onData = () => r(); });
        st.abort();
        const callsAtAbort = sink.calls.length;
        await sleep(300);
        assert.equal(closed, true, 'origin saw the connection close');
        assert.equal(sink.calls.length, callsAtAbort, 'no sink call after abort');
        assert.equal(sink.error, null);
      } finally { await raw.close(); }
    });

    it('a response of unknown length is read until close', async () => {
      const raw = await startRawOrigin((_r, _n, sock) => { sock.end('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end'); }, { answerAt: 'head' });
      try {
        const s = await fetchOnce(client, raw.url, get('/'));
        assert.equal(s.error, null);
        assert.equal(s.body, 'until the end');
      } finally { await raw.close(); }
    });

    it('proxyHeader (send_proxy v2) is written first on the connection', async () => {
      // The origin reads the PROXY v2 header apart and records every byte of the connection.
      const raw = await startRawOrigin(() => 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      try {
        const ph = buildProxyV2Header({ srcAddress: '203.0.113.7', srcPort: 4242, dstAddress: '127.0.0.1', dstPort: 8080 });
        const s = await fetchOnce(client, raw.url, { ...get('/p'), proxyHeader: ph });
        assert.equal(s.body, 'ok');
        const got = raw.connections[0].toString('latin1');
        assert.ok(got.startsWith(ph.toString('latin1') + 'GET /p HTTP/1.1\r\n'), JSON.stringify(got.slice(0, 40)));
      } finally { await raw.close(); }
    });

    it('rejects malformed responses that both parsers must refuse', async () => {
      const bad = [
        'HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
        'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
        'HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!',
        'HTTP/1.1 200 OK\r\nbad header: x\r\ncontent-length: 0\r\n\r\n',
        'HTTX/1.1 200 OK\r\ncontent-length: 0\r\n\r\n',
      ];
      for (const resp of bad) {
        const raw = await startRawOrigin((_r, _n, sock) => { sock.write(resp); }, { answerAt: 'head' });
        try {
          const s = await fetchOnce(client, raw.url, get('/'));
          assert.equal(s.error?.kind, 'protocol', `expected protocol error for ${JSON.stringify(resp)}, got ${JSON.stringify(s.error)} status ${s.status}`);
        } finally { await raw.close(); }
      }
    });
  });
}
