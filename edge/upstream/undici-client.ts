// UpstreamClient on undici@7 `Pool.dispatch()` with a handler object (the v7 controller API).
// The comparison point and fallback for h1pool.ts (config `upstream.client: undici`), and the only
// client here that speaks https. One UndiciExchange per request is both the undici handler and the
// UpstreamStream; no promise or closure per chunk.
import { Readable } from 'node:stream';
import { Pool, buildConnector, type Dispatcher } from 'undici';
import type {
  UpstreamClient, UpstreamFailureKind, UpstreamRequest, UpstreamSink, UpstreamStream, UpstreamTimeouts,
} from './types.js';

export interface UndiciClientOptions {
  /** Sockets per origin (Pool `connections`). Default 256. */
  maxConnectionsPerOrigin?: number;
  /** Close keep-alive sockets unused this long. Default 4000. */
  idleSocketTimeoutMs?: number;
  /** Largest response head. Default 65536. */
  maxHeaderBytes?: number;
}

/** Request body fed by writeBody(); undici reads it. _read() means "room again" → onBodyDrain. */
class BodyStream extends Readable {
  owner: UndiciExchange;
  constructor(owner: UndiciExchange) {
    super({ highWaterMark: 65536 });
    this.owner = owner;
  }
  override _read(): void {
    this.owner.onBodyRead();
  }
}

type Controller = Dispatcher.DispatchController;

function failureKind(code: string | undefined, started: boolean): UpstreamFailureKind {
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT': return 'timeout_connect';
    case 'UND_ERR_HEADERS_TIMEOUT': return 'timeout_response';
    case 'UND_ERR_BODY_TIMEOUT': return 'timeout_idle';
    case 'UND_ERR_HEADERS_OVERFLOW':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    case 'UND_ERR_RES_EXCEEDED_MAX_SIZE':
      return 'protocol';
    default:
      if (code !== undefined && code.startsWith('HPE_')) return 'protocol';
      return started ? 'reset' : 'connect';
  }
}

class UndiciExchange implements UpstreamStream, Dispatcher.DispatchHandler {
  private readonly sink: UpstreamSink;
  private controller: Controller | null = null;
  private body: BodyStream | null;
  private finished = false;
  private started = false;
  private pausedWanted = false;
  private needDrain = false;

  constructor(sink: UpstreamSink, hasBody: boolean) {
    this.sink = sink;
    this.body = hasBody ? new BodyStream(this) : null;
  }

  get bodyStream(): BodyStream | null { return this.body; }

  // --- undici handler ---
  onRequestStart(controller: Controller): void {
    this.controller = controller;
    this.started = true;
    if (this.finished) { controller.abort(new Error('aborted')); return; }
    if (this.pausedWanted) controller.pause();
  }

  onResponseStart(controller: Controller, statusCode: number): void {
    this.controller = controller;
    if (this.finished) return;
    const raw = controller.rawHeaders;
    const headers: string[] = [];
    if (Array.isArray(raw)) {
      for (let i = 0; i < raw.length; i += 2) {
        headers.push(raw[i].toString('latin1').toLowerCase(), raw[i + 1].toString('latin1'));
      }
    }
    this.sink.onResponseStart(statusCode, headers);
    if (this.pausedWanted && !this.finished) controller.pause();
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.finished) return;
    if (!this.sink.onResponseData(chunk) && !this.finished) {
      this.pausedWanted = true;
      controller.pause();
    }
  }

  onResponseEnd(): void {
    if (this.finished) return;
    this.finished = true;
    this.sink.onResponseEnd();
  }

  onResponseError(_controller: Controller, err: Error & { code?: string }): void {
    if (this.finished) return;
    this.finished = true;
    if (this.body !== null) this.body.destroy();
    // llhttp failures surface as HTTPParserError (code HPE_*, sometimes none) or SocketError 'bad response'
    const kind = err.name === 'HTTPParserError' || err.message === 'bad response' ? 'protocol' : failureKind(err.code, this.started);
    const sent = kind === 'connect' || kind === 'timeout_connect' ? false : this.started;
    this.sink.onError({ kind, requestSent: sent, message: err.code !== undefined ? `${err.code}: ${err.message}` : err.message });
  }

  onBodyRead(): void {
    if (this.needDrain && !this.finished) {
      this.needDrain = false;
      this.sink.onBodyDrain();
    }
  }

  // --- UpstreamStream ---
  writeBody(chunk: Buffer): boolean {
    const b = this.body;
    if (b === null) throw new Error('writeBody() on a request without body');
    if (this.finished || b.destroyed) return true;
    if (chunk.length === 0) return true;
    const ok = b.push(chunk);
    if (!ok) this.needDrain = true;
    return ok;
  }

  endBody(): void {
    const b = this.body;
    if (b === null || this.finished || b.destroyed) return;
    b.push(null);
  }

  abort(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.controller !== null) this.controller.abort(new Error('aborted by client'));
    if (this.body !== null) this.body.destroy();
  }

  pause(): void {
    this.pausedWanted = true;
    if (this.controller !== null && !this.finished) this.controller.pause();
  }

  resume(): void {
    this.pausedWanted = false;
    if (this.controller !== null && !this.finished) this.controller.resume();
  }
}

