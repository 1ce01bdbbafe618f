// A minimal HTTP/1.1 client connection bound to a chosen source address (127.x.y.z), so each
// simulated client is a distinct address to the proxy. node:http is avoided: it is slower, and the
// attack scenarios need byte-level control (slow headers, slow body, unread responses).
import { connect, type Socket } from 'node:net';

export interface Reply {
  status: number;
  /** Body bytes received. */
  bytes: number;
  /** Value of the first Set-Cookie header ("name=value; …"), or null. */
  setCookie: string | null;
  /** X-Origin header (which origin served it), or null. */
  origin: string | null;
  /** The server asked to close the connection. */
  close: boolean;
}

export type ClientErrorKind = 'connect' | 'reset' | 'timeout';
export class ClientError extends Error {
  constructor(readonly kind: ClientErrorKind, message: string) { super(message); }
}

const CRLF2 = Buffer.from('\r\n\r\n');

interface Pending { resolve: (r: Reply) => void; reject: (e: ClientError) => void; timer: NodeJS.Timeout; isHead: boolean }

export class ClientConn {
  readonly socket: Socket;
  connected = false;
  closed = false;
  private buf: Buffer | null = null;
  private pending: Pending | null = null;
  // Response being read: -1 = waiting for the head.
  private bodyLeft = -1;
  private chunked = false;
  private untilClose = false;
  private reply: Reply | null = null;
  private readonly ready: Promise<void>;

  constructor(port: number, localAddress: string, host = '127.0.0.1', connectTimeoutMs = 5000) {
    this.socket = connect({ port, host, localAddress, noDelay: true });
    this.ready = new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.socket.destroy(); reject(new ClientError('connect', 'connect timeout')); }, connectTimeoutMs);
      this.socket.once('connect', () => { clearTimeout(t); this.connected = true; resolve(); });
      this.socket.once('error', (e) => { clearTimeout(t); if (!this.connected) reject(new ClientError('connect', e.message)); });
    });
    this.ready.catch(() => undefined); // observed by send()
    this.socket.on('data', (d: Buffer) => this.onData(d));
    this.socket.on('error', () => undefined);
    this.socket.on('close', () => this.onClose());
  }

  /** Sends raw request bytes and resolves with the parsed response. One request at a time. */
  async send(raw: string | Buffer, timeoutMs: number, isHead = false): Promise<Reply> {
    if (this.pending) throw new Error('ClientConn: request already in flight');
    await this.ready;
    if (this.closed) throw new ClientError('reset', 'connection closed before the request was sent');
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = null;
        this.socket.destroy();
        reject(new ClientError('timeout', `no response within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending = { resolve, reject, timer, isHead };
      this.socket.write(raw);
    });
  }

  /** Resolves when the socket is connected (rejects with a ClientError otherwise). */
  whenConnected(): Promise<void> { return this.ready; }

  destroy(): void { this.socket.destroy(); }

  private finish(): void {
    const p = this.pending;
    const r = this.reply;
    this.pending = null;
    this.reply = null;
    this.bodyLeft = -1;
    this.chunked = false;
    this.untilClose = false;
    if (p && r) { clearTimeout(p.timer); p.resolve(r); }
    if (r?.close) this.socket.end();
  }

  private onClose(): void {
    this.closed = true;
    if (this.reply && this.untilClose) { this.finish(); return; }
    const p = this.pending;
    if (p) {
      this.pending = null;
      clearTimeout(p.timer);
      p.reject(new ClientError('reset', 'connection closed before a complete response'));
    }
  }

  private onData(d: Buffer): void {
    this.buf = this.buf ? Buffer.concat([this.buf, d]) : d;
    while (this.buf && this.buf.length > 0) {
      if (this.bodyLeft === -1 && !this.chunked && !this.untilClose) {
        const end = this.buf.indexOf(CRLF2);
        if (end < 0) return;
        const head = this.buf.toString('latin1', 0, end);
        this.buf = this.buf.subarray(end + 4);
        this.startReply(head);
        if (this.pending?.isHead || this.reply?.status === 204 || this.reply?.status === 304) {
          this.bodyLeft = 0; this.chunked = false; this.untilClose = false;
        }
        if (!this.chunked && !this.untilClose && this.bodyLeft === 0) { this.finish(); continue; }
      }
      if (this.untilClose) { if (this.reply) this.reply.bytes += this.buf.length; this.buf = null; return; }
      if (this.chunked) { if (!this.readChunks()) return; continue; }
      const take = Math.min(this.bodyLeft, this.buf.length);
      if (this.reply) this.reply.bytes += take;
      this.bodyLeft -= take;
      this.buf = take === this.buf.length ? null : this.buf.subarray(take);
      if (this.bodyLeft === 0) this.finish();
      else return;
    }
  }

  private startReply(head: string): void {
    const sp = head.indexOf(' ');
    const status = Number(head.slice(sp + 1, sp + 4));
    let contentLength = -1;
    let chunked = false;
    let close = false;
    let setCookie: string | null = null;
    let origin: string | null = null;
    for (const line of head.split('\r\n').slice(1)) {
      const colon = line.indexOf(':');
      if (colon < 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') contentLength = Number(value);
      else if (name === 'transfer-encoding') chunked = /chunked/i.test(value);
      else if (name === 'connection') close = /close/i.test(value);
      else if (name === 'set-cookie' && setCookie === null) setCookie = value;
      else if (name === 'x-origin') origin = value;
    }
    this.reply = { status, bytes: 0, setCookie, origin, close };
    if (chunked) { this.chunked = true; this.bodyLeft = 0; }
    else if (contentLength >= 0) this.bodyLeft = contentLength;
    else { this.untilClose = true; this.reply.close = true; }
  }

  /** Consumes chunked framing; true when the last chunk (and trailers) has been read. */
  private readChunks(): boolean {
    for (;;) {
      if (!this.buf) return false;
      if (this.bodyLeft > 0) {
        const take = Math.min(this.bodyLeft, this.buf.length);
        if (this.reply) this.reply.bytes += take;
        this.bodyLeft -= take;
        this.buf = take === this.buf.length ? null : this.buf.subarray(take);
        if (this.bodyLeft > 0) return false;
        this.bodyLeft = -2; // expect CRLF after chunk data
        continue;
      }
      if (this.bodyLeft === -2) {
        if (this.buf.length < 2) return false;
        this.buf = this.buf.length === 2 ? null : this.buf.subarray(2);
        this.bodyLeft = 0;
        continue;
      }
      const eol = this.buf.indexOf('\r\n');
      if (eol < 0) return false;
      const size = parseInt(this.buf.toString('latin1', 0, eol), 16);
      if (size === 0) {
        const end = this.buf.indexOf(CRLF2, eol - 2 >= 0 ? eol - 2 : 0);
        if (end < 0) return false;
        this.buf = end + 4 === this.buf.length ? null : this.buf.subarray(end + 4);
        this.chunked = false;
        this.bodyLeft = 0;
        this.finish();
        return true;
      }
      this.buf = this.buf.subarray(eol + 2);
      this.bodyLeft = size;
    }
  }
}

/** Builds request bytes. */
export function rawRequest(method: string, path: string, host: string, headers: Record<string, string> = {}, body?: string): string {
  let s = `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) portcullis-loadtest\r\nAccept: */*\r\n`;
  for (const [k, v] of Object.entries(headers)) s += `${k}: ${v}\r\n`;
  if (body !== undefined) s += `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
  return `${s}\r\n${body ?? ''}`;
}
