// Why: origins log and authorise on X-Forwarded-For and X-Request-Id. A client must not be able to
// forge them unless it is a configured trusted proxy; every request leaves one access-log line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../harness/wait.js';
import { startOriginAndEdge, freePort } from '../harness/edge.js';
import { rawRequest } from '../harness/client.js';

test('X-Forwarded-For / X-Request-Id from an untrusted peer are replaced; from a trusted proxy they are kept', async (t) => {
  const second = await freePort();
  const { o, px } = await startOriginAndEdge(t, {
    listeners: [`{ address: "127.0.0.2:${second}", name: internal }`],
    more: 'trusted_proxies: [127.0.0.2/32]',
  });
  const forged = 'GET /a HTTP/1.1\r\nHost: shop\r\nX-Forwarded-For: 6.6.6.6\r\nX-Request-Id: forged-id\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n';
  const r1 = await rawRequest(px.port, forged, 800);
  assert.equal(r1.status, 200);
  const s1 = o.seen.at(-1)!;
  assert.equal(s1.headers['x-forwarded-for'], '127.0.0.1', 'untrusted XFF ignored');
  assert.notEqual(s1.headers['x-request-id'], 'forged-id');
  assert.equal(s1.headers['x-forwarded-proto'], 'http');
  // the second listener is reached from 127.0.0.2, which is trusted
  const { connect } = await import('node:net');
  const viaTrusted = await new Promise<string>((resolve) => {
    const s = connect({ port: second, host: '127.0.0.2', localAddress: '127.0.0.2' });
    let out = '';
    s.on('data', (d) => { out += d; });
    s.on('close', () => resolve(out));
    s.write(forged);
  });
  assert.match(viaTrusted, /^HTTP\/1.1 200/);
  const s2 = o.seen.at(-1)!;
  assert.equal(s2.headers['x-forwarded-for'], '6.6.6.6, 127.0.0.2', 'trusted proxy: client address kept, proxy appended');
  assert.equal(s2.headers['x-request-id'], 'forged-id');
  assert.equal(s2.headers['x-forwarded-proto'], 'https');
});

test('one access-log line per request with the documented fields', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-log-'));
  const file = join(dir, 'access.log');
  const { px } = await startOriginAndEdge(t, { accessLog: file });
  for (let i = 0; i < 5; i++) await rawRequest(px.port, `POST /p${i}?q=1 HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc`, 500);
  await px.stop();
  // The access log is written asynchronously, in batches: wait for the five lines, then no more.
  await waitFor('5 access lines', () => readFileSync(file, 'utf8').trim().split('\n').length >= 5, 2000);
  const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, 5);
  const l = lines[0];
  for (const k of ['time', 'client', 'method', 'host', 'path', 'status', 'bytes_in', 'bytes_out', 'Ta', 'Tr', 'backend', 'server', 'retries', 'request_id', 'term', 'proto', 'sni']) {
    assert.ok(k in l, `field ${k} in ${JSON.stringify(l)}`);
  }
  assert.equal(l.client, '127.0.0.1');
  assert.equal(l.method, 'POST');
  assert.equal(l.host, 'shop.test');
  assert.equal(l.path, '/p0');
  assert.equal(l.status, 200);
  assert.equal(l.bytes_in, 3);
  assert.equal(l.bytes_out, 'hello from web1\n'.length);
  assert.equal(l.backend, 'shop');
  assert.equal(l.server, 'web1');
  assert.equal(l.term, '--');
  assert.equal(l.proto, 'HTTP/1.1');
  assert.equal(l.sni, null, 'plain listener: no SNI');
});
