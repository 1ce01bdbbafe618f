// Strict HTTP/1.1 response parser for the upstream pool (h1pool.ts).
//
// Why our own parser instead of llhttp: we want every framing decision explicit and testable
// (smuggling-relevant cases are rejected, never "leniently" accepted), and a JS state machine
// avoids a C++ <-> JS crossing per callback. Rejected as protocol errors:
//   - a status line other than `HTTP/1.x SP 3DIGIT [SP reason]` followed by CRLF
//   - obs-fold (a header line starting with SP/HTAB), a bare CR or a bare LF anywhere in the head
//   - header names that are not tokens, whitespace before the colon, CTLs in values
//   - Content-Length together with Transfer-Encoding, differing or non-decimal Content-Length
//   - any Transfer-Encoding other than exactly `chunked` (also on HTTP/1.0)
//   - chunk-size garbage (non-hex, missing, > 12 hex digits), a missing CRLF after chunk data
//   - a head (or trailer block) larger than maxHeaderBytes, more than maxHeaderCount fields
//   - 101 Switching Protocols (no upgrade support on this path)
// 1xx other than 101 are skipped. HEAD responses and 204/304 carry no body.
// Body bytes are handed out as zero-copy subarrays of the socket's buffers.

/** Callbacks from the parser. Each returns false to stop parsing (pause or the exchange ended). */
export interface ResponseParserHandler {
  onParsedHead(status: number, headers: string[], keepAlive: boolean): boolean;
  onParsedBody(chunk: Buffer): boolean;
}

const S_HEAD = 0;
const S_BODY_CL = 1;
const S_BODY_EOF = 2;
const S_CHUNK_SIZE = 3;
const S_CHUNK_EXT = 4;
const S_CHUNK_SIZE_LF = 5;
const S_CHUNK_DATA = 6;
const S_CHUNK_DATA_CR = 7;
const S_CHUNK_DATA_LF = 8;
const S_TRAILER_LINE = 9;
const S_TRAILER_FIELD = 10;
const S_TRAILER_FIELD_LF = 11;
const S_TRAILER_END_LF = 12;
const S_DONE = 13;
const S_ERROR = 14;

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const COLON = 58;

/** RFC 9110 tchar. */
export const TCHAR = new Uint8Array(256);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  if (/[A-Za-z0-9!#$%&'*+\-.^_`|~]/.test(ch)) TCHAR[c] = 1;
}
/** field-value octets: VCHAR, obs-text, SP, HTAB (no CTL, no CR/LF/NUL). */
const VCHAR = new Uint8Array(256);
for (let c = 0; c < 256; c++) VCHAR[c] = (c === HTAB || (c >= 0x20 && c !== 0x7f)) ? 1 : 0;
/** hex digit value + 1 (0 = not hex). */
const HEX = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  if (c >= 48 && c <= 57) HEX[c] = c - 48 + 1;
  else if (c >= 97 && c <= 102) HEX[c] = c - 97 + 11;
  else if (c >= 65 && c <= 70) HEX[c] = c - 65 + 11;
}

/** Buffer#latin1Slice exists at runtime (Node 20) but not in @types/node; it skips toString()'s argument checks. */
interface Latin1Slicer { latin1Slice(start: number, end: number): string }

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
const EMPTY = Buffer.alloc(0);

export interface ResponseParserLimits {
  /** Largest head (status line + fields) or trailer block, bytes. Default 65536. */
  maxHeaderBytes: number;
  /** Most header fields in one head. Default 512. */
  maxHeaderCount: number;
}

export class ResponseParser {
  state = S_HEAD;
  /** Why the parser failed (state S_ERROR). */
  error = '';
  /** After a complete message: does the framing allow reusing the connection? */
  keepAlive = false;
  /** Bytes of response seen (head + body) for the current message. */
  bytesSeen = 0;
  private headAcc: Buffer | null = null;
  private isHeadRequest = false;
  private remaining = 0;
  private chunkDigits = 0;
  private trailerBytes = 0;
  /** Trailer block text collected so far (fields as sent, CRLF-separated); null when none. */
  private trailerText: string | null = null;
  /** Trailer fields of the last chunked response, [name, value, …] (names lower-case), or null. */
  trailers: string[] | null = null;
  private readonly handler: ResponseParserHandler;
  private readonly maxHeaderBytes: number;
  private readonly maxHeaderCount: number;