function isFramingHeader(name: string): boolean {
  switch (name.length) {
    case 10: return name === 'connection' || name === 'keep-alive';
    case 14: return name === 'content-length';
    case 17: return name === 'transfer-encoding';
    default: return false;
  }
}

export class UndiciClient implements UpstreamClient {
  private readonly pools = new Map<string, Pool>();
  private readonly connections: number;
  private readonly keepAliveMs: number;
  private readonly maxHeaderBytes: number;

  constructor(opts: UndiciClientOptions = {}) {
    this.connections = opts.maxConnectionsPerOrigin ?? 256;
    this.keepAliveMs = opts.idleSocketTimeoutMs ?? 4000;
    this.maxHeaderBytes = opts.maxHeaderBytes ?? 65536;
  }

  private pool(origin: string, connectMs: number, proxyHeader: Buffer | undefined): Pool {
    const key = proxyHeader === undefined ? origin + ' ' + connectMs : origin + ' ' + connectMs + ' ' + proxyHeader.toString('latin1');
    let p = this.pools.get(key);
    if (p === undefined) {
      const base = buildConnector({ timeout: connectMs });
      const connect: buildConnector.connector = proxyHeader === undefined ? base : (o, cb) => {
        base(o, (...args) => {
          // PROXY header first, before undici writes the request (send_proxy: v2)
          if (args[0] === null) args[1].write(proxyHeader);
          cb(...args);
        });
      };
      p = new Pool(origin, {
        connections: this.connections,
        pipelining: 1,
        keepAliveTimeout: this.keepAliveMs,
        keepAliveMaxTimeout: this.keepAliveMs,
        maxHeaderSize: this.maxHeaderBytes,
        strictContentLength: true,
        connect,
      });
      this.pools.set(key, p);
    }
    return p;
  }

  request(origin: string, req: UpstreamRequest, timeouts: UpstreamTimeouts, sink: UpstreamSink): UpstreamStream {
    const bl = req.bodyLength;
    const ex = new UndiciExchange(sink, bl > 0 || bl === -2);
    const src = req.headers;
    const headers: string[] = [];
    for (let i = 0; i < src.length; i += 2) {
      if (!isFramingHeader(src[i])) headers.push(src[i], src[i + 1]);
    }
    if (bl >= 0) headers.push('content-length', String(bl));
    const opts: Dispatcher.DispatchOptions = {
      origin,
      path: req.path,
      method: req.method as Dispatcher.HttpMethod,
      headers,
      body: ex.bodyStream ?? (bl === 0 ? '' : null),
      headersTimeout: timeouts.responseMs,
      bodyTimeout: timeouts.idleMs,
    };
    // dispatch() throws InvalidArgumentError synchronously for CR/LF in headers, bad method, etc.
    this.pool(origin, timeouts.connectMs, req.proxyHeader).dispatch(opts, ex);
    return ex;
  }

  async close(): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(all.map((p) => p.destroy()));
  }
}
