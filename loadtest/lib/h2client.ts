// HTTP/2 shoppers and attackers for the peak and flood scenarios' --h2 variant: one TLS connection
// per shopper (ALPN h2, from the shopper's own 127.x.y.z address) carrying all its requests as
// concurrent streams, as a browser does; attackers send back-to-back requests on their own sessions.
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { connect as netConnect } from 'node:net';
import type { Recorder, ShopRequest } from './loadgen.js';

const HOST = 'shop.test';

function session(port: number, address: string): ClientHttp2Session {
  const s = h2connect(`https://${HOST}:${port}`, {
    createConnection: () => tlsConnect({ socket: netConnect({ host: '127.0.0.1', port, localAddress: address }), servername: HOST, rejectUnauthorized: false, ALPNProtocols: ['h2'] }),
  });
  s.on('error', () => { /* each stream reports its own failure */ });
  return s;
}

interface H2Reply { status: number; setCookie: string | null; origin: string | null }

/** One request on a session; rejects with a short error kind on a transport failure or timeout. */
export function h2request(s: ClientHttp2Session, method: string, path: string, headers: Record<string, string>, body: string | undefined, timeoutMs: number): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    let req;
    try {
      req = s.request({ ':method': method, ':path': path, ':authority': HOST, ...headers }, { endStream: body === undefined });
    } catch { reject(new Error('reset')); return; }
    const timer = setTimeout(() => { req.close(); reject(new Error('timeout')); }, timeoutMs);
    let reply: H2Reply = { status: 0, setCookie: null, origin: null };
    req.on('response', (h) => {
      const sc = h['set-cookie'];
      reply = { status: Number(h[':status']), setCookie: Array.isArray(sc) ? sc[0] : (sc ?? null), origin: typeof h['x-origin'] === 'string' ? h['x-origin'] : null };
    });
    req.on('data', () => {});
    req.on('end', () => { clearTimeout(timer); resolve(reply); });
    req.on('error', () => { clearTimeout(timer); reject(new Error(reply.status === 0 ? 'reset' : 'error')); });
    req.on('close', () => { clearTimeout(timer); if (reply.status === 0) reject(new Error('reset')); });
    if (body !== undefined) req.end(body);
  });
}

/** A browser-like HTTP/2 client: one source address, a cookie jar, one multiplexed connection (reopened when it ends). */
export class H2Shopper {
  private s: ClientHttp2Session | null = null;
  cookie: string | null = null;
  readonly origins = new Map<string, number>();
  stopped = false;

  constructor(readonly address: string, private readonly port: number, private readonly timeoutMs: number) {}

  submit(req: ShopRequest): void {
    if (this.stopped) return;
    if (this.s === null || this.s.closed || this.s.destroyed) this.s = session(this.port, this.address);
    void this.run(this.s, req);
  }

  private async run(s: ClientHttp2Session, req: ShopRequest): Promise<void> {
    const hadCookie = this.cookie !== null;
    const t0 = performance.now();
    req.recorder.sent++;
    if (req.also) req.also.sent++;
    try {
      const headers: Record<string, string> = this.cookie ? { cookie: this.cookie } : {};
      if (req.body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
      const r = await h2request(s, req.method, req.path, headers, req.body, this.timeoutMs);
      const now = performance.now();
      req.recorder.ok(r.status, now - t0, now);
      req.also?.ok(r.status, now - t0, now);
      if (r.setCookie && (hadCookie || this.cookie === null)) this.cookie = r.setCookie.split(';')[0];
      if (r.origin && hadCookie) this.origins.set(r.origin, (this.origins.get(r.origin) ?? 0) + 1);
    } catch (e) {
      const now = performance.now();
      const kind = (e as Error).message;
      req.recorder.fail(kind, now, now - t0);
      req.also?.fail(kind, now, now - t0);
    }
  }

  close(): void {
    this.stopped = true;
    this.s?.destroy();
    this.s = null;
  }
}

/** An HTTP/2 attacker connection: back-to-back requests until stopped, a new session when it ends. */
export async function h2AttackLoop(address: string, port: number, path: string, rec: Recorder, until: () => boolean, timeoutMs = 10_000): Promise<void> {
  let s: ClientHttp2Session | null = null;
  while (!until()) {
    if (s === null || s.closed || s.destroyed) { s?.destroy(); s = session(port, address); }
    const t0 = performance.now();
    rec.sent++;
    try {
      const r = await h2request(s, 'GET', path, {}, undefined, timeoutMs);
      const now = performance.now();
      rec.ok(r.status, now - t0, now);
    } catch (e) {
      const now = performance.now();
      rec.fail((e as Error).message, now, now - t0);
      s.destroy();
      s = null;
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  s?.destroy();
}
