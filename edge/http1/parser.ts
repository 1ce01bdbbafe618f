// Strict RFC 9112 request-head parser and chunked-body decoder, on Buffers.
//
// What it accepts (docs/http-conformance.md has the row-by-row table):
// * request-line = method SP request-target SP HTTP-version CRLF, single spaces, nothing else;
//   methods are upper-case tokens ([A-Z0-9_-], like nginx: a lower-case `get` would slip past a
//   `http.method == "GET"` rule and reach origins that fold case); CONNECT → 405.
// * targets: origin-form; absolute-form (http/https, no userinfo: the authority becomes the host, a
//   differing Host header is a 400); asterisk-form for OPTIONS only. No fragment, no byte outside
//   0x21–0x7E.
// * versions HTTP/1.0 and HTTP/1.1 (HTTP/1.2–1.9 are read as 1.1, RFC 9110 §2.5); HTTP/0.9 (no
//   version) is a 400, a major version other than 1 is a 505.
// * header lines: token ":" OWS value OWS CRLF; CRLF only (a bare LF or CR is a 400), no obs-fold,
//   no whitespace before the colon, values without NUL/CTL/DEL (obs-text 0x80–0xFF is kept, as latin1).
// * framing: one Content-Length (1–15 decimal digits) or one Transfer-Encoding whose only coding is
//   `chunked` (another coding → 501); both, or a repeated one → 400; Transfer-Encoding in an
//   HTTP/1.0 request → 400 (RFC 9112 §6.1).
// The head is scanned as bytes arrive (HeadScanner), so a malformed line is refused as soon as it is
// seen, not when the head deadline fires; the full parse runs once, on the complete head.
import type { RequestLimits } from '../config/normalize.js';

declare global {
  interface Buffer {
    /** Node's latin1 decoder without toString()'s argument dispatch (internal, stable since Node 0.x). */
    latin1Slice(start?: number, end?: number): string;
  }
}

/** Why a head was refused: the status to answer and a short reason for logs and events. */
export interface HeadError { status: number; reason: string }

/** tchar (RFC 9110 §5.6.2). */
const TCHAR = table("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
/** Method characters we accept: upper-case letters, digits, '-' and '_' (a subset of tchar). */
const METHOD_CHAR = table('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_');
/** request-target bytes: VCHAR without '#'. */
const TARGET_CHAR = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) TARGET_CHAR[c] = 1;
TARGET_CHAR[0x23] = 0;
/** field-value bytes: HTAB, SP, VCHAR, obs-text. */
const VALUE_CHAR = new Uint8Array(256);
VALUE_CHAR[9] = 1;
for (let c = 0x20; c <= 0x7e; c++) VALUE_CHAR[c] = 1;
for (let c = 0x80; c <= 0xff; c++) VALUE_CHAR[c] = 1;
const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[48 + c] = c;
for (let c = 0; c < 6; c++) { HEX[65 + c] = 10 + c; HEX[97 + c] = 10 + c; }

function table(chars: string): Uint8Array {
  const t = new Uint8Array(256);
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1;
  return t;
}

const CR = 13, LF = 10, SP = 32, HTAB = 9, COLON = 58;

/** Longest method we accept (nginx: 32 is plenty; longer is a scan, not a request). */
const MAX_METHOD = 32;
/** Empty lines before a request line that are skipped (RFC 9112 §2.2: clients may send a stray CRLF after a body). */
const MAX_LEADING_CRLF = 8;

/**
 * Finds the end of a request head as bytes arrive, checking line structure on the way: bare CR, bare
 * LF, NUL, an impossible method byte, an over-long line or head are errors at once. Keeps its
 * position between calls, so a head trickling in byte by byte is scanned once (no quadratic rescans).
 */
export class HeadScanner {
  /** Offset (from the head's start) scanned so far. */
  private pos = 0;
  /** Offset where the current line starts. */
  private lineStart = 0;
  private line = 0;
  /** Offset where the request line starts (after skipped empty lines). */
  start = 0;
  private skipped = 0;
  private inMethod = true;
  error: HeadError | null = null;

  reset(): void {
    this.pos = 0; this.lineStart = 0; this.line = 0; this.start = 0; this.skipped = 0; this.inMethod = true; this.error = null;
  }

