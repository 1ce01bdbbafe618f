// One JSON line per request, in pino's line format, written asynchronously in large batches
// (edge/observe/logdest.ts): nothing synchronous on the request path. The line has a fixed shape (HAProxy's
// timers and termination state), never a header map.
//
// Why not logger.info(): pino's generic serialiser (key loop, string concatenation, then joining and
// flattening the lines for the batch) cost ≈ 3.5 µs per request — 13 % of the proxy's CPU on the
// small-GET benchmark. The shape is fixed, so the line is encoded field by field straight into a
// Buffer slab: no intermediate strings, no garbage. The bytes are exactly what pino writes for
// `pino({ base: { node, log: 'access' }, timestamp: isoTime }).info(fields)`; the test suite checks
// that against pino itself (test/edge/accesslog.test.ts). pino remains the logger for everything else.
import type { Transaction } from '../pipeline/transaction.js';
import { BatchedDestination } from './logdest.js';

export interface AccessLog {
  write(tx: Transaction, now: number): void;
  flush(): Promise<void>;
  /** Lines dropped because the log could not keep up. */
  dropped(): number;
}

/** The fields of one access line, in line order (also what the pino comparison test feeds pino). */
export interface AccessFields {
  client: string;
  method: string;
  host: string;
  path: string;
  status: number;
  bytes_in: number;
  bytes_out: number;
  Ta: number;
  Tw: number;
  Tr: number;
  backend: string;
  server: string;
  retries: number;
  term: string;
  rule: string | null;
  request_id: string;
  /** HTTP/1.0 or HTTP/1.1 as the client spoke it. */
  proto: string;
  /** TLS server name (SNI) the client asked for, null on plain listeners or without SNI. */
  sni: string | null;
}

/** Larger than the destination's flush size (256 KB), so that a slab is rarely left with bytes to carry over. */
const SLAB_BYTES = 1024 * 1024;
/** A new slab is taken when less than this is left (a line longer than that gets a slab of its own). */
const MIN_ROOM = 16 * 1024;
const HEX = '0123456789abcdef';

/**
 * A constant piece of the line, as little-endian 32-bit words plus a byte tail: written with
 * DataView.setUint32 it costs less than half of a byte-by-byte copy (measured, 15 keys per line).
 */
interface Piece { readonly words: Uint32Array; readonly tail: Uint8Array }
function piece(bytes: Uint8Array): Piece {
  const n = bytes.length >> 2;
  const words = new Uint32Array(n);
  for (let i = 0; i < n; i++) words[i] = (bytes[4 * i] | (bytes[4 * i + 1] << 8) | (bytes[4 * i + 2] << 16) | (bytes[4 * i + 3] << 24)) >>> 0;
  return { words, tail: Uint8Array.from(bytes.subarray(n * 4)) };
}
const enc8 = (t: string): Piece => piece(Buffer.from(t, 'latin1'));
const K_START = enc8('{"level":30,"time":"');
const K_METHOD = enc8(',"method":');
const K_HOST = enc8(',"host":');
const K_PATH = enc8(',"path":');
const K_STATUS = enc8(',"status":');
const K_BYTES_IN = enc8(',"bytes_in":');
const K_BYTES_OUT = enc8(',"bytes_out":');
const K_TA = enc8(',"Ta":');
const K_TW = enc8(',"Tw":');
const K_TR = enc8(',"Tr":');
const K_BACKEND = enc8(',"backend":');
const K_SERVER = enc8(',"server":');
const K_RETRIES = enc8(',"retries":');
const K_TERM = enc8(',"term":');
const K_RULE = enc8(',"rule":');
const K_NULL = enc8('null');
const K_REQUEST_ID = enc8(',"request_id":');
const K_PROTO = enc8(',"proto":');
const K_SNI = enc8(',"sni":');
const K_END = enc8('}\n');

function putPiece(dv: DataView, b: Uint8Array, p: number, k: Piece): number {
  const w = k.words;
  for (let i = 0; i < w.length; i++) { dv.setUint32(p, w[i], true); p += 4; }
  const t = k.tail;
  for (let i = 0; i < t.length; i++) b[p++] = t[i];
  return p;
}

/** A non-negative small integer's digits, else its JSON text (pino writes numbers with String()). */
function putNum(b: Uint8Array, p: number, n: number): number {
  if (n >= 0 && n <= 0x7fffffff && (n | 0) === n) {
    if (n < 10) { b[p] = 48 + n; return p + 1; }
    let digits = 1;
    for (let v = n; v >= 10; v = (v / 10) | 0) digits++;
    let q = p + digits;
    const end = q;
    for (let v = n; v !== 0; v = (v / 10) | 0) b[--q] = 48 + (v % 10);
    return end;
  }
  const t = Number.isFinite(n) ? String(n) : 'null';
  for (let i = 0; i < t.length; i++) b[p++] = t.charCodeAt(i);
  return p;
}

/** A JSON string literal; plain printable ASCII is copied as is, anything else takes putStrEscaped. */
function putStr(b: Uint8Array, p: number, s: string): number {
  const start = p;
  b[p++] = 34;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 34 || c === 92) return putStrEscaped(b, start, s);
    b[p++] = c;
  }
  b[p++] = 34;
  return p;
}

