// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// The harness's moving parts against real sockets: the origin server and the source-address client,
// and a short `throughput` run through bin/portcullis so the harness cannot rot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Origin } from '../../loadtest/lib/origin.js';
import { ClientConn, ClientError, rawRequest } from '../../loadtest/lib/client.js';
import { startRawOrigin } from '../harness/origin.js';
import { checkPortcullis, checkTools } from '../../loadtest/lib/prereq.js';
import { portcullisBin, repoRoot } from '../../loadtest/lib/paths.js';

test('origin answers 100 bytes over keep-alive to a client bound to its own 127.x address, and counts concurrency', async () => {
  const origin = new Origin({ name: 'o1', port: 0, latencyMs: 30 });
  const port = await origin.listen();
  const a = new ClientConn(port, '127.9.0.1');
  const b = new ClientConn(port, '127.9.0.2');
  try {
    const [ra, rb] = await Promise.all([a.send(rawRequest('GET', '/product/1', 'x'), 2000), b.send(rawRequest('POST', '/checkout/x', 'x', {}, 'a=1'), 2000)]);
    assert.equal(ra.status, 200);
    assert.equal(ra.bytes, 100);
    assert.equal(ra.origin, 'o1');
    assert.equal(rb.status, 200);
    const again = await a.send(rawRequest('GET', '/product/2', 'x'), 2000);
    assert.equal(again.status, 200, 'same connection reused');
    assert.equal(origin.stats.maxInFlight, 2, 'two requests were in flight at once');
    assert.equal(origin.stats.maxConnections, 2);
    assert.equal(origin.stats.requests, 3);
    assert.equal((await a.send(rawRequest('GET', '/health', 'x'), 2000)).status, 200);
    assert.equal(origin.stats.requests, 3, 'health checks are not counted as forwarded traffic');
    assert.deepEqual(origin.stats.byPrefix, { '/product': 2, '/checkout': 1 });
  } finally {
    // Also on a failed assertion: open client sockets would keep the test process alive forever.
    a.destroy(); b.destroy();
    origin.close();
  }
});

test('client reads chunked and close-delimited bodies and reports resets and timeouts by kind', async () => {
  let mode = 'chunked';
  const srv = await startRawOrigin((_r, _n, s) => {
    if (mode === 'chunked') s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nSet-Cookie: PCSRV=abc; Path=/\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n');
    else if (mode === 'close') s.end('HTTP/1.1 503 Service Unavailable\r\n\r\nbusy, come back');
    else if (mode === 'reset') s.destroy();
    // 'silent': never answer
  }, { answerAt: 'head' });
  const port = srv.port;
  try {
    const c = new ClientConn(port, '127.9.0.3');
    const r1 = await c.send(rawRequest('GET', '/', 'x'), 2000);
    assert.deepEqual([r1.status, r1.bytes, r1.setCookie], [200, 11, 'PCSRV=abc; Path=/']);
    const r2 = await c.send(rawRequest('GET', '/', 'x'), 2000);
    assert.equal(r2.bytes, 11, 'keep-alive after a chunked body');
    mode = 'close';
    const r3 = await c.send(rawRequest('GET', '/', 'x'), 2000);
    assert.deepEqual([r3.status, r3.bytes, r3.close], [503, 15, true]);
    mode = 'reset';
    await assert.rejects(new ClientConn(port, '127.9.0.4').send(rawRequest('GET', '/', 'x'), 2000), (e: unknown) => e instanceof ClientError && e.kind === 'reset');
    mode = 'silent';
    await assert.rejects(new ClientConn(port, '127.9.0.5').send(rawRequest('GET', '/', 'x'), 200), (e: unknown) => e instanceof ClientError && e.kind === 'timeout');
  } finally { await srv.close(); }
});