  /** True when nothing but skipped empty lines has been seen. */
  get empty(): boolean { return this.pos === this.start; }

  /**
   * Scans buf[0..len). Returns the length of the complete head (through the final CRLF CRLF), 0 when
   * more bytes are needed, -1 on an error (this.error says which).
   */
  scan(buf: Buffer, len: number, limits: RequestLimits): number {
    let p = this.pos;
    while (p < len) {
      const c = buf[p];
      if (c === CR) {
        if (p + 1 >= len) break; // need the next byte to know it is CRLF
        if (buf[p + 1] !== LF) return this.fail(400, 'bare CR in the request head');
        if (p === this.lineStart) {
          // Empty line: before the request line it is skipped, after it the head ends.
          if (this.line === 0) {
            if (++this.skipped > MAX_LEADING_CRLF) return this.fail(400, 'empty lines instead of a request line');
            p += 2;
            this.lineStart = p;
            this.start = p;
            continue;
          }
          this.pos = p + 2;
          return p + 2;
        }
        if (this.line === 0 && p - this.lineStart > limits.maxUrl + MAX_METHOD + 16) return this.fail(414, 'request line too long');
        this.line++;
        this.inMethod = false;
        p += 2;
        this.lineStart = p;
        continue;
      }
      if (c === LF) return this.fail(400, 'bare LF in the request head (lines end with CRLF)');
      if (c === 0) return this.fail(400, 'NUL byte in the request head');
      if (this.inMethod) {
        if (c === SP) this.inMethod = false;
        else if (METHOD_CHAR[c] === 0 || p - this.lineStart >= MAX_METHOD) {
          // A TLS ClientHello, an HTTP/2 preface or a lower-case method is refused on its first byte.
          return this.fail(400, c < 0x20 || c > 0x7e ? 'not an HTTP/1.x request' : 'invalid method');
        }
      }
      p++;
    }
    this.pos = p;
    if (this.line === 0 && p - this.lineStart > limits.maxUrl + MAX_METHOD + 16) return this.fail(414, 'request line too long');
    if (p - this.start > limits.maxHeaderBytes + limits.maxUrl + MAX_METHOD + 16) return this.fail(431, 'request header block too large');
    return 0;
  }

  private fail(status: number, reason: string): number {
    this.error = { status, reason };
    return -1;
  }
}

/** A parsed request head. One per connection, refilled for each request. */
export class RequestHead {
  method = '';
  /** Path (origin-form), '*' (asterisk-form); without the query. */
  path = '';
  query = '';
  /** 10 or 11. */
  version = 11;
  /** Flat [name, value, …], lower-case names, client order. */
  headers: string[] = [];
  host = '';
  /** The authority of an absolute-form target, '' otherwise. */
  authority = '';
  /** -1 no body, -2 chunked, ≥ 0 Content-Length. */
  bodyLength = -1;
  /** Connection: close (1.1) or the absence of keep-alive (1.0). */
  close = false;
  /** Connection: upgrade + Upgrade: websocket. */
  websocket = false;
  expectContinue = false;
  userAgent = '';
  cookie = '';
  xff: string | undefined = undefined;
  requestId = '';
  forwardedProto = '';
  wsKey = '';
  wsVersion = '';
  wsProtocols = '';
  headerBytes = 0;

  reset(): void {
    this.method = ''; this.path = ''; this.query = ''; this.version = 11; this.headers = []; this.host = ''; this.authority = '';
    this.bodyLength = -1; this.close = false; this.websocket = false; this.expectContinue = false; this.userAgent = ''; this.cookie = '';
    this.xff = undefined; this.requestId = ''; this.forwardedProto = ''; this.wsKey = ''; this.wsVersion = ''; this.wsProtocols = '';
    this.headerBytes = 0;
  }
}