/** UTF-8, escaped exactly as JSON.stringify (and so pino) does. */
function putStrEscaped(b: Uint8Array, p: number, s: string): number {
  b[p++] = 34;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c < 0x80) {
      if (c === 34 || c === 92) b[p++] = 92;
      b[p++] = c;
    } else if (c < 0x20) {
      b[p++] = 92;
      switch (c) {
        case 8: b[p++] = 98; break; // \b
        case 9: b[p++] = 116; break; // \t
        case 10: b[p++] = 110; break; // \n
        case 12: b[p++] = 102; break; // \f
        case 13: b[p++] = 114; break; // \r
        default: b[p++] = 117; b[p++] = 48; b[p++] = 48; b[p++] = HEX.charCodeAt(c >> 4); b[p++] = HEX.charCodeAt(c & 15);
      }
    } else if (c < 0x800) {
      b[p++] = 0xc0 | (c >> 6); b[p++] = 0x80 | (c & 63);
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        b[p++] = 0xf0 | (cp >> 18); b[p++] = 0x80 | ((cp >> 12) & 63); b[p++] = 0x80 | ((cp >> 6) & 63); b[p++] = 0x80 | (cp & 63);
        i++;
      } else {
        // A lone surrogate: JSON.stringify writes it as an escape (well-formed JSON.stringify).
        b[p++] = 92; b[p++] = 117;
        b[p++] = HEX.charCodeAt(c >> 12); b[p++] = HEX.charCodeAt((c >> 8) & 15); b[p++] = HEX.charCodeAt((c >> 4) & 15); b[p++] = HEX.charCodeAt(c & 15);
      }
    } else {
      b[p++] = 0xe0 | (c >> 12); b[p++] = 0x80 | ((c >> 6) & 63); b[p++] = 0x80 | (c & 63);
    }
  }
  b[p++] = 34;
  return p;
}

/**
 * Encodes lines into a Buffer slab. Full or timed-out slab regions are handed to the destination;
 * a region once handed over is never written again (the writer goes on after it or in a new slab).
 */
export class AccessLineEncoder {
  private slab: Buffer = Buffer.allocUnsafeSlow(SLAB_BYTES);
  private dv = new DataView(this.slab.buffer, this.slab.byteOffset, this.slab.length);
  private start = 0;
  private pos = 0;
  private lastSec = -1;
  /** `2026-11-26T06:17:37.` — the ISO time up to the milliseconds, as bytes, cached per second. */
  private timePrefix: Piece = enc8('');
  /** After the time: the constant bindings (the node id may be any text: kept as UTF-8 bytes). */
  private readonly bindings: Piece;

  constructor(nodeId: string) {
    this.bindings = piece(Buffer.from(`Z","node":${JSON.stringify(nodeId)},"log":"access","client":`, 'utf8'));
  }

  /** Encodes one line (newline included). */
  encode(f: AccessFields, epochMs: number): void {
    // Worst case per string char: 6 bytes (\u00XX); strings are the only unbounded part.
    const need = 512 + 4 * this.bindings.words.length + this.bindings.tail.length + 6 * (f.client.length + f.method.length + f.host.length + f.path.length + f.backend.length +
      f.server.length + f.term.length + f.request_id.length + (f.rule === null ? 0 : f.rule.length) + (f.sni === null ? 0 : f.sni.length));
    if (this.slab.length - this.pos < need) this.newSlab(need);
    const b = this.slab;
    const dv = this.dv;
    let p = putPiece(dv, b, this.pos, K_START);
    // ISO-8601 UTC with milliseconds; the part up to the second is formatted once per second.
    const sec = Math.floor(epochMs / 1000);
    if (sec !== this.lastSec) { this.lastSec = sec; this.timePrefix = enc8(new Date(sec * 1000).toISOString().slice(0, 20)); }
    p = putPiece(dv, b, p, this.timePrefix);
    const ms = epochMs - sec * 1000;
    b[p++] = 48 + ((ms / 100) | 0);
    b[p++] = 48 + (((ms / 10) | 0) % 10);
    b[p++] = 48 + (ms % 10);
    p = putPiece(dv, b, p, this.bindings);
    p = putStr(b, p, f.client);
    p = putStr(b, putPiece(dv, b, p, K_METHOD), f.method);
    p = putStr(b, putPiece(dv, b, p, K_HOST), f.host);
    p = putStr(b, putPiece(dv, b, p, K_PATH), f.path);
    p = putNum(b, putPiece(dv, b, p, K_STATUS), f.status);
    p = putNum(b, putPiece(dv, b, p, K_BYTES_IN), f.bytes_in);
    p = putNum(b, putPiece(dv, b, p, K_BYTES_OUT), f.bytes_out);
    p = putNum(b, putPiece(dv, b, p, K_TA), f.Ta);
    p = putNum(b, putPiece(dv, b, p, K_TW), f.Tw);
    p = putNum(b, putPiece(dv, b, p, K_TR), f.Tr);
    p = putStr(b, putPiece(dv, b, p, K_BACKEND), f.backend);
    p = putStr(b, putPiece(dv, b, p, K_SERVER), f.server);
    p = putNum(b, putPiece(dv, b, p, K_RETRIES), f.retries);
    p = putStr(b, putPiece(dv, b, p, K_TERM), f.term);
    p = putPiece(dv, b, p, K_RULE);
    p = f.rule === null ? putPiece(dv, b, p, K_NULL) : putStr(b, p, f.rule);
    p = putStr(b, putPiece(dv, b, p, K_REQUEST_ID), f.request_id);
    p = putStr(b, putPiece(dv, b, p, K_PROTO), f.proto);
    p = putPiece(dv, b, p, K_SNI);
    p = f.sni === null ? putPiece(dv, b, p, K_NULL) : putStr(b, p, f.sni);
    this.pos = putPiece(dv, b, p, K_END);
  }