  constructor(handler: ResponseParserHandler, limits: ResponseParserLimits) {
    this.handler = handler;
    this.maxHeaderBytes = limits.maxHeaderBytes;
    this.maxHeaderCount = limits.maxHeaderCount;
  }

  /** Prepare for the response to a new request. */
  reset(isHeadRequest: boolean): void {
    this.state = S_HEAD;
    this.error = '';
    this.keepAlive = false;
    this.bytesSeen = 0;
    this.headAcc = null;
    this.isHeadRequest = isHeadRequest;
    this.remaining = 0;
    this.chunkDigits = 0;
    this.trailerBytes = 0;
    this.trailerText = null;
    this.trailers = null;
  }

  get done(): boolean { return this.state === S_DONE; }
  get failed(): boolean { return this.state === S_ERROR; }
  /** Response head delivered; the body is read until the connection closes. */
  get readsUntilEof(): boolean { return this.state === S_BODY_EOF; }
  /** True while no complete head has been parsed. */
  get inHead(): boolean { return this.state === S_HEAD; }

  /** The origin closed the connection: completes an EOF-delimited body, else returns false. */
  finishEof(): boolean {
    if (this.state === S_BODY_EOF) { this.state = S_DONE; return true; }
    return this.state === S_DONE;
  }

  /**
   * Feed bytes. Returns how many were consumed. Stops early when a handler callback returns false,
   * when the message is complete (done) or on error (failed).
   */
  execute(buf: Buffer): number {
    this.bytesSeen += buf.length;
    let pos = 0;
    const len = buf.length;
    while (true) {
      switch (this.state) {
        case S_HEAD: {
          if (pos === len) return pos;
          const r = this.takeHead(buf, pos);
          if (r < 0) return len; // need more bytes (all consumed into headAcc) or failed
          pos = r;
          if (this.state === S_HEAD) continue; // 1xx skipped: parse the next head
          // the handler's answer decides whether we go on into the body now
          if (!this.headContinue) return pos;
          continue;
        }
        case S_BODY_CL: {
          if (this.remaining === 0) { this.state = S_DONE; return pos; }
          if (pos === len) return pos;
          const n = Math.min(len - pos, this.remaining);
          this.remaining -= n;
          const chunk = (pos === 0 && n === len) ? buf : buf.subarray(pos, pos + n);
          pos += n;
          if (!this.handler.onParsedBody(chunk)) {
            // completion is reported on the next execute() so that it follows resume()
            return pos;
          }
          continue;
        }
        case S_BODY_EOF: {
          if (pos === len) return pos;
          const chunk = pos === 0 ? buf : buf.subarray(pos);
          pos = len;
          this.handler.onParsedBody(chunk);
          return pos;
        }
        case S_CHUNK_SIZE: {
          if (pos === len) return pos;
          const c = buf[pos];
          const h = HEX[c];
          if (h !== 0) {
            if (++this.chunkDigits > 12) return this.fail('chunk size too long', len);
            this.remaining = this.remaining * 16 + (h - 1);
            pos++;
            continue;
          }
          if (this.chunkDigits === 0) return this.fail('invalid chunk size', len);
          if (c === CR) { this.state = S_CHUNK_SIZE_LF; pos++; continue; }
          if (c === 59 /* ; */) { this.state = S_CHUNK_EXT; pos++; continue; }
          return this.fail('invalid chunk size', len);
        }
        case S_CHUNK_EXT: {
          while (pos < len) {
            const c = buf[pos];
            if (c === CR) break;
            if (VCHAR[c] === 0) return this.fail('invalid chunk extension', len);
            if (++this.trailerBytes > this.maxHeaderBytes) return this.fail('chunk extension too long', len);
            pos++;
          }
          if (pos === len) return pos;
          this.state = S_CHUNK_SIZE_LF;
          pos++;
          continue;
        }
        case S_CHUNK_SIZE_LF: {
          if (pos === len) return pos;
          if (buf[pos] !== LF) return this.fail('missing LF after chunk size', len);
          pos++;
          this.chunkDigits = 0;
          if (this.remaining === 0) { this.state = S_TRAILER_LINE; this.trailerBytes = 0; } else this.state = S_CHUNK_DATA;
          continue;
        }
        case S_CHUNK_DATA: {
          if (pos === len) return pos;
          const n = Math.min(len - pos, this.remaining);
          this.remaining -= n;
          const chunk = (pos === 0 && n === len) ? buf : buf.subarray(pos, pos + n);
          pos += n;
          if (this.remaining === 0) this.state = S_CHUNK_DATA_CR;
          if (!this.handler.onParsedBody(chunk)) return pos;
          continue;
        }
        case S_CHUNK_DATA_CR: {
          if (pos === len) return pos;
          if (buf[pos] !== CR) return this.fail('missing CRLF after chunk data', len);
          this.state = S_CHUNK_DATA_LF;
          pos++;
          continue;
        }
        case S_CHUNK_DATA_LF: {
          if (pos === len) return pos;
          if (buf[pos] !== LF) return this.fail('missing CRLF after chunk data', len);
          this.state = S_CHUNK_SIZE;
          this.trailerBytes = 0;
          pos++;
          continue;
        }
        case S_TRAILER_LINE: {
          // start of a trailer line: CR ends the message, otherwise a field name must follow
          if (pos === len) return pos;
          const c = buf[pos];
          if (c === CR) { this.state = S_TRAILER_END_LF; pos++; continue; }
          if (TCHAR[c] === 0) return this.fail('invalid trailer field', len);
          this.state = S_TRAILER_FIELD;
          this.remaining = 0; // reused: 0 = in name, 1 = in value
          continue;
        }
        case S_TRAILER_FIELD: {
          const start = pos;
          while (pos < len) {
            const c = buf[pos];
            if (++this.trailerBytes > this.maxHeaderBytes) return this.fail('trailer block too large', len);
            if (this.remaining === 0) {
              if (c === COLON) { this.remaining = 1; pos++; continue; }
              if (TCHAR[c] === 0) return this.fail('invalid trailer field name', len);
            } else {
              if (c === CR) break;
              if (VCHAR[c] === 0) return this.fail('invalid trailer field value', len);
            }
            pos++;
          }
          // Kept for an HTTP/2 client (bounded by maxHeaderBytes above); HTTP/1.1 clients get none.
          this.trailerText = (this.trailerText ?? '') + (buf as unknown as Latin1Slicer).latin1Slice(start, pos);
          if (pos === len) return pos;
          if (this.remaining === 0) return this.fail('invalid trailer field', len);
          this.trailerText += '\n';
          this.state = S_TRAILER_FIELD_LF;
          pos++;
          continue;
        }
        case S_TRAILER_FIELD_LF: {
          if (pos === len) return pos;
          if (buf[pos] !== LF) return this.fail('bare CR in trailer', len);
          this.remaining = 0;
          this.state = S_TRAILER_LINE;
          pos++;
          continue;
        }
        case S_TRAILER_END_LF: {
          if (pos === len) return pos;
          if (buf[pos] !== LF) return this.fail('bare CR after last chunk', len);
          pos++;
          this.state = S_DONE;
          if (this.trailerText !== null) this.trailers = splitTrailers(this.trailerText);
          return pos;
        }
        default:
          // S_DONE / S_ERROR: nothing more is consumed
          return pos;
      }
    }
  }