// Interned lower-case names of the headers most requests carry: no toLowerCase() allocation for them.
const KNOWN_NAMES = ['host', 'user-agent', 'accept', 'accept-encoding', 'accept-language', 'connection', 'cookie',
  'content-length', 'content-type', 'transfer-encoding', 'referer', 'origin', 'cache-control', 'pragma', 'upgrade',
  'x-forwarded-for', 'x-forwarded-proto', 'x-request-id', 'authorization', 'if-none-match', 'if-modified-since',
  'sec-fetch-site', 'sec-fetch-mode', 'sec-fetch-dest', 'sec-websocket-key', 'sec-websocket-version',
  'sec-websocket-protocol', 'sec-websocket-extensions', 'expect', 'te', 'range', 'dnt', 'priority'];
const KNOWN_BY_LENGTH: Buffer[][] = [];
const KNOWN_STRING_BY_LENGTH: string[][] = [];
for (const n of KNOWN_NAMES) {
  (KNOWN_BY_LENGTH[n.length] ??= []).push(Buffer.from(n, 'latin1'));
  (KNOWN_STRING_BY_LENGTH[n.length] ??= []).push(n);
}

/** The lower-case name of buf[s..e) (a token): an interned string for common names. */
function headerName(buf: Buffer, s: number, e: number): string {
  const len = e - s;
  const known = KNOWN_BY_LENGTH[len];
  if (known !== undefined) {
    outer: for (let k = 0; k < known.length; k++) {
      const n = known[k];
      for (let i = 0; i < len; i++) if ((buf[s + i] | 0x20) !== n[i] && !(n[i] === 45 && buf[s + i] === 45)) continue outer;
      return KNOWN_STRING_BY_LENGTH[len][k];
    }
  }
  return buf.latin1Slice(s, e).toLowerCase();
}

function fail(out: HeadError, status: number, reason: string): false {
  out.status = status;
  out.reason = reason;
  return false;
}

const DECIMAL_MAX_DIGITS = 15;

/**
 * Parses a complete head buf[start..end) (end is just past the CRLF CRLF) into `h`. Returns true, or
 * false with `err` filled. `defaultHost` stands in for a missing Host in an HTTP/1.0 request.
 */