test('a short throughput run through bin/portcullis writes its results', { timeout: 60_000 }, async (t) => {
  const bin = checkPortcullis(portcullisBin);
  if (!bin.ok) { t.skip(`skipped: ${bin.message}`); return; }
  const tools = checkTools(['wrk']);
  if (!tools.ok) { t.skip(`skipped: ${tools.message.split('\n')[0]} (apt-get install -y wrk)`); return; }
  const cli = join(repoRoot, 'dist', 'loadtest', 'cli.js');
  assert.ok(existsSync(cli), 'compiled harness exists');
  const out = mkdtempSync(join(tmpdir(), 'lt-smoke-'));
  try {
    const child = spawn(process.execPath, [cli, 'throughput', '--duration', '1s', '--rounds', '1', '--connections', '16', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => { text += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { text += d.toString(); });
    const code = await new Promise<number | null>((r) => child.on('close', r));
    assert.equal(code, 0, `harness failed:\n${text}`);
    assert.match(text, /portcullis\s+\d+/, 'summary table has a portcullis row');
    const files = readdirSync(out);
    const json = files.find((f) => /^throughput-.*\.json$/.test(f));
    assert.ok(json && files.some((f) => /^throughput-.*\.html$/.test(f)), `JSON and HTML written: ${files.join(', ')}`);
    const rec = JSON.parse(readFileSync(join(out, json), 'utf8'));
    const pc = rec.result.raw.summary.find((s: { label: string }) => s.label === 'portcullis');
    assert.ok(pc.requestsPerSec > 0, 'requests went through Portcullis');
    assert.equal(pc.errors, 0, 'no errors on a plain GET');
    assert.ok(pc.cpuUsPerRequest > 0 && pc.rssMB > 0, 'CPU and RSS measured');
    assert.equal(rec.machine.nproc > 0 && typeof rec.machine.versions.node, 'string');
    const uws = rec.result.raw.summary.find((s: { label: string }) => s.label === 'portcullis-uws');
    assert.ok(uws && uws.requestsPerSec > 0 && uws.errors === 0, 'the uws engine ran in the same rounds');
    assert.equal(rec.result.settings.engines['portcullis-uws'], 'uws');
    assert.match(rec.result.settings.configs['portcullis-uws'], /engine: uws/);
    assert.equal(rec.result.raw.engineGap[0].diffUs, Math.round((pc.cpuUsPerRequest - uws.cpuUsPerRequest) * 10) / 10, 'http1 − uws gap reported');
  } finally { rmSync(out, { recursive: true, force: true }); }
});

test('a short --tls --profile run: HTTPS keep-alive and conn-close rows, session resumption, profile top entries', { timeout: 90_000 }, async (t) => {
  const bin = checkPortcullis(portcullisBin);
  if (!bin.ok) { t.skip(`skipped: ${bin.message}`); return; }
  const tools = checkTools(['wrk', 'openssl']);
  if (!tools.ok) { t.skip(`skipped: ${tools.message}`); return; }
  const cli = join(repoRoot, 'dist', 'loadtest', 'cli.js');
  if (!existsSync(cli)) { t.skip('skipped: dist/loadtest/cli.js not built'); return; }
  const out = mkdtempSync(join(tmpdir(), 'lt-tls-'));
  try {
    const child = spawn(process.execPath, [cli, 'throughput', '--tls', '--profile', '--engines', 'http1', '--duration', '1s', '--rounds', '1', '--connections', '8', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => { text += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { text += d.toString(); });
    const code = await new Promise<number | null>((r) => child.on('close', r));
    assert.equal(code, 0, `harness failed:\n${text}`);
    const files = readdirSync(out);
    const json = files.find((f) => /^throughput-.*\.json$/.test(f));
    assert.ok(json, `JSON written: ${files.join(', ')}`);
    assert.ok(files.some((f) => /^throughput-.*-portcullis\.cpuprofile$/.test(f)), `profile kept beside the results: ${files.join(', ')}`);
    const rec = JSON.parse(readFileSync(join(out, json), 'utf8'));
    const row = (label: string) => rec.result.raw.summary.find((s: { label: string }) => s.label === label);
    assert.ok(row('portcullis').requestsPerSec > 0 && row('portcullis').errors === 0, 'HTTPS keep-alive through the http1 engine');
    assert.ok(row('portcullis conn-close').requestsPerSec > 0, 'a new TLS connection per request');
    assert.equal(row('portcullis-uws'), undefined, '--engines http1 leaves uws out');
    assert.deepEqual(rec.result.raw.resumption.portcullis.map((c: { resumed: boolean }) => c.resumed), [true, true], 'TLS 1.3 and 1.2 sessions resumed');
    const prof = rec.result.raw.profiles.portcullis;
    assert.ok(prof.summary.samples > 0 && prof.summary.top.length > 0, 'profile samples inside the measured rounds');
    assert.match(text, /profile of portcullis/);
  } finally { rmSync(out, { recursive: true, force: true }); }
});
