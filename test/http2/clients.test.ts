// Real HTTP/2 clients (curl --http2, nghttp) through Portcullis to a test origin: each stream is a
// request through the whole pipeline, translated to HTTP/1.1 for the origin and back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BIG, HOST, bigBody, curl, run, sha256, startH2Edge } from './setup.js';

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