  private headContinue = true;

  private fail(msg: string, ret: number): number {
    this.state = S_ERROR;
    this.error = msg;
    return ret;
  }

  /**
   * Locate and parse one head starting at pos. Returns the position after it, or -1 when more bytes
   * are needed (they are kept) or the parser failed.
   */
  private takeHead(buf: Buffer, pos: number): number {
    let start: number;
    if (this.headAcc === null) {
      const end = buf.indexOf(CRLFCRLF, pos);
      if (end !== -1 && end + 4 - pos <= this.maxHeaderBytes) {
        this.parseHead(buf, pos, end + 2);
        return this.state === S_ERROR ? -1 : end + 4;
      }
      if (end !== -1) { this.fail('response head too large', 0); return -1; }
      // copy: the partial head outlives this socket buffer
      this.headAcc = Buffer.from(buf.subarray(pos));
      start = 0;
    } else {
      const prevLen = this.headAcc.length;
      this.headAcc = Buffer.concat([this.headAcc, pos === 0 ? buf : buf.subarray(pos)]);
      // the terminator may straddle the boundary: search from 3 bytes before the old end
      start = prevLen > 3 ? prevLen - 3 : 0;
    }
    const acc = this.headAcc;
    const end = acc.indexOf(CRLFCRLF, start);
    if (end === -1) {
      if (acc.length > this.maxHeaderBytes) { this.fail('response head too large', 0); return -1; }
      // fail early on a bare LF head (it would otherwise wait for the size limit or the timeout)
      if (hasBareLf(acc)) { this.fail('bare LF in response head', 0); return -1; }
      return -1;
    }
    if (end + 4 > this.maxHeaderBytes) { this.fail('response head too large', 0); return -1; }
    this.headAcc = null;
    this.parseHead(acc, 0, end + 2);
    if (this.state === S_ERROR) return -1;
    // bytes of this call's buffer that belong to the head
    const usedFromAcc = end + 4;
    const prevPart = acc.length - (buf.length - pos);
    return pos + (usedFromAcc - prevPart);
  }

