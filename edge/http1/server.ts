// The HTTP/1.1 engine's listener: a net.Server (TLS is layered per connection with node:tls, so a
// PROXY header or the connection guard can act on the raw socket before the handshake), the
// per-connection deadline scan, certificate loading and reload, and graceful stop.
import { createServer, type Server, type Socket } from 'node:net';
import { TLSSocket, createSecureContext, type SecureContext } from 'node:tls';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { RequestLimits } from '../config/normalize.js';
import type { Clock } from '../../lib/clock.js';
import { TlsCertificates, hstsValue, type CertificateHost, type RedirectHttpsConfig, type TlsConfig, type TlsReloadResult, type UwsCertFiles } from '../tls/certificates.js';
import type { WebSocketRuntime } from '../upstream/websocket.js';
import type { RunningListener } from '../uws/listener.js';
import { parseIp } from '../../lib/ip.js';
import { Transaction } from '../pipeline/transaction.js';
import { proxyRefused } from '../pipeline/reply.js';
import type { ClientIO } from '../pipeline/exchange.js';
import { Http1Connection, type Http1Context, type Http1Handler, type WsAcceptor, type WsLike } from './connection.js';
import { parseProxyHeader } from './proxy-protocol.js';
import { CONN_ADMIT, type ConnectionGuard } from '../shield/connection-guard.js';
import { isTrustedPeer, resolveClient, type IdentityConfig } from '../pipeline/identity.js';
import { Duplex } from 'node:stream';
import type { Http2Settings } from '../http2/config.js';
// Types only: node:http2 and the HTTP/2 layer are loaded when a listener enables HTTP/2 (buildSettings).
import type { Http2Context, Http2Handler } from '../http2/connection.js';
import { PREFACE } from '../http2/frame-scanner.js';
import type { Http2Engine } from '../http2/config.js';
import { EXTRA_ACCEPT_HANDLES, fanOutAccepts } from './accept-fanout.js';

export interface Http1ListenerOptions {
  host: string;
  port: number;
  name: string;
  limits: RequestLimits;
  clock: Clock;
  /** timeouts.client_head: from the first byte of a head (or the accept) to its end. */
  headTimeoutMs: number;
  /** timeouts.client_idle: a keep-alive connection waiting for its next request. */
  idleTimeoutMs: number;
  tls?: TlsConfig | null;
  redirectHttps?: RedirectHttpsConfig | null;
  websocket?: WebSocketRuntime | null;
  onTlsReload?: (r: TlsReloadResult) => void;
  /** The in-process connection guard (limits.connection): asked once per connection before a byte of HTTP is read. */
  connGuard?: ConnectionGuard | null;
  /** Client keys (IPv6 prefix) and trusted_proxies, for the connection guard and PROXY protocol. */
  identity: IdentityConfig;
  /** listen[].accept_proxy: every connection starts with a PROXY v1/v2 header from a trusted proxy. */
  acceptProxy?: boolean;
  /** A connection closed before HTTP for a reason the SOC should see (PROXY refused, TLS handshake failed or too slow). */
  onRefused?: (remote: Uint8Array, reason: string) => void;
  /** listen[].http2: offer ALPN h2 on this TLS listener. */
  http2?: boolean;
  /** listen[].h2c: accept HTTP/2 prior knowledge from trusted_proxies peers on this plain listener. */
  h2c?: boolean;
  /** `http2:` settings and defences (needed when http2 or h2c is on). */
  http2Settings?: Http2Settings;
  /** listen[].http2_engine: our own frame layer (portcullis, the default) or node:http2 behind the frame gate (node). */
  http2Engine?: Http2Engine;
}

/** A connection the listener tracks for its deadline scan and graceful stop (HTTP/1.1 or HTTP/2). */
interface TrackedConnection {
  slot: number;
  deadline: number;
  readonly current: unknown;
  expire(): void;
  destroy(): void;
  /** HTTP/2: GOAWAY and let the streams in flight finish. */
  drain?(): void;
}

/** How often connection deadlines (head, idle keep-alive, TLS handshake) are checked. */
const SCAN_MS = 100;
/** listen() backlog: a burst of 1,000 connections must not overflow it (a dropped SYN costs the client 1 s). */
const BACKLOG = 4096;

