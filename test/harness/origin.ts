// The one scripted test origin, on loopback, in two modes. Both record what reached them.
// * HTTP mode (`startOrigin`): a node:http server running a handler after the request body was read;
//   it records each request (method, url, headers, body size), the requests in progress, and the
//   connections; its default handler answers `/health` with `healthStatus` (0: never answers).
// * Raw mode (`startRawOrigin`): a raw socket that records every byte each connection received, reads
//   an optional PROXY v2 header at the start of a connection, splits the rest into requests with a
//   deliberately strict HTTP/1.1 reader (CRLF only, one Content-Length or a final `chunked`), and
//   answers each request with scripted bytes (or writes on the socket itself: resets, partial answers).
//   Why a raw socket and not node:http: node:http normalises what it saw (header case, folding,
//   duplicate handling), and these tests must show the exact bytes that crossed the proxy.
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { PROXY_V2_SIGNATURE } from '../../edge/upstream/proxy-wire.js';

// ---------------------------------------------------------------- HTTP mode

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  bodyBytes: number;
}

export interface Origin {
  readonly url: string;
  readonly port: number;
  readonly seen: SeenRequest[];
  /** Requests being handled right now, and the most at once. */
  active: number;
  maxActive: number;
  /** Connections accepted so far, and those open now. */
  accepted: number;
  readonly sockets: Set<Socket>;
  /** What the default handler answers on /health (0: no answer, the check times out), and how often it was asked. */
  healthStatus: number;
  healthHits: number;
  server: HttpServer;
  close(): Promise<void>;
  /** Listens again on the same port after close() (a server coming back), keeping what it recorded. */
  reopen(): Promise<void>;
}

export type OriginHandler = (req: IncomingMessage, res: ServerResponse, seen: SeenRequest, origin: Origin) => void;

function health(req: IncomingMessage, res: ServerResponse, origin: Origin): boolean {
  if (req.url !== '/health') return false;
  origin.healthHits++;
  if (origin.healthStatus !== 0) res.writeHead(origin.healthStatus).end('ok');
  return true;
}

const defaultHandler = (name: string): OriginHandler => (req, res, _seen, origin) => {
  if (health(req, res, origin)) return;
  res.setHeader('x-origin', name);
  res.end(`hello from ${name}\n`);
};

/** Answers `ok` after holding the request `?ms=N` milliseconds (concurrency as the origin sees it: active/maxActive). */
export const holdHandler: OriginHandler = (req, res, _seen, origin) => {
  if (health(req, res, origin)) return;
  const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? '0');
  setTimeout(() => res.end('ok'), ms);
};

function listenOn(server: Server | HttpServer, port: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const onError = (e: Error): void => reject(e);
    server.once('error', onError);
    server.listen(port, '127.0.0.1', () => { server.off('error', onError); resolve((server.address() as AddressInfo).port); });
  });
}

export interface OriginOptions {
  port?: number;
  /**
   * 'request' (default): the handler runs once the request body was read (`seen.bodyBytes` counts it).
   * 'head': it runs as soon as the head arrived and reads (or leaves unread) the body itself.
   */
  answerAt?: 'request' | 'head';
}

/**
 * Starts an origin on 127.0.0.1 (`port`, a number or in the options; 0 = any). The handler runs after
 * the request body was read, or at once with `answerAt: 'head'`.
 */
