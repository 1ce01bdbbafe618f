// A raw-socket origin for hostile-input tests: it records the exact bytes every connection
// received, splits them into requests with a deliberately strict HTTP/1.1 reader (CRLF only,
// one Content-Length or a final `chunked`), and answers each request with scripted bytes.
// Why a raw socket and not node:http: node:http normalises what it saw (header case, folding,
// duplicate handling), and these tests must show the exact bytes that crossed the proxy.
import { createServer, type Server, type Socket, type AddressInfo } from 'node:net';

export interface RawOriginRequest {
  /** Request line, e.g. `GET /a HTTP/1.1`. */
  line: string;
  method: string;
  target: string;
  /** `HTTP/1.1` or `HTTP/1.0`. */
  version: string;
  /** Header lines exactly as received (no CRLF). */
  headerLines: string[];
  /** Lower-cased name → values in order. */
  headers: Map<string, string[]>;
  /** Trailer field lines after the last chunk (exactly as received). */
  trailers: string[];
  /** De-chunked body bytes. */
  body: Buffer;
  /** Every byte of this request as it arrived (head, framing and body). */
  raw: Buffer;
  /** Index of the connection it arrived on. */
  conn: number;
}

/** Returns the bytes to answer with, or null to answer nothing (and keep the connection open). */
export type RawReply = (req: RawOriginRequest, index: number) => string | Buffer | null;

export interface RawOrigin {
  readonly url: string;
  readonly port: number;
  /** Requests parsed so far, in arrival order over all connections. */
  readonly requests: RawOriginRequest[];
  /** Bytes each connection received, in accept order. */
  readonly connections: Buffer[];
  /** Violations of strict framing seen by the reader (bare LF, bad chunk size …): should stay empty. */
  readonly framingErrors: string[];
  /** Every byte received on every connection, concatenated. */
  allBytes(): Buffer;
  /** Writes raw bytes on connection `conn` (e.g. the late answer to a request replied with null). */
  send(conn: number, bytes: string | Buffer): void;
  /** Waits until at least `n` requests arrived; throws, saying how many did, after `ms`. */
  waitFor(n: number, ms?: number): Promise<void>;
  close(): Promise<void>;
}

const OK_HEAD = 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\n';
/** 200 "ok" (head only for HEAD). */
export const okReply: RawReply = (r) => (r.method === 'HEAD' ? OK_HEAD : `${OK_HEAD}ok`);

class StrictReader {
  private buf: Buffer = Buffer.alloc(0);
  failed = false;
  constructor(private readonly conn: number, private readonly onRequest: (r: RawOriginRequest) => void, private readonly onError: (e: string) => void) {}

  push(data: Buffer): void {
    if (this.failed) return;
    this.buf = this.buf.length === 0 ? data : Buffer.concat([this.buf, data]);
    for (;;) {
      const r = this.next();
      if (r === null) return;
      this.onRequest(r);
    }
  }

  private fail(msg: string): null {
    this.failed = true;
    this.onError(msg);
    return null;
  }