/** An open http1 listener: a RunningListener that a live reconfiguration can change (edge/reconfigure.ts). */
export interface Http1Listener extends RunningListener {
  /**
   * Builds the settings a new connection would get from `opts` (same address; TLS files are read
   * and checked here, so a bad certificate throws before anything changed) and returns what puts
   * them in force. Connections already open keep the settings they were accepted with, finish
   * their current request and close (Connection: close), so that their clients reconnect onto the
   * new ones.
   */
  prepare(opts: Http1ListenerOptions): Promise<{ commit(): void; abandon(): void }>;
  /**
   * Connections accepted while the listener was opened `held` wait (unread) until this call: a
   * listener added by a reload starts serving when the rest of the new config is in force.
   */
  activate(): void;
  /**
   * Removed by a reload: stop accepting now; open connections finish what they are doing and close
   * (a busy one after its response, an idle one on its next request — answered with Connection:
   * close — or at its idle deadline). Resolves when none is left, or after `graceMs` (the rest are
   * then closed).
   */
  retire(graceMs: number): Promise<void>;
}

/** What a connection is accepted with; replaced as a whole by a reload (old connections keep theirs). */
interface Settings {
  readonly opts: Http1ListenerOptions;
  readonly ctx: Http1Context;
  readonly tls: TlsState | null;
  /** HTTP/2 of this generation (ALPN h2 on TLS, h2c prior knowledge on plain listeners), null when off. */
  readonly h2: H2Settings | null;
}

/** HTTP/2 of a settings generation: its context and the engine (lazily loaded) that opens its connections. */
interface H2Settings {
  readonly ctx: Http2Context;
  readonly open: OpenHttp2;
}
type OpenHttp2 = (sock: Socket, ctx: Http2Context, remote: Uint8Array, sni: string | null, raw: Socket, first: Buffer) => TrackedConnection;

/**
 * The HTTP/2 engines, each imported the first time a listener enables HTTP/2 with it (a TLS listener
 * by default, h2c on request). A plain listener loads neither, and the default frame engine never
 * loads node:http2: node:http2 and its layer cost ≈ 3 MB of RSS (its JavaScript, nghttp2's binding, the
 * node binary's pages they touch), measured with bench/memory/rss.mjs.
 */
let nodeEngine: Promise<typeof import('../http2/connection.js')> | null = null;
const loadNodeEngine = (): Promise<typeof import('../http2/connection.js')> => (nodeEngine ??= import('../http2/connection.js'));
let frameEngine: Promise<typeof import('../http2/frames/connection.js')> | null = null;
const loadFrameEngine = (): Promise<typeof import('../http2/frames/connection.js')> => (frameEngine ??= import('../http2/frames/connection.js'));

/** listen[].http2_engine: node — node:http2 sessions behind the frame gate, one session factory per settings generation. */
function nodeOpener(m: typeof import('../http2/connection.js'), o: Http1ListenerOptions): OpenHttp2 {
  const factory = m.createSessionFactory(o.http2Settings as Http2Settings, o.limits);
  return (sock, ctx, remote, sni, raw, first) => new m.Http2Connection(sock, ctx, remote, sni, raw, factory, first);
}

/** listen[].http2_engine: portcullis (the default) — our own frame engine, no node:http2 at all. */
function frameOpener(m: typeof import('../http2/frames/connection.js')): OpenHttp2 {
  return (sock, ctx, remote, sni, raw, first) => new m.FrameConnection(sock, ctx, remote, sni, raw, first);
}

