// HTTP/2 request and response heads ↔ the pipeline's HTTP/1.1 view (RFC 9113 §8).
//
// nghttp2 (under node:http2) already resets malformed streams (pseudo-header order, uppercase names,
// connection-specific fields, te other than trailers, content-length against DATA); this module checks
// the same rules again on what reaches us, because a refusal here gets a status, an event, an access
// line and an error on the client's record — and because the checks must hold whatever library sits
// below.
import { STATUS_CODES } from 'node:http';
import type { OutgoingHttpHeaders } from 'node:http2';
import { Transaction } from '../pipeline/transaction.js';
import type { Clock } from '../../lib/clock.js';
import type { ClientIO } from '../pipeline/exchange.js';
import { proxyRefused } from '../pipeline/reply.js';
import type { RequestLimits } from '../config/normalize.js';

/** Connection-specific fields (RFC 9113 §8.2.2): a request carrying one is malformed. */
export const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/** Response fields never sent to an HTTP/2 client: hop-by-hop ones, and framing we write ourselves. */
export const H2_RESPONSE_SKIP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade',
  'te', 'trailer', 'proxy-authenticate', 'content-length', 'date', 'http2-settings', 'alt-svc-h2c']);

/** Where the head came from: the listener's scheme, the TLS server name, the limits. */
export interface TranslateContext {
  readonly tls: boolean;
  readonly sni: string | null;
  readonly limits: RequestLimits;
  /** 421 / 400: the status for :authority ≠ SNI; 0 allows it. */
  readonly sniMismatchStatus: number;
}

/** Why a head is refused (status 0: accepted). */
export interface HeadRefusal {
  status: number;
  reason: string;
  /** Set on success: the client sent `expect: 100-continue` and waits for a 100 before its body. */
  expectContinue: boolean;
}

const DIGITS = /^[0-9]{1,15}$/;

/**
 * Fills the request fields of `tx` from node:http2's raw header list ([name, value, …], pseudo-header
 * fields first, names lower-case, values latin1). Returns a refusal (status ≠ 0) instead when the
 * head is malformed or over a limit; `out` is reused.
 */
export function translateRequest(raw: readonly string[], endStream: boolean, c: TranslateContext, tx: Transaction, out: HeadRefusal): boolean {
  let method = '', scheme = '', authority = '', path = '', protocol = '';
  let host: string | null = null;
  let cookie: string | null = null;
  let contentLength = '';
  let expectContinue = false;
  let bytes = 0;
  let count = 0;
  const headers: string[] = [];
  let i = 0;
  for (; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.charCodeAt(0) !== 58 /* ':' */) break;
    const value = raw[i + 1];
    bytes += name.length + value.length;
    switch (name) {
      case ':method': if (method !== '') return refuse(out, 400, 'duplicate :method'); method = value; break;
      case ':scheme': if (scheme !== '') return refuse(out, 400, 'duplicate :scheme'); scheme = value; break;
      case ':authority': if (authority !== '') return refuse(out, 400, 'duplicate :authority'); authority = value; break;
      case ':path': if (path !== '') return refuse(out, 400, 'duplicate :path'); path = value; break;
      case ':protocol': protocol = value; break;
      default: return refuse(out, 400, `unknown pseudo-header ${name.slice(0, 32)}`);
    }
  }
  for (; i < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    if (name.charCodeAt(0) === 58) return refuse(out, 400, 'pseudo-header after a regular field');
    if (CONNECTION_SPECIFIC.has(name)) return refuse(out, 400, `connection-specific field ${name} (RFC 9113 §8.2.2)`);
    if (hasUpper(name)) return refuse(out, 400, 'uppercase field name');
    bytes += name.length + value.length;
    if (++count > c.limits.maxHeaders) return refuse(out, 431, 'too many header fields');
    switch (name) {
      case 'te': if (value.toLowerCase() !== 'trailers') return refuse(out, 400, 'te other than "trailers"'); break;
      case 'host': if (host !== null) return refuse(out, 400, 'several Host headers'); host = value; continue; // re-added below
      case 'cookie': cookie = cookie === null ? value : `${cookie}; ${value}`; continue; // crumbs joined (RFC 9113 §8.2.3)
      case 'content-length': if (contentLength !== '' && contentLength !== value) return refuse(out, 400, 'differing content-length'); contentLength = value; break;
      case 'user-agent': tx.userAgent = value; break;
      case 'x-forwarded-for': tx.xff = tx.xff === undefined ? value : `${tx.xff}, ${value}`; break;
      case 'x-request-id': tx.clientRequestId = value; break;
      case 'x-forwarded-proto': tx.forwardedProto = value; break;
      case 'expect': if (value.toLowerCase() === '100-continue') expectContinue = true; break;
    }
    headers.push(name, value);
  }
  if (bytes > c.limits.maxHeaderBytes) return refuse(out, 431, 'request header block too large');
  if (method === '') return refuse(out, 400, 'missing :method');
  if (method === 'CONNECT' || protocol !== '') return refuse(out, 501, 'CONNECT is not supported');
  if (scheme === '' || path === '') return refuse(out, 400, 'missing :scheme or :path');
  if (scheme !== (c.tls ? 'https' : 'http')) return refuse(out, 400, `:scheme ${scheme.slice(0, 16)} on a ${c.tls ? 'TLS' : 'plain'} connection`);
  if (authority === '' && host === null) return refuse(out, 400, 'missing :authority and Host');
  if (authority !== '' && host !== null && authority.toLowerCase() !== host.toLowerCase()) return refuse(out, 400, ':authority and Host differ');
  const target = authority !== '' ? authority : host as string;
  if (authority.includes('@')) return refuse(out, 400, 'userinfo in :authority');
  if (path.length > c.limits.maxUrl) return refuse(out, 414, 'request target too long');
  if (path.charCodeAt(0) !== 47 /* / */ && !(path === '*' && method === 'OPTIONS')) return refuse(out, 400, ':path is not origin-form');
  if (c.sni !== null && c.sniMismatchStatus !== 0 && hostname(target) !== c.sni) {
    return refuse(out, c.sniMismatchStatus, `:authority ${hostname(target).slice(0, 64)} differs from the TLS server name`);
  }
  let bodyLength: number;
  if (contentLength !== '') {
    if (!DIGITS.test(contentLength)) return refuse(out, 400, 'invalid content-length');
    bodyLength = Number(contentLength);
    if (bodyLength > c.limits.maxBody) return refuse(out, 413, 'request body larger than limits.request.max_body');
    if (endStream && bodyLength !== 0) return refuse(out, 400, 'content-length without DATA');
  } else bodyLength = endStream ? -1 : -2;
  // Host first, as an HTTP/1.1 head has it; one cookie field.
  headers.unshift('host', target);
  if (cookie !== null) { headers.push('cookie', cookie); tx.cookie = cookie; }
  const q = path.indexOf('?');
  tx.method = method;
  tx.path = q < 0 ? path : path.slice(0, q);
  tx.query = q < 0 ? '' : path.slice(q + 1);
  tx.host = target;
  tx.headers = headers;
  tx.bodyLength = bodyLength;
  tx.httpVersion = '2';
  tx.latin1Head = true;
  out.status = 0;
  out.reason = '';
  out.expectContinue = expectContinue && bodyLength !== -1;
  return true;
}