  /** Bytes encoded and not taken yet. */
  pending(): number { return this.pos - this.start; }

  /** The bytes encoded since the last take (a view; the encoder never writes them again), or null. */
  take(): Buffer | null {
    if (this.pos === this.start) return null;
    const out = this.slab.subarray(this.start, this.pos);
    this.start = this.pos;
    this.regionsOut(this.slab.buffer, 1);
    return out;
  }

  /** A region from take() reached the file: its slab may be reused once the encoder has left it. */
  release(region: Buffer): void { this.regionsOut(region.buffer, -1); }

  // Slabs are recycled, not left to the GC: at 50,000 lines/s a fresh slab every few thousand lines
  // kept ≈ 15 MB of dead slabs in RSS until V8 collected them (measured). A slab returns to the
  // spare list when the encoder has moved on and every region taken from it was written.
  private readonly outstanding = new Map<ArrayBufferLike, number>();
  private readonly retired = new Set<ArrayBufferLike>();
  private spare: Buffer | null = null;

  private regionsOut(ab: ArrayBufferLike, delta: number): void {
    const n = (this.outstanding.get(ab) ?? 0) + delta;
    if (n > 0) { this.outstanding.set(ab, n); return; }
    this.outstanding.delete(ab);
    if (this.retired.delete(ab) && this.spare === null && ab.byteLength === SLAB_BYTES) this.spare = Buffer.from(ab);
  }

  private newSlab(need: number): void {
    // Whatever was not taken yet moves along (it is at most one slab's worth).
    const pending = this.slab.subarray(this.start, this.pos);
    const size = Math.max(SLAB_BYTES, need + pending.length + MIN_ROOM);
    let next: Buffer;
    if (size === SLAB_BYTES && this.spare !== null) { next = this.spare; this.spare = null; } else next = Buffer.allocUnsafeSlow(size);
    pending.copy(next, 0);
    const old = this.slab.buffer;
    if (this.outstanding.has(old)) this.retired.add(old);
    else if (this.spare === null && old.byteLength === SLAB_BYTES) this.spare = this.slab;
    this.slab = next;
    this.dv = new DataView(next.buffer, next.byteOffset, next.length);
    this.start = 0;
    this.pos = pending.length;
  }
}

const noop: AccessLog = { write() {}, flush: async () => {}, dropped: () => 0 };

/** Flat field holder reused for every line (no object per request). */
function fieldsOf(tx: Transaction, now: number, f: AccessFields): AccessFields {
  f.client = tx.clientIp;
  f.method = tx.method;
  f.host = tx.host;
  f.path = tx.path;
  f.status = tx.status;
  f.bytes_in = tx.bytesIn;
  f.bytes_out = tx.bytesOut;
  f.Ta = Math.round(now - tx.t0);
  f.Tw = tx.Tw;
  f.Tr = tx.Tr;
  f.backend = tx.backend;
  f.server = tx.serverName;
  f.retries = tx.retries;
  f.term = tx.term;
  f.rule = tx.ruleId;
  f.request_id = tx.id;
  f.proto = tx.httpVersion === '2' ? 'HTTP/2.0' : tx.httpVersion === '1.0' ? 'HTTP/1.0' : 'HTTP/1.1';
  f.sni = tx.sni;
  return f;
}

export function openAccessLog(path: string, nodeId: string): AccessLog {
  if (path === 'off' || path === '') return noop;
  const enc = new AccessLineEncoder(nodeId);
  const dest = new BatchedDestination(path, enc);
  const fields: AccessFields = {
    client: '', method: '', host: '', path: '', status: 0, bytes_in: 0, bytes_out: 0, Ta: 0, Tw: 0, Tr: 0,
    backend: '', server: '', retries: 0, term: '', rule: null, request_id: '', proto: '', sni: null,
  };
  return {
    write(tx: Transaction, now: number): void {
      if (dest.full()) { dest.dropLine(); return; }
      enc.encode(fieldsOf(tx, now, fields), Date.now());
      dest.produced();
    },
    async flush(): Promise<void> {
      await dest.drain();
      dest.close();
    },
    dropped: () => dest.dropped,
  };
}
