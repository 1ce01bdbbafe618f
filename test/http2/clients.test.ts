// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// Real HTTP/2 clients (curl --http2, nghttp) through Portcullis to a test origin: each stream is a
// request through the whole pipeline, translated to HTTP/1.1 for the origin and back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BIG, HOST, bigBody, curl, h2client, run, sha256, startH2Edge } from './setup.js';

test('curl --http2: GET is served over h2, headers lower-cased, hop-by-hop dropped, access line says HTTP/2.0', async (t) => {
  const e = await startH2Edge(t);
  const r = await curl(e, '/hello?x=1', ['-i', '-H', 'cookie: a=1', '-H', 'cookie: b=2']);
  assert.equal(r.code, 0, r.stderr);
  const text = r.stdout.toString('latin1');
  assert.match(text, /^HTTP\/2 200/);
  assert.match(text, /\r\nx-mixed-case: yes\r\n/);
  assert.match(text, /\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n/);
  assert.doesNotMatch(text, /\r\n(connection|keep-alive|transfer-encoding):/i);
  assert.match(text, /hello from web1 GET \/hello\?x=1/);
  const seen = e.o.seen.at(-1);
  assert.ok(seen);
  assert.equal(seen.headers.host, `${HOST}:${e.port}`);
  assert.equal(seen.headers.cookie, 'a=1; b=2', 'cookie crumbs joined with "; " into one field');
  assert.equal(seen.headers['x-forwarded-proto'], 'https');
});

test('curl --http2: POST bodies reach the origin whole (with and without content-length); rules see http.version "2"', async (t) => {
  const e = await startH2Edge(t);
  const body = Buffer.alloc(300_000, 'x');
  const { writeFileSync } = await import('node:fs');
  const file = `${e.ca.dir}/body.bin`;
  writeFileSync(file, body);
  const r = await curl(e, '/echo', ['--data-binary', `@${file}`, '-H', 'content-type: application/octet-stream']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout.toString()) as { bytes: number; method: string; headers: Record<string, string> };
  assert.equal(j.method, 'POST');
  assert.equal(j.bytes, body.length);
  assert.equal(j.headers['content-length'], String(body.length));
  // Without content-length (curl streams stdin): the origin gets it chunked.
  const r2 = await run('sh', ['-c', `head -c 100000 /dev/zero | curl --http2 -sS --cacert ${e.caFile} --resolve ${HOST}:${e.port}:127.0.0.1 -T - -X POST https://${HOST}:${e.port}/echo`]);
  assert.equal(r2.code, 0, r2.stderr);
  const j2 = JSON.parse(r2.stdout.toString()) as { bytes: number; headers: Record<string, string> };
  assert.equal(j2.bytes, 100_000);
  assert.equal(j2.headers['transfer-encoding'], 'chunked');
});

test('curl --http2: a 4 MB download passes intact through flow control', async (t) => {
  const e = await startH2Edge(t);
  const r = await curl(e, '/big');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.length, BIG);
  assert.equal(sha256(r.stdout), sha256(bigBody()));
});

test('nghttp: GET, POST, concurrent streams on one connection, large download and response trailers', async (t) => {
  const e = await startH2Edge(t);
  const base = `https://${HOST}:${e.port}`;
  // nghttp has no --resolve: connect to 127.0.0.1 and set :authority (SNI follows the URL host, so use IP + authority header).
  const hosts = ['-H', `:authority: ${HOST}:${e.port}`];
  const url = (p: string): string => `https://127.0.0.1:${e.port}${p}`;
  void base;
  // SNI is absent for an IP literal: the :authority check needs no SNI match then.
  const g = await run('nghttp', ['-v', ...hosts, url('/a'), url('/b'), url('/c')]);
  assert.equal(g.code, 0, g.stderr);
  const out = g.stdout.toString();
  for (const p of ['/a', '/b', '/c']) assert.match(out, new RegExp(`hello from web1 GET ${p}`));
  assert.equal((out.match(/recv HEADERS frame/g) ?? []).length >= 3, true);
  const big = await run('nghttp', [...hosts, '-w', '16', url('/big')]);
  assert.equal(big.code, 0, big.stderr);
  assert.equal(big.stdout.length, BIG, 'a 64 KB connection window (-w 16) still gets the whole body');
  const tr = await run('nghttp', ['-v', ...hosts, url('/trailers')]);
  assert.equal(tr.code, 0, tr.stderr);
  const trOut = tr.stdout.toString();
  assert.match(trOut, /part one\n[\s\S]*part two\n/);
  assert.match(trOut, /x-checksum: abc123/, 'the origin\'s chunked trailer reaches the client as an HTTP/2 trailer block');
  const post = await run('sh', ['-c', `head -c 50000 /dev/zero > ${e.ca.dir}/z && nghttp -H ':authority: ${HOST}:${e.port}' -d ${e.ca.dir}/z ${url('/echo')}`]);
  assert.equal(post.code, 0, post.stderr);
  assert.equal((JSON.parse(post.stdout.toString()) as { bytes: number }).bytes, 50_000);
});

test('curl --http2: request trailers reach the origin after a chunked body', async (t) => {
  const e = await startH2Edge(t);
  // node:http2 as a client can send trailers; curl cannot.
  const c = h2client(e);
  t.after(() => c.close());
  const req = c.request({ ':method': 'POST', ':path': '/echo' }, { waitForTrailers: true });
  req.on('wantTrailers', () => req.sendTrailers({ 'x-digest': 'sha-256=abc' }));
  req.end('hello');
  const chunks: Buffer[] = [];
  req.on('data', (d: Buffer) => chunks.push(d));
  await new Promise((r) => req.on('end', r));
  const j = JSON.parse(Buffer.concat(chunks).toString()) as { bytes: number; trailers: Record<string, string> };
  assert.equal(j.bytes, 5);
  assert.equal(j.trailers['x-digest'], 'sha-256=abc');
});

test('expect: 100-continue: the client gets its 100 once a server is chosen, then its body goes through', async (t) => {
  const e = await startH2Edge(t);
  const c = h2client(e);
  t.after(() => c.close());
  const req = c.request({ ':method': 'POST', ':path': '/echo', expect: '100-continue', 'content-length': '11' });
  await new Promise<void>((resolve) => req.once('continue', () => resolve()));
  req.end('hello world');
  const chunks: Buffer[] = [];
  req.on('data', (d: Buffer) => chunks.push(d));
  await new Promise((r) => req.on('end', r));
  assert.equal((JSON.parse(Buffer.concat(chunks).toString()) as { bytes: number }).bytes, 11);
  assert.equal(e.o.seen.at(-1)?.headers.expect, undefined, 'expect is hop-by-hop: the origin never sees it');
});