  /** One complete request from the front of the buffer, or null if more bytes are needed. */
  private next(): RawOriginRequest | null {
    const b = this.buf;
    const end = b.indexOf('\r\n\r\n');
    if (end < 0) return null;
    const headText = b.subarray(0, end).toString('latin1');
    const lines = headText.split('\r\n');
    for (const l of lines) if (l.includes('\n') || l.includes('\r')) return this.fail(`bare CR or LF in head: ${JSON.stringify(l)}`);
    const line = lines[0];
    const parts = line.split(' ');
    // HTTP/1.0 is accepted too: a proxy may forward a 1.0 client's request as 1.0 (HAProxy does).
    if (parts.length !== 3 || (parts[2] !== 'HTTP/1.1' && parts[2] !== 'HTTP/1.0')) return this.fail(`bad request line ${JSON.stringify(line)}`);
    const headers = new Map<string, string[]>();
    const headerLines = lines.slice(1);
    for (const h of headerLines) {
      const c = h.indexOf(':');
      if (c <= 0 || /[\s]/.test(h.slice(0, c))) return this.fail(`bad header line ${JSON.stringify(h)}`);
      const name = h.slice(0, c).toLowerCase();
      const list = headers.get(name) ?? [];
      list.push(h.slice(c + 1).trim());
      headers.set(name, list);
    }
    const cl = headers.get('content-length');
    const te = headers.get('transfer-encoding');
    if (cl !== undefined && te !== undefined) return this.fail('Content-Length with Transfer-Encoding');
    if ((cl?.length ?? 0) > 1 || (te?.length ?? 0) > 1) return this.fail('repeated framing header');
    let pos = end + 4;
    let body: Buffer;
    const trailers: string[] = [];
    if (te !== undefined) {
      if (te[0].toLowerCase() !== 'chunked') return this.fail(`Transfer-Encoding ${te[0]}`);
      const parts: Buffer[] = [];
      for (;;) {
        const le = b.indexOf('\r\n', pos);
        if (le < 0) return null;
        const sizeText = b.subarray(pos, le).toString('latin1');
        if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText)) return this.fail(`bad chunk size ${JSON.stringify(sizeText)}`);
        const size = parseInt(sizeText, 16);
        pos = le + 2;
        if (size === 0) {
          // Trailer fields (strict field lines), then the empty line.
          for (;;) {
            const te = b.indexOf('\r\n', pos);
            if (te < 0) return null;
            if (te === pos) { pos += 2; break; }
            const field = b.subarray(pos, te).toString('latin1');
            if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e\x80-\xff]*$/.test(field)) return this.fail(`bad trailer line ${JSON.stringify(field)}`);
            trailers.push(field);
            pos = te + 2;
          }
          break;
        }
        if (b.length < pos + size + 2) return null;
        parts.push(b.subarray(pos, pos + size));
        if (b[pos + size] !== 13 || b[pos + size + 1] !== 10) return this.fail('chunk data not followed by CRLF');
        pos += size + 2;
      }
      body = Buffer.concat(parts);
    } else if (cl !== undefined) {
      if (!/^[0-9]+$/.test(cl[0])) return this.fail(`bad Content-Length ${cl[0]}`);
      const n = Number(cl[0]);
      if (b.length < pos + n) return null;
      body = b.subarray(pos, pos + n);
      pos += n;
    } else body = Buffer.alloc(0);
    const raw = Buffer.from(b.subarray(0, pos));
    this.buf = b.subarray(pos);
    return { line, method: parts[0], target: parts[1], version: parts[2], headerLines, headers, trailers, body: Buffer.from(body), raw, conn: this.conn };
  }
}

/** Starts a raw origin on 127.0.0.1 (free port). `reply` defaults to a 200 "ok". */
export async function startRawOrigin(reply: RawReply = okReply): Promise<RawOrigin> {
  const requests: RawOriginRequest[] = [];
  const connections: Buffer[] = [];
  const framingErrors: string[] = [];
  const sockets = new Set<Socket>();
  const byIndex: Socket[] = [];
  let waiters: (() => void)[] = [];
  const server: Server = createServer((s) => {
    const index = connections.length;
    connections.push(Buffer.alloc(0));
    byIndex[index] = s;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    const reader = new StrictReader(index, (r) => {
      const i = requests.length;
      requests.push(r);
      const w = waiters; waiters = [];
      for (const f of w) f();
      const out = reply(r, i);
      if (out !== null && !s.destroyed) s.write(out);
    }, (e) => { framingErrors.push(e); s.destroy(); });
    s.on('data', (d: Buffer) => {
      connections[index] = Buffer.concat([connections[index], d]);
      reader.push(d);
    });
  });
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', () => resolve()); });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    connections,
    framingErrors,
    allBytes: () => Buffer.concat(connections),
    send(conn: number, bytes: string | Buffer): void {
      const s = byIndex[conn];
      if (s !== undefined && !s.destroyed) s.write(bytes);
    },
    waitFor(n: number, ms = 2000): Promise<void> {
      if (requests.length >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          if (requests.length >= n) resolve();
          else reject(new Error(`timed out after ${ms} ms waiting for ${n} requests at the origin (${requests.length} arrived)`));
        }, ms);
        const check = (): void => {
          if (requests.length >= n) { clearTimeout(timer); resolve(); } else waiters.push(check);
        };
        waiters.push(check);
      });
    },
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