function refuse(out: HeadRefusal, status: number, reason: string): false {
  out.status = status;
  out.reason = reason;
  return false;
}

function hasUpper(s: string): boolean {
  for (let i = 0; i < s.length; i++) { const ch = s.charCodeAt(i); if (ch >= 65 && ch <= 90) return true; }
  return false;
}

/** The host of an authority (no port, no brackets' contents changed), lower-case. */
export function hostname(authority: string): string {
  let end = authority.length;
  if (authority.charCodeAt(0) === 91 /* [ */) {
    const close = authority.indexOf(']');
    return (close > 0 ? authority.slice(1, close) : authority).toLowerCase();
  }
  const colon = authority.lastIndexOf(':');
  if (colon >= 0) end = colon;
  let h = authority.slice(0, end).toLowerCase();
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

/**
 * The response head for node:http2: names lower-cased, hop-by-hop and framing fields dropped,
 * repeated fields as arrays, the listener's own fields (HSTS) first and authoritative.
 */
export function responseHeaders(status: number, h: readonly string[], always: readonly string[], contentLength: number): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { ':status': status };
  for (let i = 0; i < always.length; i += 2) out[always[i]] = always[i + 1];
  for (let i = 0; i < h.length; i += 2) {
    let name = h[i];
    if (hasUpper(name)) name = name.toLowerCase();
    if (H2_RESPONSE_SKIP.has(name) || name.charCodeAt(0) === 58) continue;
    if (always.length !== 0 && name === 'strict-transport-security') continue;
    const value = h[i + 1];
    if (BAD_VALUE.test(value)) continue;
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[name] = [String(prev), value];
  }
  if (contentLength >= 0) out['content-length'] = contentLength;
  return out;
}

const BAD_VALUE = /[\r\n\0]/;

/** Trailer fields from the origin as node:http2 takes them (no pseudo-headers, no framing fields). */
export function trailerHeaders(h: readonly string[]): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i].toLowerCase();
    if (H2_RESPONSE_SKIP.has(name) || name.charCodeAt(0) === 58 || BAD_VALUE.test(h[i + 1])) continue;
    const prev = out[name];
    if (prev === undefined) out[name] = h[i + 1];
    else if (Array.isArray(prev)) prev.push(h[i + 1]);
    else out[name] = [String(prev), h[i + 1]];
  }
  return out;
}

/**
 * A head `translateRequest` refused, on either engine: the transaction gets what its access line and
 * event show (the method, a bounded path, version 2), the handler records the rejection, and the
 * stream is answered with the status and its reason.
 */
export function refuseHead(raw: readonly string[], r: HeadRefusal, tx: Transaction, handler: { rejected(tx: Transaction, status: number, reason: string): void }, io: ClientIO): void {
  tx.method = tx.method || pseudo(raw, ':method') || '<BADREQ>';
  tx.path = tx.path || pseudo(raw, ':path').slice(0, 120);
  tx.httpVersion = '2';
  proxyRefused(tx, r.status);
  handler.rejected(tx, r.status, r.reason);
  io.reply(r.status, null, `${STATUS_CODES[r.status] ?? 'Error'}: ${r.reason}\n`, false);
}

/** The value of pseudo-header `name` in a flat [name, value, …] list, '' when absent. */
export function pseudo(raw: readonly string[], name: string): string {
  for (let i = 0; i < raw.length; i += 2) if (raw[i] === name) return raw[i + 1];
  return '';
}

/** A stream's Transaction (or a connection-level record's) on either engine: listener, TLS, SNI, peer, version 2. */
export function http2Transaction(io: ClientIO, ctx: { readonly name: string; readonly tls: boolean; readonly clock: Clock }, sni: string | null, remote: Uint8Array): Transaction {
  const tx = new Transaction(io, ctx.clock.now());
  tx.listener = ctx.name;
  tx.tls = ctx.tls;
  tx.sni = sni;
  tx.remote = remote;
  tx.httpVersion = '2';
  tx.latin1Head = true;
  return tx;
}