  /** Parse [start, end) where end is just past the CRLF of the last field line. */
  private parseHead(b: Buffer, start: number, end: number): void {
    // status line
    if (end - start < 14 || b[start] !== 72 || b[start + 1] !== 84 || b[start + 2] !== 84 || b[start + 3] !== 80 ||
        b[start + 4] !== 47 || b[start + 5] !== 49 || b[start + 6] !== 46 || (b[start + 7] !== 49 && b[start + 7] !== 48) ||
        b[start + 8] !== SP) {
      this.fail('invalid status line', 0);
      return;
    }
    const http10 = b[start + 7] === 48;
    const d1 = b[start + 9] - 48, d2 = b[start + 10] - 48, d3 = b[start + 11] - 48;
    if (d1 < 1 || d1 > 9 || d2 < 0 || d2 > 9 || d3 < 0 || d3 > 9) { this.fail('invalid status code', 0); return; }
    const status = d1 * 100 + d2 * 10 + d3;
    let p = start + 12;
    if (b[p] === SP) {
      p++;
      while (b[p] !== CR) {
        if (VCHAR[b[p]] === 0) { this.fail('invalid reason phrase', 0); return; }
        p++;
      }
    } else if (b[p] !== CR) { this.fail('invalid status line', 0); return; }
    if (b[p + 1] !== LF) { this.fail('bare CR in status line', 0); return; }
    p += 2;

    const headers: string[] = [];
    let contentLength = -1;
    let chunked = false;
    let teSeen = false;
    let connClose = false;
    let connKeepAlive = false;
    let count = 0;
    while (p < end) {
      const c0 = b[p];
      if (c0 === SP || c0 === HTAB) { this.fail('obs-fold in response head', 0); return; }
      const ns = p;
      while (TCHAR[b[p]] === 1) p++;
      if (p === ns) { this.fail('invalid header name', 0); return; }
      if (b[p] !== COLON) { this.fail(b[p] === SP || b[p] === HTAB ? 'whitespace before colon' : 'invalid header name', 0); return; }
      const ne = p;
      p++;
      while (b[p] === SP || b[p] === HTAB) p++;
      const vs = p;
      while (VCHAR[b[p]] === 1) p++;
      if (b[p] !== CR || b[p + 1] !== LF) { this.fail('invalid header value', 0); return; }
      let ve = p;
      while (ve > vs && (b[ve - 1] === SP || b[ve - 1] === HTAB)) ve--;
      p += 2;
      if (++count > this.maxHeaderCount) { this.fail('too many header fields', 0); return; }
      const name = knownName(b, ns, ne) ?? (b as unknown as Latin1Slicer).latin1Slice(ns, ne).toLowerCase();
      const value = (b as unknown as Latin1Slicer).latin1Slice(vs, ve);
      headers.push(name, value);
      switch (ne - ns) {
        case 14:
          if (name === 'content-length') {
            const n = parseContentLength(b, vs, ve);
            if (n < 0) { this.fail('invalid content-length', 0); return; }
            if (contentLength !== -1 && contentLength !== n) { this.fail('differing content-length values', 0); return; }
            contentLength = n;
          }
          break;
        case 17:
          if (name === 'transfer-encoding') {
            if (teSeen || value.toLowerCase() !== 'chunked') { this.fail('unsupported transfer-encoding', 0); return; }
            teSeen = true;
            chunked = true;
          }
          break;
        case 10:
          if (name === 'connection') {
            const v = value.toLowerCase();
            if (v === 'close') connClose = true;
            else if (v === 'keep-alive') connKeepAlive = true;
            else if (v.length > 0) {
              for (const tok of v.split(',')) {
                const t = tok.trim();
                if (t === 'close') connClose = true;
                else if (t === 'keep-alive') connKeepAlive = true;
              }
            }
          }
          break;
        default:
          break;
      }
    }

    if (status < 200) {
      if (status === 101) { this.fail('unexpected 101 Switching Protocols', 0); return; }
      // informational: skip, the final response follows
      return;
    }
    if (chunked && contentLength !== -1) { this.fail('both content-length and transfer-encoding', 0); return; }
    if (chunked && http10) { this.fail('transfer-encoding in an HTTP/1.0 response', 0); return; }
    this.keepAlive = !connClose && (!http10 || connKeepAlive);
    if (this.isHeadRequest || status === 204 || status === 304) {
      this.state = S_BODY_CL;
      this.remaining = 0;
    } else if (chunked) {
      this.state = S_CHUNK_SIZE;
      this.remaining = 0;
      this.chunkDigits = 0;
      this.trailerBytes = 0;
    } else if (contentLength !== -1) {
      this.state = S_BODY_CL;
      this.remaining = contentLength;
    } else {
      this.state = S_BODY_EOF;
      this.keepAlive = false;
    }
    this.headContinue = this.handler.onParsedHead(status, headers, this.keepAlive);
  }
}