export async function startOrigin(name: string, handler: OriginHandler = defaultHandler(name), portOrOptions: number | OriginOptions = 0): Promise<Origin> {
  const opts = typeof portOrOptions === 'number' ? { port: portOrOptions } : portOrOptions;
  const port = opts.port ?? 0;
  const atHead = opts.answerAt === 'head';
  const seen: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const origin = { active: 0, maxActive: 0, accepted: 0, seen, sockets, healthStatus: 200, healthHits: 0 } as Partial<Origin> & Origin;
  const server = createHttpServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    origin.active++;
    origin.maxActive = Math.max(origin.maxActive, origin.active);
    let done = false;
    const end = () => { if (!done) { done = true; origin.active--; } };
    res.on('finish', end);
    res.on('close', end);
    const rec: SeenRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, bodyBytes: 0 };
    seen.push(rec);
    if (atHead) { handler(req, res, rec, origin); return; }
    req.on('data', (c: Buffer) => { rec.bodyBytes += c.length; });
    req.on('end', () => handler(req, res, rec, origin));
    req.on('error', () => {});
  });
  server.on('connection', (s: Socket) => {
    origin.accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const p = await listenOn(server, port);
  (origin as { url: string }).url = `http://127.0.0.1:${p}`;
  (origin as { port: number }).port = p;
  origin.server = server;
  origin.close = () => new Promise<void>((resolve) => {
    if (!server.listening) { resolve(); return; }
    server.closeAllConnections();
    server.close(() => resolve());
  });
  origin.reopen = async () => { await listenOn(server, p); };
  return origin;
}

/** Handler variant that does not wait for the request body (streams it, e.g. for upload tests). */
export function defaultOriginHandler(name: string): OriginHandler { return defaultHandler(name); }

// ---------------------------------------------------------------- raw mode

export interface RawOriginRequest {
  /** Request line, e.g. `GET /a HTTP/1.1`. */
  line: string;
  method: string;
  target: string;
  /** `HTTP/1.1` or `HTTP/1.0`. */
  version: string;
  /** The head exactly as received, its final empty line included. */
  head: string;
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
  /** The PROXY v2 header that connection started with, or null. */
  proxy: SeenProxyHeader | null;
}

/** A PROXY v2 header a connection started with. */
export interface SeenProxyHeader {
  command: number;
  family: number;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
}

/**
 * Returns the bytes to answer with, or null/nothing to answer nothing (and keep the connection open).
 * `socket` is the connection's own socket, for scripts that write, pause, end or reset it themselves.
 */
export type RawReply = (req: RawOriginRequest, index: number, socket: Socket) => string | Buffer | null | void;

export interface RawOriginOptions {
  /**
   * 'request' (default): a request is read whole (body included, strict framing) before it is answered.
   * 'head': it is answered as soon as its head is complete; body bytes are recorded but not read as
   * requests unless they hold an empty line (upstream clients' tests: an answer before the body ends).
   */
  answerAt?: 'request' | 'head';
}

export interface RawOrigin {
  readonly url: string;
  readonly port: number;
  /** Requests parsed so far, in arrival order over all connections. */
  readonly requests: RawOriginRequest[];
  /** Bytes each connection received, in accept order (PROXY header included). */
  readonly connections: Buffer[];
  /** The PROXY v2 header each connection started with, or null. */
  readonly proxyHeaders: (SeenProxyHeader | null)[];
  /** Connections accepted so far, and those open now. */
  readonly accepted: number;
  readonly sockets: Set<Socket>;
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
  constructor(private readonly conn: number, private readonly headOnly: boolean, private readonly onRequest: (r: RawOriginRequest) => void, private readonly onError: (e: string) => void) {}

  push(data: Buffer): void {
    if (this.failed) return;
    this.buf = this.buf.length === 0 ? data : Buffer.concat([this.buf, data]);
    for (;;) {
      const r = this.headOnly ? this.nextHead() : this.next();
      if (r === null) return;
      this.onRequest(r);
    }
  }

  private fail(msg: string): null {
    this.failed = true;
    this.onError(msg);
    return null;
  }

  /** 'head' mode: the next block up to an empty line, read leniently (nothing is refused). */
  private nextHead(): RawOriginRequest | null {
    const b = this.buf;
    const end = b.indexOf('\r\n\r\n');
    if (end < 0) return null;
    const raw = Buffer.from(b.subarray(0, end + 4));
    this.buf = b.subarray(end + 4);
    const head = raw.toString('latin1');
    const lines = head.slice(0, end).split('\r\n');
    const parts = lines[0].split(' ');
    const headers = new Map<string, string[]>();
    for (const h of lines.slice(1)) {
      const c = h.indexOf(':');
      if (c <= 0) continue;
      const name = h.slice(0, c).toLowerCase();
      headers.set(name, [...(headers.get(name) ?? []), h.slice(c + 1).trim()]);
    }
    return { line: lines[0], method: parts[0] ?? '', target: parts[1] ?? '', version: parts[2] ?? '', head, headerLines: lines.slice(1), headers, trailers: [], body: Buffer.alloc(0), raw, conn: this.conn, proxy: null };
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
    const head = b.subarray(0, end + 4).toString('latin1');
    return { line, method: parts[0], target: parts[1], version: parts[2], head, headerLines, headers, trailers, body: Buffer.from(body), raw, conn: this.conn, proxy: null };
  }
}

/**
 * Reads a PROXY v2 header at the start of a connection: the header, or null when the connection does
 * not start with one, or undefined while too few bytes arrived to tell. `used` is its length.
 */
function readProxyV2(b: Buffer): { header: SeenProxyHeader | null; used: number } | undefined {
  const sig = PROXY_V2_SIGNATURE;
  const n = Math.min(b.length, sig.length);
  if (!b.subarray(0, n).equals(sig.subarray(0, n))) return { header: null, used: 0 };
  if (b.length < 16) return undefined;
  const len = b.readUInt16BE(14);
  if (b.length < 16 + len) return undefined;
  const family = b[13];
  const body = b.subarray(16, 16 + len);
  const ip = (a: Buffer): string => (a.length === 4 ? [...a].join('.') : (a.toString('hex').match(/.{4}/g) as string[]).join(':'));
  const alen = family === 0x11 ? 4 : 16;
  return {
    used: 16 + len,
    header: {
      command: b[12], family,
      src: ip(body.subarray(0, alen)), dst: ip(body.subarray(alen, 2 * alen)),
      srcPort: body.readUInt16BE(2 * alen), dstPort: body.readUInt16BE(2 * alen + 2),
    },
  };
}

/** Starts a raw origin on 127.0.0.1 (free port). `reply` defaults to a 200 "ok". */
export async function startRawOrigin(reply: RawReply = okReply, opts: RawOriginOptions = {}): Promise<RawOrigin> {
  const requests: RawOriginRequest[] = [];
  const connections: Buffer[] = [];
  const proxyHeaders: (SeenProxyHeader | null)[] = [];
  const framingErrors: string[] = [];
  const sockets = new Set<Socket>();
  const byIndex: Socket[] = [];
  const headOnly = opts.answerAt === 'head';
  let waiters: (() => void)[] = [];
  const server: Server = createNetServer((s) => {
    const index = connections.length;
    connections.push(Buffer.alloc(0));
    proxyHeaders.push(null);
    byIndex[index] = s;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    const reader = new StrictReader(index, headOnly, (r) => {
      const i = requests.length;
      r.proxy = proxyHeaders[index];
      requests.push(r);
      const w = waiters; waiters = [];
      for (const f of w) f();
      const out = reply(r, i, s);
      if (out !== null && out !== undefined && !s.destroyed) s.write(out);
    }, (e) => { framingErrors.push(e); s.destroy(); });
    let proxyRead = false;
    s.on('data', (d: Buffer) => {
      connections[index] = Buffer.concat([connections[index], d]);
      if (proxyRead) { reader.push(d); return; }
      const p = readProxyV2(connections[index]);
      if (p === undefined) return;
      proxyRead = true;
      proxyHeaders[index] = p.header;
      reader.push(connections[index].subarray(p.used));
    });
  });
  const port = await listenOn(server, 0);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    connections,
    proxyHeaders,
    get accepted() { return connections.length; },
    sockets,
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