export function parseHead(buf: Buffer, start: number, end: number, limits: RequestLimits, h: RequestHead, err: HeadError, defaultHost: string): boolean {
  h.reset();
  // ---- request line ----
  let p = start;
  // The method ends at its SP on the first line: the scan stops at any other byte (a CRLF here is a
  // request line without a target, not the end of a method spanning lines).
  while (p < end && METHOD_CHAR[buf[p]] === 1) p++;
  const mEnd = p;
  if (mEnd === start || p >= end || buf[p] !== SP) return fail(err, 400, 'malformed request line');
  h.method = methodString(buf, start, mEnd);
  p++;
  const tStart = p;
  while (p < end && TARGET_CHAR[buf[p]] === 1) p++;
  const tEnd = p;
  if (tEnd === tStart) return fail(err, 400, 'malformed request line');
  if (buf[p] === CR) return fail(err, 400, 'HTTP/0.9 request (no version)');
  if (buf[p] !== SP) {
    return fail(err, 400, buf[p] === 0x23 ? 'request target has a fragment' : 'request target has a space, a control or a non-ASCII character');
  }
  p++;
  // HTTP-version = "HTTP/" DIGIT "." DIGIT, then CRLF
  if (end - p < 10 || buf[p] !== 72 || buf[p + 1] !== 84 || buf[p + 2] !== 84 || buf[p + 3] !== 80 || buf[p + 4] !== 47
    || buf[p + 5] < 48 || buf[p + 5] > 57 || buf[p + 6] !== 46 || buf[p + 7] < 48 || buf[p + 7] > 57 || buf[p + 8] !== CR) {
    return fail(err, 400, 'malformed HTTP version');
  }
  const major = buf[p + 5] - 48, minor = buf[p + 7] - 48;
  if (major !== 1) return fail(err, 505, `HTTP/${major}.${minor} is not supported`);
  h.version = minor === 0 ? 10 : 11;
  p += 10; // past CRLF
  if (h.method === 'CONNECT') return fail(err, 405, 'CONNECT is not served');
  if (tEnd - tStart > limits.maxUrl) return fail(err, 414, 'request target too long');
  if (!parseTarget(buf, tStart, tEnd, h, err)) return false;

  // ---- header lines ----
  let hostCount = 0, clCount = 0, teCount = 0;
  let clValue = '', teValue = '', connection = '', upgrade = '', expect = '';
  const headers = h.headers;
  const headEnd = end - 2; // the final empty line's CRLF
  while (p < headEnd) {
    const ls = p;
    const c0 = buf[p];
    if (c0 === SP || c0 === HTAB) return fail(err, 400, 'obs-fold (a header line starting with whitespace)');
    while (p < headEnd && TCHAR[buf[p]] === 1) p++;
    const ne = p;
    if (buf[p] !== COLON) {
      if (ne === ls) return fail(err, 400, 'header line without a field name');
      if (buf[p] === SP || buf[p] === HTAB) return fail(err, 400, 'whitespace between a field name and its colon');
      if (buf[p] === CR) return fail(err, 400, 'header line without a colon');
      return fail(err, 400, 'invalid character in a field name');
    }
    if (ne === ls) return fail(err, 400, 'header line without a field name');
    p++;
    while (buf[p] === SP || buf[p] === HTAB) p++;
    const vs = p;
    while (VALUE_CHAR[buf[p]] === 1) p++;
    if (buf[p] !== CR) return fail(err, 400, 'control character in a header value');
    let ve = p;
    while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HTAB)) ve--;
    p += 2; // CRLF (the scanner checked every CR is followed by LF)
    if (headers.length >= limits.maxHeaders * 2) return fail(err, 431, 'too many header fields');
    const name = headerName(buf, ls, ne);
    const value = ve === vs ? '' : buf.latin1Slice(vs, ve);
    headers.push(name, value);
    h.headerBytes += p - ls;
    switch (name) {
      case 'host': hostCount++; h.host = value; break;
      case 'content-length': clCount++; clValue = value; break;
      case 'transfer-encoding': teCount++; teValue = value; break;
      case 'connection': connection = connection === '' ? value : `${connection},${value}`; break;
      case 'upgrade': upgrade = value; break;
      case 'expect': expect = value; break;
      case 'user-agent': h.userAgent = value; break;
      case 'cookie': h.cookie = h.cookie === '' ? value : `${h.cookie}; ${value}`; break;
      case 'x-forwarded-for': h.xff = h.xff === undefined ? value : `${h.xff}, ${value}`; break;
      case 'x-request-id': h.requestId = value; break;
      case 'x-forwarded-proto': h.forwardedProto = value; break;
      case 'sec-websocket-key': h.wsKey = value; break;
      case 'sec-websocket-version': h.wsVersion = value; break;
      case 'sec-websocket-protocol': h.wsProtocols = h.wsProtocols === '' ? value : `${h.wsProtocols}, ${value}`; break;
    }
  }
  if (h.headerBytes > limits.maxHeaderBytes) return fail(err, 431, 'request header block too large');

  // ---- Host ----
  if (hostCount > 1) return fail(err, 400, 'several Host headers');
  if (hostCount === 0 && h.version === 11) return fail(err, 400, 'missing Host header'); // RFC 9112 §3.2: even with an absolute-form target
  if (h.authority !== '') {
    if (hostCount === 1 && h.host.toLowerCase() !== h.authority.toLowerCase()) return fail(err, 400, 'Host differs from the absolute-form target');
    h.host = h.authority;
  } else if (hostCount === 0) {
    if (h.version === 11) return fail(err, 400, 'missing Host header');
    h.host = defaultHost;
  } else if (h.host === '') return fail(err, 400, 'empty Host header');
  if (!isValidHost(h.host)) return fail(err, 400, 'Host is not a valid host[:port]');

  // ---- framing (RFC 9112 §6) ----
  if (teCount > 0) {
    if (h.version === 10) return fail(err, 400, 'Transfer-Encoding in an HTTP/1.0 request');
    if (clCount > 0) return fail(err, 400, 'Content-Length with Transfer-Encoding');
    if (teCount > 1) return fail(err, 400, 'several Transfer-Encoding headers');
    const te = teValue.toLowerCase();
    if (te !== 'chunked') {
      const codings = te.split(',').map((s) => s.trim());
      if (codings.some((s) => s === '')) return fail(err, 400, 'malformed Transfer-Encoding');
      if (codings.filter((s) => s === 'chunked').length > 1) return fail(err, 400, 'chunked applied twice');
      return fail(err, 501, `transfer coding "${teValue.slice(0, 40)}" is not implemented (only chunked)`);
    }
    h.bodyLength = -2;
  } else if (clCount > 0) {
    if (clCount > 1) return fail(err, 400, 'several Content-Length headers');
    const n = clValue.length;
    if (n === 0 || n > DECIMAL_MAX_DIGITS) return fail(err, 400, 'Content-Length is not a plain decimal');
    for (let i = 0; i < n; i++) { const c = clValue.charCodeAt(i); if (c < 48 || c > 57) return fail(err, 400, 'Content-Length is not a plain decimal'); }
    h.bodyLength = Number(clValue);
    if (h.bodyLength > limits.maxBody) return fail(err, 413, 'request body larger than limits.request.max_body');
  }

  // ---- connection management, upgrade, expect ----
  let keepAlive = false, close = false, upgradeToken = false;
  if (connection !== '') {
    const tokens = connection.toLowerCase().split(',');
    for (const t of tokens) {
      const tok = t.trim();
      if (tok === 'close') close = true;
      else if (tok === 'keep-alive') keepAlive = true;
      else if (tok === 'upgrade') upgradeToken = true;
    }
  }
  h.close = close || (h.version === 10 && !keepAlive);
  h.websocket = upgradeToken && upgrade.toLowerCase() === 'websocket' && h.method === 'GET' && h.version === 11;
  if (expect !== '') {
    if (expect.toLowerCase() !== '100-continue') return fail(err, 417, 'Expect other than 100-continue');
    h.expectContinue = h.version === 11 && h.bodyLength !== -1 && h.bodyLength !== 0;
  }
  return true;
}

