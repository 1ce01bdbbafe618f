// Shared set-up of the HTTP/2 tests: a throw-away CA and certificate for shop.test, an origin with a
// few routes (large download, body echo, chunked response with trailers), and a TLS edge in front.
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { startOrigin, type Origin } from '../harness/origin.js';
import { edgeYaml, startTestEdge, CLIENT_LIMITS_OFF, type TestEdge } from '../harness/edge.js';
import type { EdgeOptions } from '../../edge/main/edge.js';
import { createTestCa, type TestCa } from '../tls/certs.js';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';

export const HOST = 'shop.test';
/** Size of /big (deterministic bytes, so the client can check them). */
export const BIG = 4 * 1024 * 1024 + 123;

export function bigBody(): Buffer {
  const b = Buffer.alloc(BIG);
  for (let i = 0; i < BIG; i++) b[i] = (i * 7 + (i >> 10)) & 0xff;
  return b;
}

export function sha256(b: Buffer): string { return createHash('sha256').update(b).digest('hex'); }

/** Origin routes: /big, /echo (answers the body's length and sha256), /trailers (chunked + trailers), /slow/<ms>, else hello. */
export async function startH2Origin(): Promise<Origin> {
  const big = bigBody();
  return startOrigin('web1', (req, res, seen) => {
    const url = req.url ?? '/';
    if (url === '/big') { res.setHeader('content-length', String(big.length)); res.end(big); return; }
    if (url === '/echo') {
      // The harness has read the body already; echo what it counted plus the request's own headers of interest.
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ bytes: seen.bodyBytes, headers: req.headers, trailers: req.trailers, method: req.method }));
      return;
    }
    if (url === '/trailers') {
      res.setHeader('trailer', 'x-checksum');
      res.setHeader('content-type', 'text/plain');
      res.write('part one\n');
      res.write('part two\n');
      res.addTrailers({ 'x-checksum': 'abc123' });
      res.end();
      return;
    }
    if (url.startsWith('/slow/')) { setTimeout(() => res.end('slow\n'), Number(url.slice(6))); return; }
    res.setHeader('x-origin', 'web1');
    res.setHeader('X-Mixed-Case', 'yes');
    res.setHeader('set-cookie', ['a=1', 'b=2']);
    res.end(`hello from web1 ${req.method} ${url}\n`);
  });
}

export interface H2Edge { o: Origin; px: TestEdge; ca: TestCa; caFile: string; port: number }

/** Origin + TLS edge for shop.test; `more` adds top-level YAML (http2:, rules:, …), `listener` keys of the listener. */
export async function startH2Edge(t: { after(fn: () => unknown): void }, opts: { more?: string; listener?: string; limits?: string; accessLog?: string; edge?: EdgeOptions } = {}): Promise<H2Edge> {
  const ca = createTestCa(t);
  const leaf = ca.issue('shop', [HOST, 'other.test']);
  const o = await startH2Origin();
  t.after(() => o.close());
  const px = await startTestEdge(edgeYaml({
    servers: [{ name: 'web1', url: o.url }],
    listener: `tls: { cert: "${leaf.cert}", key: "${leaf.key}" }${opts.listener ? `, ${opts.listener}` : ''}`,
    limits: opts.limits ?? CLIENT_LIMITS_OFF,
    accessLog: opts.accessLog,
    more: opts.more,
  }), opts.edge);
  t.after(() => px.stop());
  return { o, px, ca, caFile: join(ca.dir, 'ca.crt'), port: px.port };
}

export interface Run { code: number | null; stdout: Buffer; stderr: string }

/** Runs a command (curl, nghttp) and collects its output; never rejects. */
export function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null;
      resolve({ code, stdout, stderr: stderr.toString() });
    });
  });
}

/** curl over HTTP/2 to https://shop.test:<port><path>, trusting the test CA. */
export function curl(e: H2Edge, path: string, extra: string[] = []): Promise<Run> {
  return run('curl', ['--http2', '-sS', '--cacert', e.caFile, '--resolve', `${HOST}:${e.port}:127.0.0.1`, ...extra, `https://${HOST}:${e.port}${path}`]);
}

/** A node:http2 client session to shop.test on the edge (SNI shop.test, the test CA trusted). */
export function h2client(e: H2Edge, servername = HOST): ClientHttp2Session {
  return h2connect(`https://${HOST}:${e.port}`, {
    createConnection: () => tlsConnect({ host: '127.0.0.1', port: e.port, servername, ca: e.ca.ca, ALPNProtocols: ['h2'] }),
  });
}

/** One request on a node:http2 session: status, headers, body. */
export function h2get(c: ClientHttp2Session, path: string, extra: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = c.request({ ':path': path, ...extra });
    let headers: Record<string, unknown> = {};
    const chunks: Buffer[] = [];
    req.on('response', (h) => { headers = h as Record<string, unknown>; });
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => resolve({ status: Number(headers[':status']), headers, body: Buffer.concat(chunks).toString() }));
    req.on('error', reject);
    req.end();
  });
}