interface TlsState {
  readonly certs: TlsCertificates;
  defaultContext: SecureContext;
  readonly byName: Map<string, SecureContext>;
  readonly sniCallback: (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void;
}

export async function openHttp1Listener(opts: Http1ListenerOptions, handler: Http2Handler, held = false): Promise<Http1Listener> {
  const conns: (TrackedConnection | null)[] = [];
  const freeSlots: number[] = [];
  let live = 0;
  let onEmpty: (() => void) | null = null;
  // Session tickets are shared by every certificate and every settings generation of the listener:
  // a returning client resumes across a certificate or config reload.
  const ticketKeys = randomBytes(48);

  const connectionClosed = (conn: TrackedConnection): void => {
    if (conn.slot < 0) return;
    conns[conn.slot] = null;
    freeSlots.push(conn.slot);
    conn.slot = -1;
    live--;
    if (live === 0 && onEmpty !== null) onEmpty();
  };
  const track = (conn: TrackedConnection): void => {
    const i = freeSlots.length > 0 ? freeSlots.pop() as number : conns.push(null) - 1;
    conns[i] = conn;
    conn.slot = i;
    live++;
  };

  /** Everything a connection needs from `o`; throws (before any change) on unreadable TLS files. */
  const buildSettings = async (o: Http1ListenerOptions): Promise<Settings> => {
    const tlsCfg = o.tls ?? null;
    const wsRuntime = o.websocket !== undefined && o.websocket !== null && o.websocket.limits.enabled ? o.websocket : null;
    const wsAcceptor = wsRuntime === null ? null : wsAcceptorFor(wsRuntime);
    const ctx: Http1Context = {
      name: o.name,
      tls: tlsCfg !== null,
      limits: o.limits,
      clock: o.clock,
      handler,
      always: tlsCfg?.hsts ? ['strict-transport-security', hstsValue(tlsCfg.hsts)] : [],
      websocket: wsRuntime,
      wsAcceptor,
      redirect: tlsCfg === null ? o.redirectHttps ?? null : null,
      headTimeoutMs: o.headTimeoutMs,
      idleTimeoutMs: o.idleTimeoutMs,
      defaultHost: '',
      draining: false,
      connectionClosed,
    };
    const h2On = (tlsCfg !== null ? o.http2 === true : o.h2c === true) && o.http2Settings !== undefined;
    const h2: H2Settings | null = !h2On ? null : {
      open: o.http2Engine === 'node' ? nodeOpener(await loadNodeEngine(), o) : frameOpener(await loadFrameEngine()),
      ctx: {
        name: o.name, tls: tlsCfg !== null, limits: o.limits, clock: o.clock, handler, always: ctx.always, settings: o.http2Settings as Http2Settings,
        headTimeoutMs: o.headTimeoutMs, idleTimeoutMs: o.idleTimeoutMs, draining: false, connectionClosed,
      },
    };
    return { opts: o, ctx, tls: tlsCfg === null ? null : loadTls(tlsCfg, o.onTlsReload, ticketKeys), h2 };
  };

  let cur = await buildSettings(opts);

  /** TLS on an admitted connection; `rest` holds bytes read past a PROXY header (the ClientHello's start). */
  const startTls = (s: Settings, raw: Socket, remote: Uint8Array, rest: Buffer): void => {
    const tls = s.tls as TlsState;
    // With bytes already read, the TLS layer must see them first: it then reads through a small
    // stream wrapper instead of the socket's handle (only on PROXY connections whose header and
    // ClientHello came in one segment).
    const carrier: Socket | Duplex = rest.length === 0 ? raw : new PrefixedSocket(raw, rest);
    const t = new TLSSocket(carrier as Socket, {
      isServer: true,
      secureContext: tls.defaultContext,
      SNICallback: tls.sniCallback,
      // h2 first: the client picks from our list in our order of preference (RFC 7301 lets the server choose).
      ALPNProtocols: s.h2 !== null ? ['h2', 'http/1.1'] : ['http/1.1'],
    });
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      s.opts.onRefused?.(remote, 'tls_handshake_timeout');
      t.destroy();
      raw.destroy();
    }, s.opts.headTimeoutMs);
    timer.unref();
    t.on('error', (err: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ERR_SSL_HTTP_REQUEST' || code === 'ERR_SSL_HTTPS_PROXY_REQUEST') { answerPlainHttp(s, raw, remote); return; }
      // A client that hangs up mid-handshake is no news; a handshake that fails is (scanners, old clients).
      if (code !== 'ECONNRESET') s.opts.onRefused?.(remote, `tls_handshake_failed: ${err.message.slice(0, 120)}`);
      raw.destroy();
    });
    t.once('secure', () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const sni = typeof t.servername === 'string' && t.servername !== '' ? t.servername.toLowerCase() : null;
      if (s.h2 !== null && t.alpnProtocol === 'h2') { startHttp2(s, t, remote, sni, raw, EMPTY); return; }
      track(new Http1Connection(t, s.ctx, remote, sni, raw));
    });
    if (rest.length === 0) raw.resume();
  };

  /**
   * Plain HTTP on a TLS listener (someone typed http://host:443/): answered 400 in clear text, as
   * nginx does, instead of a silent close. OpenSSL itself recognises it: a first record that starts
   * with "GET ", "POST ", "HEAD ", "PUT " (ERR_SSL_HTTP_REQUEST) or "CONNECT" (…HTTPS_PROXY_REQUEST)
   * fails the handshake before any byte was written (no alert), so the socket is still clean for a
   * plain answer. Recognising it there costs a real TLS client nothing; peeking at the first bytes
   * in JS would cost every TLS connection an extra read. Other methods (and anything else that is
   * not TLS) fail as "wrong version number" and are closed as before. Called from the TLS socket's
   * 'error' event: node:tls destroys `raw` just after it (a microtask), so the answer is written now;
   * 150 bytes into an empty send buffer leave at once. One access line (400, PR), a guard event and
   * one error on the client's record, through the pipeline's rejected() like a refused head.
   */
  const answerPlainHttp = (s: Settings, raw: Socket, remote: Uint8Array): void => {
    const now = s.opts.clock.now();
    const tx = new Transaction(NO_IO, now);
    tx.listener = s.ctx.name;
    tx.tls = true;
    tx.remote = remote;
    tx.method = '<BADREQ>';
    tx.bytesIn = raw.bytesRead;
    proxyRefused(tx, 400);
    if (!raw.destroyed && raw.writable) { raw.end(PLAIN_HTTP_ANSWER); tx.bytesOut = PLAIN_HTTP_ANSWER.length; }
    s.ctx.handler.rejected(tx, 400, PLAIN_HTTP_REASON);
  };

  /** The client is known (socket peer, or the PROXY header's source): connection guard, then HTTP. */
  const admitted = (s: Settings, sock: Socket, remote: Uint8Array, rest: Buffer): void => {
    const guard = s.opts.connGuard ?? null;
    if (guard !== null) {
      const id = resolveClient(remote, undefined, s.opts.identity);
      if (id === null) { sock.destroy(); return; }
      const now = s.opts.clock.now();
      const v = guard.open(id.key, remote, s.opts.name, now);
      if (v !== CONN_ADMIT) { guard.refuse(sock, v, now); return; }
      const key = id.key;
      sock.once('close', () => guard.close(key));
    }
    if (s.tls !== null) { startTls(s, sock, remote, rest); return; }
    if (s.h2 !== null && isTrustedPeer(peerOf(sock), s.opts.identity)) { sniffPreface(s, sock, remote, rest); return; }
    startHttp1(s, sock, remote, rest);
  };

  const startHttp1 = (s: Settings, sock: Socket, remote: Uint8Array, rest: Buffer): void => {
    const conn = new Http1Connection(sock, s.ctx, remote, null);
    track(conn);
    conn.feed(rest);
    sock.resume();
  };

  const startHttp2 = (s: Settings, sock: Socket, remote: Uint8Array, sni: string | null, raw: Socket, first: Buffer): void => {
    const h2 = s.h2 as H2Settings;
    track(h2.open(sock, h2.ctx, remote, sni, raw, first));
  };

  /**
   * h2c with prior knowledge (a trusted load balancer that speaks HTTP/2 in clear): the first bytes
   * tell. The HTTP/1.1 parser refuses the preface at once, so anything else goes there unchanged.
   */
  const sniffPreface = (s: Settings, sock: Socket, remote: Uint8Array, rest: Buffer): void => {
    let buf = rest;
    const decide = (): boolean => {
      const n = Math.min(buf.length, PREFACE.length);
      if (buf.subarray(0, n).equals(PREFACE.subarray(0, n))) {
        if (n < PREFACE.length) return false; // a prefix of the preface: wait for more
        sock.removeListener('data', onData);
        clearTimeout(timer);
        sock.pause();
        startHttp2(s, sock, remote, null, sock, buf);
        return true;
      }
      sock.removeListener('data', onData);
      clearTimeout(timer);
      sock.pause();
      startHttp1(s, sock, remote, buf);
      return true;
    };
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      decide();
    };
    // Nothing sent: the HTTP/1.1 connection's own head deadline takes over.
    const timer = setTimeout(() => { sock.removeListener('data', onData); sock.pause(); startHttp1(s, sock, remote, buf); }, Math.min(s.opts.headTimeoutMs, 1000));
    timer.unref();
    if (buf.length > 0 && decide()) return;
    sock.on('data', onData);
    sock.resume();
  };

  /** accept_proxy: read the PROXY header (trusted peers only), then go on with the address it carries. */
  const readProxyHeader = (s: Settings, sock: Socket, peer: Uint8Array): void => {
    const o = s.opts;
    if (!isTrustedPeer(peer, o.identity)) { o.onRefused?.(peer, 'proxy_untrusted_peer'); sock.destroy(); return; }
    let buf: Buffer = EMPTY;
    const timer = setTimeout(() => { o.onRefused?.(peer, 'proxy_header_timeout'); sock.destroy(); }, o.headTimeoutMs);
    timer.unref();
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const r = parseProxyHeader(buf);
      if (r.state === 'more') return;
      sock.removeListener('data', onData);
      clearTimeout(timer);
      if (r.state === 'error') { o.onRefused?.(peer, `proxy_header_invalid: ${r.reason}`); sock.destroy(); return; }
      sock.pause();
      const h = r.header;
      admitted(s, sock, h.local || h.source === null ? peer : h.source, r.consumed === buf.length ? EMPTY : buf.subarray(r.consumed));
    };
    sock.on('data', onData);
    sock.on('error', () => {});
    sock.resume();
  };

  /** Accepted while `held`: unread (pauseOnConnect) until activate(). */
  let waiting: Socket[] | null = held ? [] : null;
  const onConnection = (sock: Socket): void => {
    const s = cur;
    if (s.ctx.draining) { sock.destroy(); return; }
    if (waiting !== null) { waiting.push(sock); return; }
    sock.setNoDelay(true);
    const remote = addressBytes(sock.remoteAddress);
    if (remote === null) { sock.destroy(); return; }
    if (s.opts.acceptProxy === true) { readProxyHeader(s, sock, remote); return; }
    admitted(s, sock, remote, EMPTY);
  };

  // pauseOnConnect: nothing is read before the connection guard (and a PROXY header) decided.
  const makeServer = (): Server => {
    const s = createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, onConnection);
    s.on('error', () => { /* accept errors (EMFILE …) must not end the process */ });
    return s;
  };
  const server = makeServer();

  await new Promise<void>((resolve, reject) => {
    const onErr = (err: Error): void => { server.removeListener('listening', onListening); reject(new Error(`cannot listen on ${opts.host}:${opts.port}: ${err.message}`)); };
    const onListening = (): void => { server.removeListener('error', onErr); resolve(); };
    server.once('error', onErr);
    server.once('listening', onListening);
    // exclusive: no other process can take the port with SO_REUSEPORT and steal connections.
    server.listen({ host: opts.host, port: opts.port, exclusive: true, backlog: BACKLOG });
  }).catch((err: Error) => { cur.tls?.certs.close(); throw err; });
  // More accepting handles on the same socket (libuv accepts one connection per handle per loop
  // turn); they arrive in the background, the primary handle accepts meanwhile.
  const extraServers: Server[] = [];
  const stopFanout = fanOutAccepts(server, EXTRA_ACCEPT_HANDLES, makeServer, (s) => extraServers.push(s), (sock) => { sock.pause(); onConnection(sock); }, { backlog: BACKLOG, timeoutMs: 60_000 });
  const port = (server.address() as { port: number }).port;
  const defaultHost = opts.host.includes(':') ? `[${opts.host}]:${port}` : `${opts.host}:${port}`;
  cur.ctx.defaultHost = defaultHost;
  cur.tls?.certs.watch();

  const scan = setInterval(() => {
    const now = opts.clock.now();
    for (let i = 0; i < conns.length; i++) {
      const c = conns[i];
      if (c !== null && c.deadline !== 0 && now >= c.deadline) c.expire();
    }
  }, SCAN_MS);
  scan.unref();

  let open = true;
  let released: Promise<void> = Promise.resolve();
  const closeListening = (): void => {
    open = false;
    cur.ctx.draining = true;
    if (cur.h2 !== null) cur.h2.ctx.draining = true;
    server.close();
    released = stopFanout();
    for (const x of extraServers) x.close();
    cur.tls?.certs.close();
    if (waiting !== null) { for (const sock of waiting) sock.destroy(); waiting = null; }
  };
  const listener: Http1Listener = {
    port,
    get name() { return cur.opts.name; },
    stopAccepting: () => {
      if (!open) return;
      closeListening();
      // Idle keep-alive connections have nothing left to say: close them now; busy ones close after
      // their response (HTTP/2: GOAWAY, the streams in flight finish).
      for (const c of conns) {
        if (c === null) continue;
        if (c.current === null) c.destroy();
        else c.drain?.();
      }
    },
    released: () => released,
    closeConnections: () => {
      clearInterval(scan);
      for (const c of conns) if (c !== null) c.destroy();
    },
    reloadTls: () => {
      if (cur.tls === null || !open) return null;
      const r = cur.tls.certs.reload();
      cur.opts.onTlsReload?.(r);
      return r;
    },
    prepare: async (next) => {
      const s = await buildSettings(next); // TLS files read and checked: a failure throws before any change
      s.ctx.defaultHost = defaultHost;
      let settled = false;
      return {
        commit: () => {
          if (settled) return;
          settled = true;
          if (!open) { s.tls?.certs.close(); return; }
          const old = cur;
          cur = s;
          s.tls?.certs.watch();
          // Old connections answer their current (or next) request with Connection: close.
          old.ctx.draining = true;
          if (old.h2 !== null) old.h2.ctx.draining = true;
          old.tls?.certs.close();
        },
        abandon: () => {
          if (settled) return;
          settled = true;
          s.tls?.certs.close();
        },
      };
    },
    activate: () => {
      const list = waiting;
      waiting = null;
      if (list !== null) for (const sock of list) onConnection(sock);
    },
    retire: (graceMs) => {
      if (open) closeListening();
      return new Promise<void>((resolve) => {
        const finish = (): void => {
          onEmpty = null;
          clearTimeout(timer);
          clearInterval(scan);
          for (const c of conns) if (c !== null) c.destroy();
          resolve();
        };
        const timer = setTimeout(finish, graceMs);
        timer.unref();
        if (live === 0) finish(); else onEmpty = finish;
      });
    },
  };
  return listener;
}