// Interned method strings: no allocation for the methods nearly every request uses.
const METHODS = ['GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'CONNECT'];
const METHOD_BYTES = METHODS.map((m) => Buffer.from(m, 'latin1'));
function methodString(buf: Buffer, s: number, e: number): string {
  const len = e - s;
  outer: for (let k = 0; k < METHOD_BYTES.length; k++) {
    const m = METHOD_BYTES[k];
    if (m.length !== len) continue;
    for (let i = 0; i < len; i++) if (buf[s + i] !== m[i]) continue outer;
    return METHODS[k];
  }
  return buf.latin1Slice(s, e);
}

/** Splits the target into path, query and (absolute-form) authority. */
function parseTarget(buf: Buffer, s: number, e: number, h: RequestHead, err: HeadError): boolean {
  const c0 = buf[s];
  if (c0 === 47 /* / */) {
    splitPathQuery(buf, s, e, h);
    return true;
  }
  if (c0 === 42 /* * */) {
    if (e - s !== 1 || h.method !== 'OPTIONS') return fail(err, 400, 'asterisk-form target is only for OPTIONS');
    h.path = '*';
    return true;
  }
  // absolute-form: "http://" / "https://" authority [path-abempty] [ "?" query ]
  const lower = buf.latin1Slice(s, Math.min(e, s + 8)).toLowerCase();
  let a: number;
  if (lower.startsWith('http://')) a = s + 7;
  else if (lower.startsWith('https://')) a = s + 8;
  else return fail(err, 400, 'request target is not origin-form, absolute-form or *');
  let q = a;
  while (q < e && buf[q] !== 47 && buf[q] !== 63) q++;
  const authority = buf.latin1Slice(a, q);
  if (authority.includes('@')) return fail(err, 400, 'userinfo in the request target');
  if (authority === '' || !isValidHost(authority)) return fail(err, 400, 'invalid authority in the request target');
  h.authority = authority;
  if (q === e) { h.path = '/'; return true; }
  if (buf[q] === 63) { h.path = '/'; h.query = buf.latin1Slice(q + 1, e); return true; }
  splitPathQuery(buf, q, e, h);
  return true;
}

function splitPathQuery(buf: Buffer, s: number, e: number, h: RequestHead): void {
  const q = buf.indexOf(63 /* ? */, s);
  if (q < 0 || q >= e) { h.path = buf.latin1Slice(s, e); h.query = ''; return; }
  h.path = buf.latin1Slice(s, q);
  h.query = buf.latin1Slice(q + 1, e);
}

// Host = uri-host [":" port] (RFC 3986 reg-name or IP literal): no '@', '/', spaces or controls.
const REG_NAME_CHAR = table("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~!$&'()*+,;=%-");
const IP_LITERAL_CHAR = table('0123456789ABCDEFabcdef:.');

/** reg-name (1+ chars) or "[" IP-literal chars "]", then optionally ":" and 1 to 5 digits. */
export function isValidHost(h: string): boolean {
  const n = h.length;
  let i = 0;
  if (n > 0 && h.charCodeAt(0) === 91 /* [ */) {
    i = 1;
    while (i < n) { const c = h.charCodeAt(i); if (c > 127 || IP_LITERAL_CHAR[c] === 0) break; i++; }
    if (i === 1 || i === n || h.charCodeAt(i) !== 93 /* ] */) return false;
    i++;
  } else {
    while (i < n) { const c = h.charCodeAt(i); if (c > 127 || REG_NAME_CHAR[c] === 0) break; i++; }
    if (i === 0) return false;
  }
  if (i === n) return true;
  if (h.charCodeAt(i) !== 58 /* : */ || n - i - 1 < 1 || n - i - 1 > 5) return false;
  for (let k = i + 1; k < n; k++) { const c = h.charCodeAt(k); if (c < 48 || c > 57) return false; }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Chunked bodies (RFC 9112 §7.1), strictly: hex size with no whitespace or sign, extensions
// syntax-checked (then dropped: the upstream client re-frames the body), CRLF only, data exactly as
// long as announced, trailer fields parsed (header syntax) and dropped.

const enum CS { Size, SizeLf, Ext, Data, DataCr, DataLf, Trailer, TrailerLf, LastLf, Done }
// Extension sub-states (chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ( token / quoted-string ) ] )).
const enum XS { AfterSize, NamePre, NameIn, AfterName, ValuePre, ValueToken, Quoted, QuotedEscape, AfterValue }

/** Receives decoded body bytes (views into the input buffer: copy to keep beyond the call). */
export interface ChunkSink {
  chunkData(buf: Buffer, start: number, end: number): void;
}

export class ChunkedDecoder {
  private state = CS.Size;
  private x = XS.AfterSize;
  private size = 0;
  private digits = 0;
  private remaining = 0;
  private trailerBytes = 0;
  private lineLen = 0;
  private trailerLineStart = true;
  private trailerColon = false;
  total = 0;
  error = '';

  constructor(private readonly maxTrailerBytes: number) {}

  get done(): boolean { return this.state === CS.Done; }

  /**
   * Decodes buf[start..end). Returns the offset where decoding stopped (the body's end when done, or
   * `end`), or -1 on a framing error (this.error says which).
   */
  feed(buf: Buffer, start: number, end: number, sink: ChunkSink): number {
    let p = start;
    while (p < end) {
      const c = buf[p];
      switch (this.state) {
        case CS.Size: {
          const v = HEX[c];
          if (v >= 0) {
            if (++this.digits > 13) return this.fail('chunk size too large');
            this.size = this.size * 16 + v;
            p++;
            continue;
          }
          if (this.digits === 0) return this.fail(c === SP || c === HTAB ? 'whitespace before a chunk size' : 'invalid chunk size');
          if (c === CR) { this.state = CS.SizeLf; p++; continue; }
          if (c === 59 /* ; */ || c === SP || c === HTAB) { this.state = CS.Ext; this.x = XS.AfterSize; continue; }
          return this.fail('invalid character after a chunk size');
        }
        case CS.Ext: {
          if (++this.lineLen > 4096) return this.fail('chunk extension too long');
          if (c === CR) {
            const x = this.x;
            if (x !== XS.NameIn && x !== XS.AfterName && x !== XS.ValueToken && x !== XS.AfterValue) return this.fail('incomplete chunk extension');
            this.state = CS.SizeLf; p++; continue;
          }
          if (!this.extByte(c)) return this.fail('malformed chunk extension');
          p++;
          continue;
        }
        case CS.SizeLf: {
          if (c !== LF) return this.fail('chunk size line not ended by CRLF');
          p++;
          this.lineLen = 0;
          this.digits = 0;
          if (this.size === 0) { this.state = CS.Trailer; this.trailerLineStart = true; continue; }
          this.remaining = this.size;
          this.total += this.size;
          this.size = 0;
          this.state = CS.Data;
          continue;
        }
        case CS.Data: {
          const n = Math.min(this.remaining, end - p);
          sink.chunkData(buf, p, p + n);
          this.remaining -= n;
          p += n;
          if (this.remaining === 0) this.state = CS.DataCr;
          continue;
        }
        case CS.DataCr:
          if (c !== CR) return this.fail('chunk data longer than its size (or not followed by CRLF)');
          this.state = CS.DataLf; p++; continue;
        case CS.DataLf:
          if (c !== LF) return this.fail('bare CR after chunk data');
          this.state = CS.Size; this.x = XS.AfterSize; p++; continue;
        case CS.Trailer: {
          // trailer-section = *( field-line CRLF ) CRLF; parsed for syntax, then dropped.
          if (++this.trailerBytes > this.maxTrailerBytes) return this.fail('trailer section too large');
          if (c === CR) {
            if (this.trailerLineStart) { this.state = CS.LastLf; p++; continue; }
            if (!this.trailerColon) return this.fail('trailer line without a colon');
            this.state = CS.TrailerLf; p++; continue;
          }
          if (this.trailerLineStart) {
            if (TCHAR[c] !== 1) return this.fail('malformed trailer field');
            this.trailerLineStart = false;
            this.trailerColon = false;
          } else if (!this.trailerColon) {
            if (c === COLON) this.trailerColon = true;
            else if (TCHAR[c] !== 1) return this.fail('malformed trailer field name');
          } else if (VALUE_CHAR[c] !== 1) return this.fail('control character in a trailer value');
          p++;
          continue;
        }
        case CS.TrailerLf:
          if (c !== LF) return this.fail('bare CR in the trailer section');
          this.state = CS.Trailer; this.trailerLineStart = true; p++; continue;
        case CS.LastLf:
          if (c !== LF) return this.fail('last chunk not ended by CRLF');
          this.state = CS.Done;
          return p + 1;
        case CS.Done:
          return p;
      }
    }
    return p;
  }

  /** One byte of a chunk extension (the grammar above); false when it cannot be part of one. */
  private extByte(c: number): boolean {
    const ws = c === SP || c === HTAB;
    switch (this.x) {
      case XS.AfterSize:
      case XS.AfterValue:
        if (ws) return true;
        if (c === 59) { this.x = XS.NamePre; return true; }
        return false;
      case XS.NamePre:
        if (ws) return true;
        if (TCHAR[c] === 1) { this.x = XS.NameIn; return true; }
        return false;
      case XS.NameIn:
      case XS.AfterName:
        if (TCHAR[c] === 1 && this.x === XS.NameIn) return true;
        if (ws) { this.x = XS.AfterName; return true; }
        if (c === 61 /* = */) { this.x = XS.ValuePre; return true; }
        if (c === 59) { this.x = XS.NamePre; return true; }
        return false;
      case XS.ValuePre:
        if (ws) return true;
        if (c === 34 /* " */) { this.x = XS.Quoted; return true; }
        if (TCHAR[c] === 1) { this.x = XS.ValueToken; return true; }
        return false;
      case XS.ValueToken:
        if (TCHAR[c] === 1) return true;
        if (ws) { this.x = XS.AfterValue; return true; }
        if (c === 59) { this.x = XS.NamePre; return true; }
        return false;
      case XS.Quoted:
        if (c === 34) { this.x = XS.AfterValue; return true; }
        if (c === 92 /* \\ */) { this.x = XS.QuotedEscape; return true; }
        return c === HTAB || (c >= 0x20 && c !== 0x7f);
      case XS.QuotedEscape:
        this.x = XS.Quoted;
        return c === HTAB || (c >= 0x20 && c !== 0x7f);
    }
    return false;
  }

  private fail(reason: string): number {
    this.error = reason;
    return -1;
  }
}
