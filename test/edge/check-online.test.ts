// `portcullis check --online`: a bad Redis password, a missing permission or a server that does not
// answer its health check is reported (exit 1, one line each, the password never printed) before a
// deploy; a config whose dependencies all work passes (exit 0).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { haveRedisServer, startPrivateRedis } from '../harness/redis.js';
import { startOrigin } from '../harness/origin.js';
import { freePort } from '../harness/ports.js';

/** Runs the CLI asynchronously: the test's own origin must keep answering meanwhile. */
async function check(yaml: string): Promise<{ code: number | null; out: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'pc-online-'));
  const file = join(dir, 'edge.yaml');
  writeFileSync(file, yaml);
  const child = spawn(process.execPath, ['bin/portcullis', 'check', '--config', file, '--online', '--timeout', '2s'], {
    env: { ...process.env, PORTCULLIS_ADMIN_TOKEN: 'test-admin-token-0123456789' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, out };
}

function config(redis: string, servers: string[]): string {
  return [
    'listen: [{ address: "127.0.0.1:18080" }]',
    'admin: { address: "127.0.0.1:18090", token: "${PORTCULLIS_ADMIN_TOKEN}" }',
    'backends:', '  shop:', '    health: { path: /health, timeout: 1s }', '    servers:',
    ...servers.map((u, i) => `      - { name: web${i + 1}, url: "${u}" }`),
    `shared: { redis: ${redis}, node_count: 2 }`,
  ].join('\n') + '\n';
}

test('check --online: NOAUTH, WRONGPASS, NOPERM and a dead server are each reported; a working config passes', { skip: haveRedisServer() ? false : 'skipped: no redis-server' }, async (t) => {
  const redis = await startPrivateRedis({ args: ['--requirepass', 'the-right-one'], password: 'the-right-one' });
  if (redis === null) throw new Error('redis-server did not start');
  t.after(() => redis.stop());
  const admin = new Redis({ port: redis.port, password: 'the-right-one' });
  t.after(() => admin.disconnect());
  await admin.acl('SETUSER', 'lowly', 'on', '>lowly-pass', '~*', '&*', '+@all', '-evalsha', '-eval');
  const o = await startOrigin('web1');
  t.after(() => o.close());
  const dead = `http://127.0.0.1:${await freePort()}`;

  const good = await check(config(`"redis://:the-right-one@127.0.0.1:${redis.port}"`, [o.url]));
  assert.equal(good.code, 0, good.out);
  assert.match(good.out, /^ok {3}redis redis:\/\/:\*\*\*@127\.0\.0\.1:\d+: connected/m);
  assert.match(good.out, /^ok {3}server shop\/web1 .*\/health: L7OK/m);
  assert.match(good.out, /^ok {3}events stream portcullis:events: allowed to write \(XADD/m);
  assert.match(good.out, /online: all 3 check\(s\) passed/);
  assert.equal(await admin.exists('portcullis:events'), 0, 'the stream probe wrote nothing');
  assert.doesNotMatch(good.out, /the-right-one/, 'the password is never printed');

  const noauth = await check(config(`"redis://127.0.0.1:${redis.port}"`, [o.url]));
  assert.equal(noauth.code, 1, noauth.out);
  assert.match(noauth.out, /^FAIL redis redis:\/\/127\.0\.0\.1:\d+: NOAUTH/m);

  const wrong = await check(config(`"redis://:not-it@127.0.0.1:${redis.port}"`, [o.url]));
  assert.equal(wrong.code, 1, wrong.out);
  assert.match(wrong.out, /^FAIL redis redis:\/\/:\*\*\*@127\.0\.0\.1:\d+: WRONGPASS/m);
  assert.doesNotMatch(wrong.out, /not-it/);

  const noperm = await check(config(`"redis://lowly:lowly-pass@127.0.0.1:${redis.port}"`, [o.url, dead]));
  assert.equal(noperm.code, 1, noperm.out);
  assert.match(noperm.out, /^FAIL redis .*: NOPERM/m);
  assert.match(noperm.out, /^ok {3}server shop\/web1 /m);
  assert.match(noperm.out, /^FAIL server shop\/web2 .*: L4CON Layer4 connection problem: ECONNREFUSED/m);
  assert.match(noperm.out, /online: 2 of 4 check\(s\) failed/);

  // A user that may run the counters and bans but not write the event stream (the Redis event sink's
  // XADD): named as such, the rest passes.
  await admin.acl('SETUSER', 'nostream', 'on', '>nostream-pass', '~*', '&*', '+@all', '-xadd');
  const nostream = await check(config(`"redis://nostream:nostream-pass@127.0.0.1:${redis.port}"`, [o.url]));
  assert.equal(nostream.code, 1, nostream.out);
  assert.match(nostream.out, /^ok {3}redis redis:\/\/nostream:\*\*\*@127\.0\.0\.1:\d+: connected and allowed to run counters and bans/m);
  assert.match(nostream.out, /^FAIL events stream portcullis:events: write \(XADD\): NOPERM/m);
  assert.match(nostream.out, /online: 1 of 3 check\(s\) failed/);
  // … and one whose key pattern leaves the stream out.
  await admin.acl('SETUSER', 'keyless', 'on', '>keyless-pass', '~pc*', '~{pc*', '&*', '+@all');
  const keyless = await check(config(`"redis://keyless:keyless-pass@127.0.0.1:${redis.port}"`, [o.url]).replace('node_count: 2 }', 'node_count: 2, prefix: pc }'));
  assert.match(keyless.out, /^FAIL events stream portcullis:events: write \(XADD\): NOPERM/m, keyless.out);
  assert.equal(await admin.exists('portcullis:events'), 0, 'nothing was written to the stream');
});
