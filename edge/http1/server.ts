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
import { Http1Connection, type Http1Context, type Http1Handler, type WsAcceptor, type WsLike } from './connection.js';
import { parseProxyHeader } from './proxy-protocol.js';
import { CONN_ADMIT, type ConnectionGuard } from '../shield/connection-guard.js';
import { isTrustedPeer, resolveClient, type IdentityConfig } from '../pipeline/identity.js';
import { Duplex } from 'node:stream';

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
}

/** How often connection deadlines (head, idle keep-alive, TLS handshake) are checked. */
const SCAN_MS = 100;

export async function openHttp1Listener(opts: Http1ListenerOptions, handler: Http1Handler): Promise<RunningListener> {
  const tlsCfg = opts.tls ?? null;
  const wsRuntime = opts.websocket !== undefined && opts.websocket !== null && opts.websocket.limits.enabled ? opts.websocket : null;
  const wsAcceptor = wsRuntime === null ? null : await loadWsAcceptor(wsRuntime);
  const conns: (Http1Connection | null)[] = [];
  const freeSlots: number[] = [];
  const guard = opts.connGuard ?? null;
  const acceptProxy = opts.acceptProxy === true;

  const ctx: Http1Context = {
    name: opts.name,
    tls: tlsCfg !== null,
    limits: opts.limits,
    clock: opts.clock,
    handler,
    always: tlsCfg?.hsts ? ['strict-transport-security', hstsValue(tlsCfg.hsts)] : [],
    websocket: wsRuntime,
    wsAcceptor,
    redirect: tlsCfg === null ? opts.redirectHttps ?? null : null,
    headTimeoutMs: opts.headTimeoutMs,
    idleTimeoutMs: opts.idleTimeoutMs,
    defaultHost: '',
    draining: false,
    connectionClosed(conn) {
      if (conn.slot >= 0) { conns[conn.slot] = null; freeSlots.push(conn.slot); conn.slot = -1; }
    },
  };

  const track = (conn: Http1Connection): void => {
    const i = freeSlots.length > 0 ? freeSlots.pop() as number : conns.push(null) - 1;
    conns[i] = conn;
    conn.slot = i;
  };

  // ---- TLS: one SecureContext per certificate, chosen by SNI; session tickets shared by all ----
  const certs = tlsCfg === null ? null : new TlsCertificates(tlsCfg, opts.onTlsReload);
  const ticketKeys = randomBytes(48);
  const makeContext = (files: UwsCertFiles): SecureContext => createSecureContext({
    cert: readFileSync(files.cert_file_name), key: readFileSync(files.key_file_name), passphrase: files.passphrase,
    minVersion: 'TLSv1.2', ticketKeys,
  });
  let defaultContext: SecureContext | null = null;
  const byName = new Map<string, SecureContext>();
  if (certs !== null) {
    try {
      defaultContext = makeContext(certs.load());
      const host: CertificateHost = {
        setServerName(name, files) { byName.set(name, makeContext(files)); },
        removeServerName(name) { byName.delete(name); },
        // New connections take the new default certificate; open ones keep theirs (no drop).
        replaceDefault(files) { defaultContext = makeContext(files); },
      };
      certs.attach(host);
    } catch (err) {
      certs.close();
      throw err;
    }
  }
  const contextFor = (servername: string): SecureContext | null => {
    const name = servername.toLowerCase();
    const exact = byName.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    if (dot > 0) { const wild = byName.get(`*${name.slice(dot)}`); if (wild !== undefined) return wild; }
    return defaultContext;
  };
  const sniCallback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    cb(null, contextFor(servername) ?? undefined);
  };

  /** TLS on an admitted connection; `rest` holds bytes read past a PROXY header (the ClientHello's start). */
  const startTls = (raw: Socket, remote: Uint8Array, rest: Buffer): void => {
    // With bytes already read, the TLS layer must see them first: it then reads through a small
    // stream wrapper instead of the socket's handle (only on PROXY connections whose header and
    // ClientHello came in one segment).
    const carrier: Socket | Duplex = rest.length === 0 ? raw : new PrefixedSocket(raw, rest);
    const t = new TLSSocket(carrier as Socket, {
      isServer: true,
      secureContext: defaultContext as SecureContext,
      SNICallback: sniCallback,
      // HTTP/2 (its own issue) adds 'h2' here and picks the engine on the negotiated protocol.
      ALPNProtocols: ['http/1.1'],
    });
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      opts.onRefused?.(remote, 'tls_handshake_timeout');
      t.destroy();
      raw.destroy();
    }, opts.headTimeoutMs);
    timer.unref();
    t.on('error', (err: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      // A client that hangs up mid-handshake is no news; a handshake that fails is (scanners, old clients).
      if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') opts.onRefused?.(remote, `tls_handshake_failed: ${err.message.slice(0, 120)}`);
      raw.destroy();
    });
    t.once('secure', () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const sni = typeof t.servername === 'string' && t.servername !== '' ? t.servername.toLowerCase() : null;
      track(new Http1Connection(t, ctx, remote, sni, raw));
    });
    if (rest.length === 0) raw.resume();
  };

  /** The client is known (socket peer, or the PROXY header's source): connection guard, then HTTP. */
  const admitted = (sock: Socket, remote: Uint8Array, rest: Buffer): void => {
    if (guard !== null) {
      const id = resolveClient(remote, undefined, opts.identity);
      if (id === null) { sock.destroy(); return; }
      const now = opts.clock.now();
      const v = guard.open(id.key, remote, opts.name, now);
      if (v !== CONN_ADMIT) { guard.refuse(sock, v, now); return; }
      const key = id.key;
      sock.once('close', () => guard.close(key));
    }
    if (tlsCfg !== null) { startTls(sock, remote, rest); return; }
    const conn = new Http1Connection(sock, ctx, remote, null);
    track(conn);
    conn.feed(rest);
    sock.resume();
  };

  /** accept_proxy: read the PROXY header (trusted peers only), then go on with the address it carries. */
  const readProxyHeader = (sock: Socket, peer: Uint8Array): void => {
    if (!isTrustedPeer(peer, opts.identity)) { opts.onRefused?.(peer, 'proxy_untrusted_peer'); sock.destroy(); return; }
    let buf: Buffer = EMPTY;
    const timer = setTimeout(() => { opts.onRefused?.(peer, 'proxy_header_timeout'); sock.destroy(); }, opts.headTimeoutMs);
    timer.unref();
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const r = parseProxyHeader(buf);
      if (r.state === 'more') return;
      sock.removeListener('data', onData);
      clearTimeout(timer);
      if (r.state === 'error') { opts.onRefused?.(peer, `proxy_header_invalid: ${r.reason}`); sock.destroy(); return; }
      sock.pause();
      const h = r.header;
      admitted(sock, h.local || h.source === null ? peer : h.source, r.consumed === buf.length ? EMPTY : buf.subarray(r.consumed));
    };
    sock.on('data', onData);
    sock.on('error', () => {});
    sock.resume();
  };

  const onConnection = (sock: Socket): void => {
    if (ctx.draining) { sock.destroy(); return; }
    sock.setNoDelay(true);
    const remote = addressBytes(sock.remoteAddress);
    if (remote === null) { sock.destroy(); return; }
    if (acceptProxy) { readProxyHeader(sock, remote); return; }
    admitted(sock, remote, EMPTY);
  };

  // pauseOnConnect: nothing is read before the connection guard (and a PROXY header) decided.
  const server: Server = createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, onConnection);
  server.on('error', () => { /* accept errors (EMFILE …) must not end the process */ });

  await new Promise<void>((resolve, reject) => {
    const onErr = (err: Error): void => { server.removeListener('listening', onListening); reject(new Error(`cannot listen on ${opts.host}:${opts.port}: ${err.message}`)); };
    const onListening = (): void => { server.removeListener('error', onErr); resolve(); };
    server.once('error', onErr);
    server.once('listening', onListening);
    // exclusive: no other process can take the port with SO_REUSEPORT and steal connections.
    server.listen({ host: opts.host, port: opts.port, exclusive: true, backlog: 4096 });
  }).catch((err: Error) => { certs?.close(); throw err; });
  const port = (server.address() as { port: number }).port;
  ctx.defaultHost = opts.host.includes(':') ? `[${opts.host}]:${port}` : `${opts.host}:${port}`;
  certs?.watch();

  const scan = setInterval(() => {
    const now = opts.clock.now();
    for (let i = 0; i < conns.length; i++) {
      const c = conns[i];
      if (c !== null && c.deadline !== 0 && now >= c.deadline) c.expire();
    }
  }, SCAN_MS);
  scan.unref();

  let open = true;
  return {
    port,
    name: opts.name,
    stopAccepting: () => {
      if (!open) return;
      open = false;
      ctx.draining = true;
      server.close();
      certs?.close();
      // Idle keep-alive connections have nothing left to say: close them now; busy ones close after their response.
      for (const c of conns) if (c !== null && c.current === null) c.destroy();
    },
    closeConnections: () => {
      clearInterval(scan);
      for (const c of conns) if (c !== null) c.destroy();
    },
    reloadTls: () => {
      if (certs === null || !open) return null;
      const r = certs.reload();
      opts.onTlsReload?.(r);
      return r;
    },
  };
}

const EMPTY = Buffer.alloc(0);

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

/** The peer address as 4 (IPv4, IPv4-mapped) or 16 bytes. */
function addressBytes(addr: string | undefined): Uint8Array | null {
  if (addr === undefined) return null;
  return parseIp(addr);
}

/** ws's server side, loaded only for listeners that tunnel WebSockets. */
async function loadWsAcceptor(runtime: WebSocketRuntime): Promise<WsAcceptor> {
  const { WebSocketServer } = await import('ws');
  return {
    accept(sock, head, key, version, protocols, chosen, onOpen) {
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
    },
  };
}
