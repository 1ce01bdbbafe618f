// Why: origins that want the real client address get it in a PROXY v2 header (`send_proxy: v2`),
// on connections that only ever carry that client's requests; incoming PROXY protocol is accepted
// by the http1 engine from trusted proxies only (accept.test.ts), and refused with engine: uws,
// whose parser lets any client spoof it (uws-notes §3).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { edgeYaml, startTestEdge } from '../harness/edge.js';
import { httpClient } from '../harness/client.js';
import { startRawOrigin, type RawOrigin, type SeenProxyHeader } from '../harness/origin.js';
import { loadConfigText } from '../../edge/config/load.js';

/** The scripted raw origin answering each request with 200 and the source address its connection's PROXY v2 header named. */
function startProxyOrigin(): Promise<RawOrigin> {
  return startRawOrigin((r) => {
    const body = `src=${r.proxy?.src ?? 'none'}\n`;
    return `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
  });
}

/** Per connection: the PROXY v2 header it started with and its request lines. */
function conns(o: RawOrigin): { header: SeenProxyHeader | null; requests: string[] }[] {
  return o.connections.map((_, i) => ({ header: o.proxyHeaders[i], requests: o.requests.filter((r) => r.conn === i).map((r) => r.line) }));
}

for (const client of ['h1', 'undici'] as const) {
  test(`send_proxy: v2 (${client} upstream client): the origin gets the client address first, one connection per client`, async (t) => {
    const o = await startProxyOrigin();
    t.after(() => o.close());
    const plain = await startProxyOrigin();
    t.after(() => plain.close());
    const px = await startTestEdge(`
listen: [{ address: "127.0.0.1:{{PORT}}" }]
access_log: { path: "off" }
upstream: { client: ${client} }
trusted_proxies: ["127.0.0.1"]
default_backend: shop
backends:
  shop:
    servers: [{ name: pp, url: "${o.url}", send_proxy: v2 }]
  plain:
    servers: [{ name: np, url: "${plain.url}" }]
`);
    t.after(() => px.stop());
    const c = httpClient({ connections: 1 });
    t.after(() => c.close());
    // Direct client (127.0.0.1) twice, then two clients behind the trusted proxy (XFF).
    const r1 = await c.get(`${px.url}/a`);
    assert.equal(r1.status, 200);
    assert.equal(r1.body, 'src=127.0.0.1\n');
    assert.equal((await c.get(`${px.url}/b`)).status, 200);
    const r3 = await c.get(`${px.url}/c`, { 'x-forwarded-for': '203.0.113.9' });
    assert.equal(r3.body, 'src=203.0.113.9\n');
    const r4 = await c.get(`${px.url}/d`, { 'x-forwarded-for': '2001:db8::7' });
    assert.equal(r4.body, 'src=2001:0db8:0000:0000:0000:0000:0000:0007\n');

    const byClient = new Map<string, string[]>();
    for (const conn of conns(o)) {
      assert.ok(conn.header !== null, 'every connection starts with a PROXY v2 header');
      assert.equal(conn.header.command, 0x21, 'version 2, command PROXY');
      byClient.set(conn.header.src, [...(byClient.get(conn.header.src) ?? []), ...conn.requests]);
      if (conn.header.family === 0x11) {
        assert.equal(conn.header.dst, '127.0.0.1');
        assert.equal(conn.header.dstPort, px.port, 'destination = the edge listener');
      }
    }
    assert.deepEqual(byClient.get('127.0.0.1'), ['GET /a HTTP/1.1', 'GET /b HTTP/1.1'], 'same client reuses its connection');
    assert.deepEqual(byClient.get('203.0.113.9'), ['GET /c HTTP/1.1']);
    assert.equal(conns(o).filter((x) => x.header?.src === '127.0.0.1').length, 1);
    assert.equal(conns(o).length, 3, 'one upstream connection per client address');
  });
}

test('a server without send_proxy gets no PROXY header', async (t) => {
  const o = await startProxyOrigin();
  t.after(() => o.close());
  const px = await startTestEdge(edgeYaml({ servers: [{ name: 'np', url: o.url }] }));
  t.after(() => px.stop());
  const c = httpClient({ connections: 1 });
  t.after(() => c.close());
  const r = await c.get(`${px.url}/x`);
  assert.equal(r.body, 'src=none\n');
  assert.equal(conns(o)[0].header, null);
});

test('send_proxy: v2 also applies to WebSocket tunnels (the header precedes the upgrade request)', async (t) => {
  // The raw origin answers the upgrade with a plain 200 — enough to see what arrived first.
  const o = await startProxyOrigin();
  t.after(() => o.close());
  const px = await startTestEdge(edgeYaml({ servers: [{ name: 'pp', url: o.url, more: 'send_proxy: v2' }] }));
  t.after(() => px.stop());
  const status = await new Promise<number>((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${px.port}/socket`, { headers: { host: 'shop.test' } });
    ws.on('unexpected-response', (_q, res) => { resolve(res.statusCode ?? 0); ws.terminate(); });
    ws.on('error', () => resolve(-1));
  });
  assert.equal(status, 200, 'the origin\'s non-101 answer is relayed');
  assert.equal(conns(o)[0].header?.src, '127.0.0.1');
  assert.equal(conns(o)[0].requests[0], 'GET /socket HTTP/1.1');
});

test('accept_proxy needs engine: http1 and trusted_proxies: otherwise refused with file:line:key and the reason', () => {
  const yaml = `listen:
  - address: "127.0.0.1:8080"
    accept_proxy: true
backends: { s: { servers: [{ name: a, url: "http://127.0.0.1:1" }] } }
`;
  assert.throws(() => loadConfigText(yaml, 'edge.yaml', {}), (e: Error) => {
    assert.match(e.message, /^edge\.yaml:3: listen\[0\]\.accept_proxy: accept_proxy needs trusted_proxies/);
    return true;
  });
  assert.throws(() => loadConfigText(yaml.replace('accept_proxy: true', 'accept_proxy: true\n    engine: uws') + 'trusted_proxies: [10.0.0.0/8]\n', 'edge.yaml', {}), (e: Error) => {
    assert.match(e.message, /listen\[0\]\.accept_proxy: PROXY protocol needs engine: http1/);
    assert.match(e.message, /any client could spoof its address/);
    return true;
  });
  const ok = loadConfigText(`${yaml}trusted_proxies: [10.0.0.0/8]\n`, 'edge.yaml', {});
  assert.equal(ok.listen[0].acceptProxy, true);
  // accept_proxy: false is accepted (explicitly off).
  const cfg = loadConfigText(yaml.replace('accept_proxy: true', 'accept_proxy: false'), 'edge.yaml', {});
  assert.equal(cfg.listen[0].acceptProxy, false);
});
