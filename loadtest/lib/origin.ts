// The origin server the proxies forward to: a raw net server (no node:http overhead) that answers a
// fixed 100-byte body, optionally after a delay, and records the concurrency it sees. Concurrency
// counters are the proof for "the queue never lets an origin exceed maxconn".
import { createServer, type Server, type Socket } from 'node:net';

export interface OriginOptions {
  name: string;
  port: number;
  host?: string;
  /** Delay before answering each non-health request (simulates application time). */
  latencyMs?: number;
  /** Body size of the default answer. */
  bodyBytes?: number;
}

export interface OriginStats {
  name: string;
  requests: number;
  connections: number;
  maxConnections: number;
  inFlight: number;
  maxInFlight: number;
  /** Per-second samples since the last reset: [max in-flight during the second, requests answered]. */
  series: [number, number][];
  byPrefix: Record<string, number>;
  /** Answers spoiled by chaos, by kind (origin-chaos). */
  spoiled?: Record<string, number>;
}

const CRLF2 = Buffer.from('\r\n\r\n');

function response(status: string, body: Buffer, name: string, close: boolean): Buffer {
  const head = `HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nX-Origin: ${name}\r\n` +
    (close ? 'Connection: close\r\n' : '') + '\r\n';
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

/** First path segment, used to count requests per page type ("/checkout/x" → "/checkout"). */
function prefixOf(path: string): string {
  const q = path.indexOf('?');
  const p = q >= 0 ? path.slice(0, q) : path;
  const slash = p.indexOf('/', 1);
  return slash > 0 ? p.slice(0, slash) : p;
}

/** Misbehaviour of an origin for chaos scenarios, applied to a share (`rate`) of its answers. */
export type OriginChaos = 'none' | 'garbage' | 'midbody' | 'reset';

export class Origin {
  readonly stats: OriginStats;
  chaos: OriginChaos = 'none';
  chaosRate = 1;
  /** Answers spoiled by chaos (by kind). */
  readonly spoiled: Record<string, number> = {};
  private server: Server | null = null;
  private readonly okResponse: Buffer;
  private readonly okClose: Buffer;
  private readonly healthResponse: Buffer;
  private readonly latencyMs: number;
  private secondMax = 0;
  private secondRequests = 0;
  private ticker: NodeJS.Timeout | null = null;
  private readonly bigBodies = new Map<number, Buffer>();

  constructor(private readonly opts: OriginOptions) {
    const body = Buffer.alloc(opts.bodyBytes ?? 100, 'x');
    this.okResponse = response('200 OK', body, opts.name, false);
    this.okClose = response('200 OK', body, opts.name, true);
    this.healthResponse = response('200 OK', Buffer.from('ok'), opts.name, false);
    this.latencyMs = opts.latencyMs ?? 0;
    this.stats = { name: opts.name, requests: 0, connections: 0, maxConnections: 0, inFlight: 0, maxInFlight: 0, series: [], byPrefix: {} };
  }

  listen(): Promise<number> {
    const server = createServer({ noDelay: true }, (sock) => this.onConnection(sock));
    this.server = server;
    this.ticker = setInterval(() => {
      this.stats.series.push([this.secondMax, this.secondRequests]);
      this.secondMax = this.stats.inFlight;
      this.secondRequests = 0;
    }, 1000);
    this.ticker.unref();
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host ?? '127.0.0.1', () => {
        const a = server.address();
        resolve(typeof a === 'object' && a ? a.port : 0);
      });
    });
  }

  resetStats(): void {
    const s = this.stats;
    s.requests = 0; s.maxConnections = s.connections; s.maxInFlight = s.inFlight; s.series = []; s.byPrefix = {};
    this.secondMax = s.inFlight; this.secondRequests = 0;
  }

  close(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.server?.close();
  }

  private onConnection(sock: Socket): void {
    const s = this.stats;
    s.connections++;
    if (s.connections > s.maxConnections) s.maxConnections = s.connections;
    let buf: Buffer | null = null;
    let busy = false; // one request at a time per connection (HTTP/1.1 without pipelining on the wire)
    const pump = (): void => {
      while (!busy && buf && buf.length > 0) {
        const end = buf.indexOf(CRLF2);
        if (end < 0) return;
        const headEnd = end + 4;
        let bodyLen = 0;
        const isGet = buf[0] === 0x47; // 'G'
        let headText = '';
        if (!isGet || this.latencyMs > 0 || buf[4] !== 0x2f || buf[5] !== 0x20) {
          headText = buf.toString('latin1', 0, end);
          const cl = /\r\ncontent-length:\s*(\d+)/i.exec(headText);
          if (cl) bodyLen = Number(cl[1]);
          else if (/\r\ntransfer-encoding:\s*chunked/i.test(headText)) {
            const term = buf.indexOf('0\r\n\r\n', headEnd);
            if (term < 0) return; // wait for the whole chunked body
            bodyLen = term + 5 - headEnd;
          }
        }
        if (buf.length < headEnd + bodyLen) return; // body not complete yet
        const close = headText !== '' && /\r\nconnection:\s*close/i.test(headText);
        const firstSpace = buf.indexOf(0x20);
        const path = headText ? headText.slice(firstSpace + 1, headText.indexOf(' ', firstSpace + 1)) : '/';
        buf = buf.length === headEnd + bodyLen ? null : buf.subarray(headEnd + bodyLen);
        handle(path, close);
      }
    };
    const done = (): void => { busy = false; pump(); };
    const handle = (path: string, close: boolean): void => {
      if (this.answer(sock, path, close, done)) busy = true;
    };
    sock.on('data', (chunk: Buffer) => {
      buf = buf ? Buffer.concat([buf, chunk]) : chunk;
      pump();
    });
    sock.on('error', () => { /* peer reset: nothing to answer */ });
    sock.on('close', () => { s.connections--; });
  }

  /** Answers one request; returns true when the answer is delayed (the connection is busy until done()). */
  /** Spoils this answer when chaos is on: garbage instead of HTTP, a body cut short, or a reset. */
  private spoil(socket: Socket): boolean {
    if (this.chaos === 'none' || Math.random() >= this.chaosRate) return false;
    this.spoiled[this.chaos] = (this.spoiled[this.chaos] ?? 0) + 1;
    if (this.chaos === 'garbage') socket.end('\u0000\u00ffNOT HTTP AT ALL\r\n\r\n');
    else if (this.chaos === 'midbody') { socket.write(this.okResponse.subarray(0, this.okResponse.length - 40)); socket.destroy(); }
    else socket.resetAndDestroy();
    return true;
  }

  private answer(socket: Socket, path: string, close: boolean, done: () => void): boolean {
    const s = this.stats;
    if (this.spoil(socket)) return false;
    // Health checks are answered but not counted: "requests" means traffic the proxy forwarded.
    if (path === '/health') { socket.write(this.healthResponse); return false; }
    s.requests++;
    this.secondRequests++;
    if (path !== '/') {
      const pre = prefixOf(path);
      s.byPrefix[pre] = (s.byPrefix[pre] ?? 0) + 1;
    }
    if (path.startsWith('/big')) {
      const m = /bytes=(\d+)/.exec(path);
      const size = Math.min(Number(m ? m[1] : 8 << 20), 256 << 20);
      // One buffer per size, shared by every response: slow readers must not make the origin allocate.
      let big = this.bigBodies.get(size);
      if (!big) { big = response('200 OK', Buffer.alloc(size, 'b'), this.opts.name, false); this.bigBodies.set(size, big); }
      socket.write(big);
      if (close) socket.end();
      return false;
    }
    s.inFlight++;
    if (s.inFlight > s.maxInFlight) s.maxInFlight = s.inFlight;
    if (s.inFlight > this.secondMax) this.secondMax = s.inFlight;
    if (this.latencyMs <= 0) {
      s.inFlight--;
      socket.write(close ? this.okClose : this.okResponse);
      if (close) socket.end();
      return false;
    }
    setTimeout(() => {
      s.inFlight--;
      if (!socket.destroyed) {
        socket.write(close ? this.okClose : this.okResponse);
        if (close) socket.end();
      }
      done();
    }, this.latencyMs);
    return true;
  }
}