const EMPTY = Buffer.alloc(0);

/** Guard event reason (and access-log cause) of plain HTTP sent to a TLS listener. */
export const PLAIN_HTTP_REASON = 'plain_http_on_tls_port';
const PLAIN_HTTP_BODY = 'Bad Request: the plain HTTP request was sent to an HTTPS port\n';
/** The whole answer, in clear text; no HSTS (a browser ignores it on plain HTTP, RFC 6797 §8.1). */
const PLAIN_HTTP_ANSWER = Buffer.from(`HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${PLAIN_HTTP_BODY.length}\r\nconnection: close\r\n\r\n${PLAIN_HTTP_BODY}`, 'latin1');

/** The ClientIO of a record made without an exchange (plain HTTP on a TLS port): nothing to write through it. */
const NO_IO: ClientIO = {
  aborted: true, responseStarted: true,
  attachBody() {}, resumeBody() {}, reply() {}, startResponse() {}, writeResponseBody() { return true; }, endResponse() {}, close() {},
};

/** Certificates and their SecureContexts (one per name, chosen by SNI) for one settings generation. */
function loadTls(cfg: TlsConfig, onReload: ((r: TlsReloadResult) => void) | undefined, ticketKeys: Buffer): TlsState {
  const certs = new TlsCertificates(cfg, onReload);
  const makeContext = (files: UwsCertFiles): SecureContext => createSecureContext({
    cert: readFileSync(files.cert_file_name), key: readFileSync(files.key_file_name), passphrase: files.passphrase,
    minVersion: 'TLSv1.2', ticketKeys,
  });
  try {
    const byName = new Map<string, SecureContext>();
    const contextFor = (servername: string): SecureContext => {
      const name = servername.toLowerCase();
      const exact = byName.get(name);
      if (exact !== undefined) return exact;
      const dot = name.indexOf('.');
      if (dot > 0) { const wild = byName.get(`*${name.slice(dot)}`); if (wild !== undefined) return wild; }
      return state.defaultContext;
    };
    const state: TlsState = {
      certs, byName, defaultContext: makeContext(certs.load()),
      sniCallback: (servername, cb) => { cb(null, contextFor(servername)); },
    };
    const host: CertificateHost = {
      setServerName(name, files) { byName.set(name, makeContext(files)); },
      removeServerName(name) { byName.delete(name); },
      // New connections take the new default certificate; open ones keep theirs (no drop).
      replaceDefault(files) { state.defaultContext = makeContext(files); },
    };
    certs.attach(host);
    return state;
  } catch (err) {
    certs.close();
    throw err;
  }
}

