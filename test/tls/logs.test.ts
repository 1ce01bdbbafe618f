// Why: uWS prints "finding <name>" / "Browsed to SNI: <name>" on stdout for every SNI name it
// installs (uws-notes §6). JSON logs on stdout would then carry non-JSON lines; with the access log
// and events in files (as docs/tls.md recommends for multi-certificate uWS listeners) every line
// parses. The default engine (http1, node:tls) prints nothing of the kind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { spawnEdge } from '../harness/process.js';
import { edgeYaml } from '../harness/edge.js';
import { startOrigin } from '../harness/origin.js';
import { createTestCa } from './certs.js';

for (const engine of ['http1', 'uws'] as const) test(`${engine}: SNI noise ${engine === 'uws' ? 'stays on stdout' : 'is absent'}; access log and events written to files are pure JSON lines`, async (t) => {
  const ca = createTestCa(t);
  const a = ca.issue('a', ['a.test']);
  const b = ca.issue('b', ['b.test']);
  const o = await startOrigin('web1');
  t.after(() => o.close());
  const access = join(ca.dir, 'access.log');
  const events = join(ca.dir, 'events.log');
  const px = await spawnEdge(edgeYaml({
    listener: `engine: ${engine}, tls: { cert: "${a.cert}", key: "${a.key}", certificates: [{ cert: "${b.cert}", key: "${b.key}" }] }`,
    accessLog: access,
    eventLog: events,
    servers: [{ name: 'web1', url: o.url }],
  }));
  t.after(() => px.stop());
  for (const sni of ['a.test', 'b.test', 'b.test', 'a.test']) {
    await new Promise<void>((resolve, reject) => {
      const s = connect({ port: px.port, host: '127.0.0.1', servername: sni, ca: ca.ca }, () => {
        s.write(`GET /${sni} HTTP/1.1\r\nHost: ${sni}\r\nConnection: close\r\n\r\n`);
      });
      s.on('data', () => {});
      s.on('close', () => resolve());
      s.on('error', reject);
    });
  }
  assert.equal(await px.stop(), 0);
  if (engine === 'uws') assert.match(px.output(), /finding b\.test/, 'uWS noise is on stdout (documented)');
  else assert.doesNotMatch(px.output(), /finding|Browsed/, 'node:tls prints nothing per SNI name');
  assert.doesNotMatch(px.output(), /finding a\.test/, 'the default certificate\'s names print nothing');
  const lines = readFileSync(access, 'utf8').trim().split('\n');
  assert.equal(lines.length, 4);
  for (const l of lines) assert.doesNotThrow(() => JSON.parse(l), l);
  const ev = readFileSync(events, 'utf8').trim().split('\n').filter((l) => l !== '');
  for (const l of ev) assert.doesNotThrow(() => JSON.parse(l), l);
});