// Common response header names, matched case-insensitively on the bytes and returned as constant
// lower-case strings: no slice and no toLowerCase per header, and the strings' hashes stay cached
// for the Set lookups downstream (hop-by-hop filters).
const KNOWN_NAMES = ['content-type', 'content-length', 'date', 'server', 'connection', 'set-cookie', 'cache-control',
  'last-modified', 'etag', 'transfer-encoding', 'location', 'expires', 'vary', 'content-encoding', 'accept-ranges',
  'keep-alive', 'age', 'pragma', 'x-frame-options', 'x-content-type-options', 'strict-transport-security',
  'content-security-policy', 'access-control-allow-origin', 'content-disposition', 'content-language', 'link'];
const KNOWN_BY_LENGTH: { name: string; codes: Uint8Array }[][] = [];
for (const name of KNOWN_NAMES) {
  (KNOWN_BY_LENGTH[name.length] ??= []).push({ name, codes: Uint8Array.from(name, (c) => c.charCodeAt(0)) });
}

/** The constant lower-case name for b[ns, ne) when it is a common header (a token: | 0x20 folds letters only). */
function knownName(b: Buffer, ns: number, ne: number): string | null {
  const list = KNOWN_BY_LENGTH[ne - ns];
  if (list === undefined) return null;
  for (let k = 0; k < list.length; k++) {
    const codes = list[k].codes;
    let i = 0;
    while (i < codes.length && (b[ns + i] | 0x20) === codes[i]) i++;
    if (i === codes.length) return list[k].name;
  }
  return null;
}

/** 1*DIGIT, or a list of identical 1*DIGIT values ("5, 5"). Returns -1 when invalid. */
function parseContentLength(b: Buffer, s: number, e: number): number {
  let result = -1;
  let p = s;
  while (true) {
    let n = 0;
    let digits = 0;
    while (p < e && b[p] >= 48 && b[p] <= 57) {
      if (++digits > 15) return -1;
      n = n * 10 + (b[p] - 48);
      p++;
    }
    if (digits === 0) return -1;
    if (result !== -1 && result !== n) return -1;
    result = n;
    if (p === e) return result;
    while (p < e && (b[p] === SP || b[p] === HTAB)) p++;
    if (b[p] !== 44 /* , */) return -1;
    p++;
    while (p < e && (b[p] === SP || b[p] === HTAB)) p++;
  }
}

function hasBareLf(b: Buffer): boolean {
  let i = b.indexOf(LF);
  while (i !== -1) {
    if (i === 0 || b[i - 1] !== CR) return true;
    i = b.indexOf(LF, i + 1);
  }
  return false;
}

export { EMPTY as EMPTY_BUFFER };

/** "name: value\n…" (as validated by the parser) → [name, value, …] with lower-case names and trimmed values. */
function splitTrailers(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const c = line.indexOf(':');
    if (c <= 0) continue;
    out.push(line.slice(0, c).toLowerCase(), line.slice(c + 1).trim());
  }
  return out;
}
