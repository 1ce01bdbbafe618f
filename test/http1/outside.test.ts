// Why: the first users of a proxy try it with the clients they have. curl --http1.0 and ApacheBench
// (HTTP/1.0, with and without keep-alive) hung against the uWS front end; with the HTTP/1.1 engine
// they must be served, with 0 failed requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { startOriginAndEdge, CLIENT_LIMITS_OFF } from '../harness/edge.js';

const have = (cmd: string, arg: string): boolean => spawnSync(cmd, [arg], { stdio: 'ignore' }).error === undefined;

/** Runs a client asynchronously: the edge under test lives in this process and must keep serving. */
function runTool(cmd: string, args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'latin1', maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

test('curl --http1.0 and an absolute-form target are served', async (t) => {
  if (!have('curl', '--version')) { t.skip('skipped: curl missing'); return; }
  const { o, px } = await startOriginAndEdge(t, { limits: CLIENT_LIMITS_OFF });
  const r = await runTool('curl', ['-s', '-i', '--http1.0', '--max-time', '5', `${px.url}/ten`]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^HTTP\/1\.1 200 /);
  assert.match(r.stdout, /hello from /);
  const abs = await runTool('curl', ['-s', '-i', '--max-time', '5', '--request-target', 'http://shop.test/abs?x=1', `${px.url}/`]);
  assert.equal(abs.status, 0, abs.stderr);
  assert.match(abs.stdout, /^HTTP\/1\.1 400 /, 'curl adds Host: 127.0.0.1:port, which differs from the target: 400');
  const same = await runTool('curl', ['-s', '-i', '--max-time', '5', '-H', 'Host: shop.test', '--request-target', 'http://shop.test/abs?x=1', `${px.url}/`]);
  assert.match(same.stdout, /^HTTP\/1\.1 200 /, same.stdout);
  assert.equal(o.seen.at(-1)?.url, '/abs?x=1', 'the origin gets origin-form');
  assert.equal(o.seen.at(-1)?.headers.host, 'shop.test');
});

test('ab -n 2000 -c 10 (HTTP/1.0), with and without keep-alive: 0 failed', async (t) => {
  if (!have('ab', '-V')) { t.skip('skipped: ab (Debian package apache2-utils) missing'); return; }
  const { px } = await startOriginAndEdge(t, { limits: CLIENT_LIMITS_OFF });
  for (const keepAlive of [false, true]) {
    const args = ['-q', '-n', '2000', '-c', '10', '-s', '10', ...(keepAlive ? ['-k'] : []), `${px.url}/ab`];
    const r = await runTool('ab', args);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Complete requests:\s+2000\b/, r.stdout);
    assert.match(r.stdout, /Failed requests:\s+0\b/, r.stdout);
    assert.doesNotMatch(r.stdout, /Non-2xx responses/, r.stdout);
    if (keepAlive) assert.match(r.stdout, /Keep-Alive requests:\s+2000\b/, r.stdout);
  }
});

test('a malformed request gets its access line with the path only, like every other line: the query (it may carry a token) stays out of the access log; the event keeps path and query', async (t) => {
  const { mkdtempSync, readFileSync, existsSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const { rawRequest } = await import('../harness/client.js');
  const { waitFor } = await import('../harness/wait.js');
  const log = join(mkdtempSync(join(tmpdir(), 'pc-outside-log-')), 'access.log');
  const { px } = await startOriginAndEdge(t, { limits: CLIENT_LIMITS_OFF, accessLog: log });
  const r = await rawRequest(px.port, 'GET /reset?token=SECRET-123 HTTP/1.1\r\nHost: shop.test\r\nX: a\r\n folded\r\n\r\n');
  assert.equal(r.status, 400);
  const ok = await rawRequest(px.port, 'GET /fine?token=SECRET-456 HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n');
  assert.equal(ok.status, 200);
  const lines = await waitFor('two access lines', () => {
    if (!existsSync(log)) return null;
    const l = readFileSync(log, 'utf8').split('\n').filter((s) => s !== '').map((s) => JSON.parse(s) as { status: number; path: string });
    return l.length >= 2 ? l : null;
  });
  const bad = lines.find((l) => l.status === 400);
  const good = lines.find((l) => l.status === 200);
  assert.equal(good?.path, '/fine');
  assert.equal(bad?.path, '/reset', JSON.stringify(bad));
  const ev = px.events.find((e) => e.type === 'guard' && e.status === 400);
  assert.equal((ev as { request?: { path?: string } } | undefined)?.request?.path, '/reset?token=SECRET-123');
});
