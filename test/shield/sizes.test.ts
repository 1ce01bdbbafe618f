// Why: an attacker's cheapest weapon is a huge request (URL, head or body) that the proxy parses,
// buffers or forwards. Each size limit must answer its status before the origin sees anything, with
// the configured value and with the documented default (limits.request.*).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { rawRequest } from '../harness/client.js';
import { CLIENT_LIMITS_OFF, startOriginAndEdge } from '../harness/edge.js';
import { sleep, waitFor } from './helpers.js';

async function edgeWith(t: import('node:test').TestContext, request: string) {
  const { o, px } = await startOriginAndEdge(t, { origin: 'web', limits: `${CLIENT_LIMITS_OFF}${request ? `, request: ${request}` : ''}` });
  // Node's own 16 KB header limit would answer 431 for the origin: let it take what the edge passes.
  (o.server as unknown as { maxHeaderSize: number }).maxHeaderSize = 64 * 1024;
  return { o, px };
}

const get = (target: string, extra = ''): string => `GET ${target} HTTP/1.1\r\nHost: shop.test\r\n${extra}\r\n`;
const headers = (n: number, valueLen = 4): string => Array.from({ length: n }, (_, i) => `X-H${i}: ${'v'.repeat(valueLen)}\r\n`).join('');

test('configured limits: 414 URL, 431 header bytes, 431 header count, 413 body; the origin sees none of them', async (t) => {
  const { o, px } = await edgeWith(t, '{ max_url: 100, max_header_bytes: 1kb, max_headers: 10, max_body: 1kb }');

  // just inside each limit: proxied
  assert.equal((await rawRequest(px.port, get(`/${'a'.repeat(99)}`), 500)).status, 200);
  assert.equal((await rawRequest(px.port, get('/h', headers(8)), 500)).status, 200, 'Host + 8 = 9 fields ≤ 10');
  const post = (len: number) => `POST /up HTTP/1.1\r\nHost: shop.test\r\nContent-Length: ${len}\r\n\r\n${'b'.repeat(len)}`;
  assert.equal((await rawRequest(px.port, post(1024), 500)).status, 200);
  const okCount = o.seen.length;
  assert.equal(okCount, 3);

  // URL: path + query over 100
  let r = await rawRequest(px.port, get(`/${'a'.repeat(60)}?q=${'b'.repeat(60)}`), 500);
  assert.equal(r.status, 414);
  assert.equal(r.headers.connection, 'close');
  // header bytes over 1 KB in few fields
  r = await rawRequest(px.port, get('/h', headers(3, 500)), 500);
  assert.equal(r.status, 431);
  assert.match(r.body.toString(), /header block too large/);
  // header count: Host + 10 = 11 fields
  r = await rawRequest(px.port, get('/h', headers(10)), 500);
  assert.equal(r.status, 431);
  assert.match(r.body.toString(), /too many header fields/);
  // body: Content-Length over 1 KB is refused before any body byte is read
  r = await rawRequest(px.port, 'POST /up HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 1025\r\n\r\n', 500);
  assert.equal(r.status, 413);
  assert.equal(o.seen.length, okCount, 'no rejected request reached the origin');
});

test('chunked body over max_body: 413 once the streamed size passes it; the origin never gets the whole body', async (t) => {
  const { o, px } = await edgeWith(t, '{ max_body: 16kb }');
  const chunk = 'c'.repeat(4096);
  // Content-Length is checked on the head; a chunked body shows its size only while it streams.
  const result = await new Promise<{ data: string; closed: boolean }>((resolve) => {
    const s = connect(px.port, '127.0.0.1');
    let data = '';
    s.on('data', (d: Buffer) => { data += d.toString('latin1'); });
    s.on('error', () => {});
    s.on('close', () => { clearInterval(pump); clearTimeout(timer); resolve({ data, closed: true }); });
    s.write('POST /up HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\n\r\n');
    let sent = 0;
    // 64 KB in 4 KB chunks, then the terminator
    const pump = setInterval(() => {
      if (s.destroyed) return;
      if (sent >= 16) { clearInterval(pump); s.write('0\r\n\r\n'); return; }
      s.write(`1000\r\n${chunk}\r\n`);
      sent++;
    }, 10);
    const timer = setTimeout(() => { clearInterval(pump); s.destroy(); resolve({ data, closed: false }); }, 3000);
  });
  await sleep(100);
  assert.match(result.data, /^HTTP\/1\.1 413 /, `got ${JSON.stringify(result.data.slice(0, 80))}`);
  assert.ok(result.closed, 'connection closed after the 413');
  const bodyAtOrigin = o.seen.reduce((n, r) => n + r.bodyBytes, 0);
  assert.ok(bodyAtOrigin <= 16 * 1024, `origin received ${bodyAtOrigin} body bytes (max_body 16 KB)`);
  await waitFor('the upstream request was abandoned', () => o.active === 0, 2000);
  const ev = px.events.find((e) => e.type === 'guard' && (e as unknown as { reason: string }).reason === 'body_too_large');
  assert.ok(ev, 'a guard event names body_too_large');
  assert.equal(px.edge.pipeline.inFlight, 0);
});

test('defaults: max_url 8 KB (414 above), max_header_bytes 32 KB, max_headers 48 (431 above), max_body 100 MB (413 above)', async (t) => {
  const { o, px } = await edgeWith(t, '');
  assert.equal((await rawRequest(px.port, get(`/${'a'.repeat(8191)}`), 500)).status, 200);
  assert.equal((await rawRequest(px.port, get(`/${'a'.repeat(8192)}`), 500)).status, 414);
  // 31 KB of headers in one write: uWS's 4 KB fallback limit applies only to heads split over reads
  assert.equal((await rawRequest(px.port, get('/h', headers(31, 1000)), 500)).status, 200);
  assert.equal((await rawRequest(px.port, get('/h', headers(33, 1000)), 500)).status, 431);
  assert.equal((await rawRequest(px.port, get('/h', headers(47)), 500)).status, 200, 'Host + 47 = 48 fields');
  // 49 fields: above our default and above what uWS 20.30 parses at all (it closes or never answers)
  const over = await rawRequest(px.port, get('/h', headers(48)), 1500);
  assert.notEqual(over.status, 200);
  assert.equal((await rawRequest(px.port, `POST /up HTTP/1.1\r\nHost: shop.test\r\nContent-Length: ${100 * 1024 * 1024 + 1}\r\n\r\n`, 500)).status, 413);
  assert.equal(o.seen.length, 3);
});