/**
 * A socket seen through a stream that first yields bytes already read from it (after a PROXY
 * header) — what node:tls needs to start a handshake whose first bytes we hold.
 */
class PrefixedSocket extends Duplex {
  constructor(private readonly sock: Socket, first: Buffer) {
    super({ allowHalfOpen: true });
    this.push(first);
    sock.on('data', (d: Buffer) => { if (!this.push(d)) sock.pause(); });
    sock.on('end', () => this.push(null));
    sock.on('close', () => this.destroy());
    sock.on('error', (err) => this.destroy(err));
  }
  override _read(): void { this.sock.resume(); }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void { this.sock.write(chunk, cb); }
  override _final(cb: (err?: Error | null) => void): void { this.sock.end(); cb(); }
  override _destroy(err: Error | null, cb: (err: Error | null) => void): void { this.sock.destroy(); cb(err); }
}

/** The TCP peer's address bytes (not a PROXY header's source: h2c trusts the load balancer itself). */
function peerOf(sock: Socket): Uint8Array {
  return addressBytes(sock.remoteAddress) ?? new Uint8Array(0);
}

/** The peer address as 4 (IPv4, IPv4-mapped) or 16 bytes. */
function addressBytes(addr: string | undefined): Uint8Array | null {
  if (addr === undefined) return null;
  return parseIp(addr);
}

