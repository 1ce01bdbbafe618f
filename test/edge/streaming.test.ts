// Why: a proxy that buffers whole bodies falls over at peak (a slow client must not make it hold a
// 100 MB response; a slow origin must not make it hold a whole upload). Client aborts must cancel the
// origin's work. Runs the edge as a separate process so its memory can be measured.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { sleep, waitFor } from '../harness/wait.js';
import { startOrigin } from '../harness/origin.js';
import { spawnEdge } from '../harness/process.js';
import { CLIENT_LIMITS_OFF, edgeYaml } from '../harness/edge.js';
import { rawRequest } from '../harness/client.js';

const MB = 1024 * 1024;
const block = Buffer.alloc(64 * 1024, 'abcdefghijklmnopqrstuvwxyz0123456789');

function streamingEdge(url: string): string {
  return edgeYaml({ limits: CLIENT_LIMITS_OFF, servers: [{ name: 'o', url }], more: 'timeouts: { client_write_stall: 30s }' });
}

test('100 MB download to a reader that stalls: proxy memory stays bounded, bytes intact', async (t) => {
  const size = 100 * MB;
  const o = await startOrigin('big', (_req, res) => {
    res.writeHead(200, { 'content-length': String(size), 'content-type': 'application/octet-stream' });
    let sent = 0;
    const pump = () => {
      while (sent < size) { sent += block.length; if (!res.write(block)) { res.once('drain', pump); return; } }
      res.end();
    };
    pump();
  });
  t.after(() => o.close());
  const px = await spawnEdge(streamingEdge(o.url));
  t.after(() => px.stop());
  await rawRequest(px.port, 'GET /warm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 300);
  const base = px.rssKb();
  const hash = createHash('sha256');
  let got = 0;
  let peakDuring = 0;
  await new Promise<void>((resolve, reject) => {
    const s = connect(px.port, '127.0.0.1');
    let head = true;
    s.on('data', (d: Buffer) => {
      let body = d;
      if (head) { const i = d.indexOf('\r\n\r\n'); assert.ok(d.subarray(0, i).toString().startsWith('HTTP/1.1 200')); body = d.subarray(i + 4); head = false; }
      hash.update(body);
      got += body.length;
      if (got >= size) { s.end(); resolve(); return; }
      if (got > 2 * MB && got - body.length <= 2 * MB) {
        // stall for 2 s while the origin could send 98 MB more
        s.pause();
        const probe = setInterval(() => { peakDuring = Math.max(peakDuring, px.rssKb()); }, 100);
        setTimeout(() => { clearInterval(probe); s.resume(); }, 2000);
      }
    });
    s.on('error', reject);
    s.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
  });
  const expected = createHash('sha256');
  for (let n = 0; n < size; n += block.length) expected.update(block);
  assert.equal(got, size);
  assert.equal(hash.digest('hex'), expected.digest('hex'));
  const growthMb = (peakDuring - base) / 1024;
  assert.ok(growthMb < 48, `proxy RSS grew ${growthMb.toFixed(1)} MB while a 100 MB response was stalled`);
});

test('10 MB upload to an origin that reads slowly: streamed, bounded, intact', async (t) => {
  const size = 10 * MB;
  let originHash = '';
  let originBytes = 0;
  const o = await startOrigin('up', (_req, res, seen) => { res.end(`got ${seen.bodyBytes}`); });
  // replace the handler: read slowly with pauses
  o.server.removeAllListeners('request');
  o.server.on('request', (req, res) => {
    const h = createHash('sha256');
    req.on('data', (c: Buffer) => { h.update(c); originBytes += c.length; req.pause(); setTimeout(() => req.resume(), 2); });
    req.on('end', () => { originHash = h.digest('hex'); res.end(`got ${originBytes}`); });
  });
  t.after(() => o.close());
  const px = await spawnEdge(streamingEdge(o.url));
  t.after(() => px.stop());
  const base = px.rssKb();
  const expected = createHash('sha256');
  const res = await new Promise<string>((resolve, reject) => {
    const s = connect(px.port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => { out += d.toString(); if (out.includes('got ')) { s.end(); resolve(out); } });
    s.on('error', reject);
    s.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
    let sent = 0;
    const pump = () => {
      while (sent < size) { expected.update(block); sent += block.length; if (!s.write(block)) { s.once('drain', pump); return; } }
    };
    pump();
  });
  assert.match(res, /^HTTP\/1.1 200/);
  assert.equal(originBytes, size);
  assert.equal(originHash, expected.digest('hex'));
  const growthMb = (px.peakRssKb() - base) / 1024;
  assert.ok(growthMb < 40, `proxy peak RSS grew ${growthMb.toFixed(1)} MB for a 10 MB upload`);
});

test('client abort cancels the upstream request', async (t) => {
  let originSawClose = false;
  const o = await startOrigin('stream', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    const timer = setInterval(() => res.write('tick\n'), 50);
    res.on('close', () => { clearInterval(timer); originSawClose = true; });
  });
  t.after(() => o.close());
  const px = await spawnEdge(streamingEdge(o.url));
  t.after(() => px.stop());
  const s = connect(px.port, '127.0.0.1');
  await new Promise<void>((resolve) => {
    s.once('data', () => resolve());
    s.write('GET /events HTTP/1.1\r\nHost: x\r\n\r\n');
  });
  s.destroy();
  await waitFor('the origin connection to close after the client went away', () => originSawClose, 1500);
});

