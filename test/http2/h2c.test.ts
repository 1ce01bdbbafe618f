// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// h2c with prior knowledge on a plain listener: for a trusted load balancer only (listen[].h2c, off by
// default). Any other peer, and every peer when h2c is off, meets the HTTP/1.1 parser, which refuses
// the HTTP/2 preface at once. Plus the config checks of the HTTP/2 keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startOrigin } from '../harness/origin.js';
import { edgeYaml, startTestEdge, CLIENT_LIMITS_OFF } from '../harness/edge.js';
import { loadConfigText } from '../../edge/config/load.js';
import { run } from './setup.js';
import { DEFAULT_HTTP2_ENGINE } from '../../edge/http2/config.js';

function preface(port: number, localAddress: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    const s = connect({ host: '127.0.0.1', port, localAddress }, () => s.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00'));
    s.on('data', (d: Buffer) => { data += d.toString('latin1'); });
    s.on('close', () => resolve(data));
    s.on('error', reject);
    setTimeout(() => s.destroy(), 3000).unref();
  });
}

test('h2c prior knowledge from a trusted peer is served (curl --http2-prior-knowledge); HTTP/1.1 still works; untrusted peers get the HTTP/1.1 refusal', async (t) => {
  const o = await startOrigin('web1');
  t.after(() => o.close());
  const px = await startTestEdge(edgeYaml({ servers: [{ name: 'web1', url: o.url }], listener: 'h2c: true', limits: CLIENT_LIMITS_OFF, more: 'trusted_proxies: [127.0.0.1/32]' }));
  t.after(() => px.stop());
  const r = await run('curl', ['-sS', '--http2-prior-knowledge', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', `http://127.0.0.1:${px.port}/h2c`]);
  assert.equal(r.stdout.toString(), '2 200', r.stderr);
  const r1 = await run('curl', ['-sS', '--http1.1', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', `http://127.0.0.1:${px.port}/h1`]);
  assert.equal(r1.stdout.toString(), '1.1 200');
  const nghttp = await run('nghttp', [`http://127.0.0.1:${px.port}/nghttp`]);
  assert.equal(nghttp.code, 0, nghttp.stderr);
  assert.match(nghttp.stdout.toString(), /hello from web1/);
  // From 127.0.0.2 (not trusted): the preface is an HTTP/1.1 request line the parser refuses.
  const untrusted = await preface(px.port, '127.0.0.2');
  assert.match(untrusted, /^HTTP\/1\.1 (400|505) /);
  assert.deepEqual(o.seen.map((s) => s.url), ['/h2c', '/h1', '/nghttp']);
});

test('h2c off (the default): the preface is refused at once', async (t) => {
  const o = await startOrigin('web1');
  t.after(() => o.close());
  const px = await startTestEdge(edgeYaml({ servers: [{ name: 'web1', url: o.url }], limits: CLIENT_LIMITS_OFF, more: 'trusted_proxies: [127.0.0.1/32]' }));
  t.after(() => px.stop());
  assert.match(await preface(px.port, '127.0.0.1'), /^HTTP\/1\.1 (400|505) /);
  assert.equal(o.seen.length, 0);
});

test('config: h2c needs trusted_proxies and a plain listener; http2 defaults on for TLS; errors name file:line:key', () => {
  const base = 'listen:\n  - address: "127.0.0.1:8080"\n    h2c: true\nbackends: { s: { servers: [{ name: a, url: "http://127.0.0.1:1" }] } }\n';
  assert.throws(() => loadConfigText(base, 'edge.yaml', {}), /edge\.yaml:3: listen\[0\]\.h2c: h2c is accepted only from trusted_proxies/);
  const ok = loadConfigText(`${base}trusted_proxies: [10.0.0.0/8]\n`, 'edge.yaml', {});
  assert.equal(ok.listen[0].h2c, true);
  assert.equal(ok.listen[0].http2, false);
  assert.equal(ok.http2.maxConcurrentStreams, 32, 'min(100, limits.client.in_flight default 32)');
  assert.equal(loadConfigText(`${base}trusted_proxies: [10.0.0.0/8]\nlimits: { client: { in_flight: 0 } }\n`, 'edge.yaml', {}).http2.maxConcurrentStreams, 100, 'in_flight off: 100');
  assert.equal(loadConfigText(`${base}trusted_proxies: [10.0.0.0/8]\nlimits: { client: { in_flight: 500 } }\n`, 'edge.yaml', {}).http2.maxConcurrentStreams, 100);
  assert.equal(loadConfigText(`${base}trusted_proxies: [10.0.0.0/8]\nhttp2: { max_concurrent_streams: 200 }\n`, 'edge.yaml', {}).http2.maxConcurrentStreams, 200, 'set explicitly: as set');
  assert.equal(ok.http2.sniMismatchStatus, 421);
  assert.throws(() => loadConfigText(`${base}http2: { rapid_reset: { limit: 0 } }\ntrusted_proxies: [10.0.0.0/8]\n`, 'edge.yaml', {}), /edge\.yaml:5: http2\.rapid_reset\.limit/);
  const d = loadConfigText(`${base}http2: { flood: { ping: 7, window: 2s }, write_stall: 3s, sni_mismatch: allow }\ntrusted_proxies: [10.0.0.0/8]\n`, 'edge.yaml', {});
  assert.deepEqual([d.http2.flood.ping, d.http2.flood.windowMs, d.http2.writeStallMs, d.http2.sniMismatchStatus], [7, 2000, 3000, 0]);
});

test('config: listen[].http2_engine is portcullis or node (default: DEFAULT_HTTP2_ENGINE); other values name file:line:key', () => {
  const plain = (extra: string): string => `listen:\n  - address: "127.0.0.1:8080"${extra}\nbackends: { s: { servers: [{ name: a, url: "http://127.0.0.1:1" }] } }\n`;
  assert.equal(loadConfigText(plain(''), 'edge.yaml', {}).listen[0].http2Engine, DEFAULT_HTTP2_ENGINE);
  assert.equal(loadConfigText(plain('\n    http2_engine: portcullis'), 'edge.yaml', {}).listen[0].http2Engine, 'portcullis');
  assert.equal(loadConfigText(plain('\n    http2_engine: node'), 'edge.yaml', {}).listen[0].http2Engine, 'node');
  assert.throws(() => loadConfigText(plain('\n    http2_engine: nghttp2'), 'edge.yaml', {}), /edge\.yaml:3: listen\[0\]\.http2_engine: must be one of/);
});