/**
 * ws's server side for listeners that tunnel WebSockets. `ws` (≈ 1 MB of heap) is imported on the first
 * upgrade this process accepts, not at start: most edges never tunnel one. Until the import is done the
 * socket waits detached from the HTTP/1.1 connection; what the client sends meanwhile stays in its
 * Readable buffer and reaches ws with the rest.
 */
let wsModule: Promise<typeof import('ws')> | null = null;
function wsAcceptorFor(runtime: WebSocketRuntime): WsAcceptor {
  return {
    accept(sock, head, key, version, protocols, chosen, onOpen) {
      void (wsModule ??= import('ws')).then(({ WebSocketServer }) => {
        const wss = new WebSocketServer({
          noServer: true,
          perMessageDeflate: false, // negotiated per hop; off towards clients (no zip bombs)
          maxPayload: runtime.limits.maxMessage,
          handleProtocols: () => chosen === '' ? false : chosen,
        });
        const headers: Record<string, string> = { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': key, 'sec-websocket-version': version };
        if (protocols !== '') headers['sec-websocket-protocol'] = protocols;
        const req = { method: 'GET', headers, url: '/' } as unknown as import('node:http').IncomingMessage;
        wss.handleUpgrade(req, sock as unknown as import('node:stream').Duplex, head, (ws) => onOpen(ws as unknown as WsLike));
      }, () => sock.destroy());
    },
  };
}