test('hop-by-hop response headers are stripped; HEAD gets no body; 204 keeps the connection', async (t) => {
  const o = await startOrigin('hop', (req, res) => {
    if (req.url === '/nocontent') { res.statusCode = 204; res.end(); return; }
    res.setHeader('connection', 'keep-alive, x-secret-hop');
    res.setHeader('x-secret-hop', 'leak');
    res.setHeader('keep-alive', 'timeout=5');
    res.setHeader('proxy-authenticate', 'Basic');
    res.setHeader('x-kept', 'yes');
    res.setHeader('content-length', '10');
    res.setHeader('content-type', 'text/plain');
    res.end('body-bytes');
  });
  t.after(() => o.close());
  const px = await spawnEdge(streamingEdge(o.url));
  t.after(() => px.stop());
  const r = await rawRequest(px.port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 1000);
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-kept'], 'yes');
  assert.equal(r.headers['x-secret-hop'], undefined);
  assert.equal(r.headers['keep-alive'], undefined);
  assert.equal(r.headers['proxy-authenticate'], undefined);
  assert.equal(r.body.toString(), 'body-bytes');
  // HEAD then 204 then GET on one keep-alive connection: no body bytes may follow the HEAD head.
  const answers = await sequence(px.port, ['HEAD / HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /nocontent HTTP/1.1\r\nHost: x\r\n\r\n', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n']);
  assert.match(answers[0], /^HTTP\/1.1 200 OK\r\n/);
  assert.match(answers[0], /\r\ncontent-length: 10\r\n/i);
  assert.ok(answers[0].endsWith('\r\n\r\n'), 'HEAD answered without a body');
  assert.match(answers[1], /^HTTP\/1.1 204 /);
  assert.ok(answers[1].endsWith('\r\n\r\n'));
  assert.match(answers[2], /^HTTP\/1.1 200 OK\r\n[\s\S]*\r\n\r\nbody-bytes$/);
});

/** Sends each request after the previous answer went quiet for 150 ms; returns each answer's bytes. */
async function sequence(port: number, requests: string[]): Promise<string[]> {
  const s = connect(port, '127.0.0.1');
  const answers: string[] = [];
  let current = '';
  s.on('data', (d) => { current += d.toString('latin1'); });
  for (const r of requests) {
    current = '';
    s.write(r);
    let last = -1;
    while (current.length === 0 || current.length !== last) { last = current.length; await sleep(150); }
    answers.push(current);
  }
  s.destroy();
  return answers;
}

test('graceful stop: SIGTERM lets in-flight requests finish and refuses new ones', async (t) => {
  const o = await startOrigin('slow', (_req, res) => { setTimeout(() => res.end('finished'), 800); });
  t.after(() => o.close());
  const px = await spawnEdge(streamingEdge(o.url));
  const inflight = rawRequest(px.port, 'GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 3000);
  await sleep(200);
  const exit = px.stop('SIGTERM');
  await sleep(150);
  const refused = await rawRequest(px.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 300).catch(() => null);
  assert.ok(refused === null || refused.status === 0, 'new connections are not served once stopping');
  const r = await inflight;
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'finished');
  assert.equal(await exit, 0);
});
