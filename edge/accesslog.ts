// One JSON line per request, in pino's line format, written asynchronously in large batches
// (edge/logdest.ts): nothing synchronous on the request path. The line has a fixed shape (HAProxy's
// timers and termination state), never a header map.
//
// Why not logger.info(): pino's generic serialiser (key loop, string concatenation, then joining and
// flattening the lines for the batch) cost ≈ 3.5 µs per request — 13 % of the proxy's CPU on the
// small-GET benchmark. The shape is fixed, so the line is encoded field by field straight into a
// Buffer slab: no intermediate strings, no garbage. The bytes are exactly what pino writes for
// `pino({ base: { node, log: 'access' }, timestamp: isoTime }).info(fields)`; the test suite checks
// that against pino itself (test/edge/accesslog.test.ts). pino remains the logger for everything else.
import type { Transaction } from './transaction.js';
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
}

const SLAB_BYTES = 256 * 1024;
/** A new slab is taken when less than this is left (a line longer than that gets a slab of its own). */
const MIN_ROOM = 16 * 1024;
const HEX = '0123456789abcdef';

/**
 * Encodes lines into a Buffer slab. Full or timed-out slab regions are handed to the destination;
 * a region once handed over is never written again (the writer goes on after it or in a new slab).
 */
export class AccessLineEncoder {
  private slab: Buffer = Buffer.allocUnsafeSlow(SLAB_BYTES);
  private start = 0;
  private pos = 0;
  private lastSec = -1;
  private lastMs = -1;
  /** `2026-11-26T06:17:37.` — the ISO time up to the milliseconds, cached per second. */
  private timePrefix = '';
  /** After the time: the constant bindings (the node id may be any text: kept as UTF-8 bytes). */
  private readonly bindings: Uint8Array;

  constructor(nodeId: string) {
    this.bindings = Buffer.from(`Z","node":${JSON.stringify(nodeId)},"log":"access","client":`, 'utf8');
  }

  /** Encodes one line (newline included). */
  encode(f: AccessFields, epochMs: number): void {
    // Worst case per string char: 6 bytes (\u00XX); strings are the only unbounded part.
    const need = 512 + this.bindings.length + 6 * (f.client.length + f.method.length + f.host.length + f.path.length + f.backend.length +
      f.server.length + f.term.length + f.request_id.length + (f.rule === null ? 0 : f.rule.length));
    if (this.slab.length - this.pos < need) this.newSlab(need);
    this.ascii('{"level":30,"time":"');
    this.time(epochMs);
    this.bytes(this.bindings);
    this.str(f.client);
    this.ascii(',"method":'); this.str(f.method);
    this.ascii(',"host":'); this.str(f.host);
    this.ascii(',"path":'); this.str(f.path);
    this.ascii(',"status":'); this.num(f.status);
    this.ascii(',"bytes_in":'); this.num(f.bytes_in);
    this.ascii(',"bytes_out":'); this.num(f.bytes_out);
    this.ascii(',"Ta":'); this.num(f.Ta);
    this.ascii(',"Tw":'); this.num(f.Tw);
    this.ascii(',"Tr":'); this.num(f.Tr);
    this.ascii(',"backend":'); this.str(f.backend);
    this.ascii(',"server":'); this.str(f.server);
    this.ascii(',"retries":'); this.num(f.retries);
    this.ascii(',"term":'); this.str(f.term);
    this.ascii(',"rule":'); if (f.rule === null) this.ascii('null'); else this.str(f.rule);
    this.ascii(',"request_id":'); this.str(f.request_id);
    this.ascii('}\n');
  }

  /** Bytes encoded and not taken yet. */
  pending(): number { return this.pos - this.start; }

  /** The bytes encoded since the last take (a view; the encoder never writes them again), or null. */
  take(): Buffer | null {
    if (this.pos === this.start) return null;
    const out = this.slab.subarray(this.start, this.pos);
    this.start = this.pos;
    return out;
  }

  private newSlab(need: number): void {
    // Whatever was not taken yet moves along (it is at most one slab's worth).
    const pending = this.slab.subarray(this.start, this.pos);
    const next = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, need + pending.length + MIN_ROOM));
    pending.copy(next, 0);
    this.slab = next;
    this.start = 0;
    this.pos = pending.length;
  }

  private ascii(s: string): void {
    const b = this.slab;
    let p = this.pos;
    for (let i = 0; i < s.length; i++) b[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  private bytes(u: Uint8Array): void {
    const b = this.slab;
    let p = this.pos;
    for (let i = 0; i < u.length; i++) b[p++] = u[i];
    this.pos = p;
  }

  private num(n: number): void {
    if ((n | 0) === n && n >= 0) {
      // Small non-negative integers (all but the odd -1 timer): digits straight into the slab.
      const b = this.slab;
      if (n < 10) { b[this.pos++] = 48 + n; return; }
      let digits = 1;
      for (let v = n; v >= 10; v = (v / 10) | 0) digits++;
      let p = this.pos + digits;
      this.pos = p;
      for (let v = n; ; ) { const q = (v / 10) | 0; b[--p] = 48 + v - q * 10; v = q; if (v === 0) break; }
      return;
    }
    this.ascii(Number.isFinite(n) ? String(n) : 'null');
  }

  /** A JSON string literal, UTF-8, escaped exactly as JSON.stringify (and so pino) does. */
  private str(s: string): void {
    const b = this.slab;
    let p = this.pos;
    b[p++] = 34;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x20 && c < 0x80) {
        if (c === 34 || c === 92) { b[p++] = 92; }
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
    this.pos = p;
  }

  /** ISO-8601 UTC with milliseconds; the part up to the second is formatted once per second. */
  private time(ms: number): void {
    if (ms !== this.lastMs) {
      this.lastMs = ms;
      const sec = Math.floor(ms / 1000);
      if (sec !== this.lastSec) { this.lastSec = sec; this.timePrefix = new Date(sec * 1000).toISOString().slice(0, 20); }
    }
    this.ascii(this.timePrefix);
    const m = ms - this.lastSec * 1000;
    const b = this.slab;
    b[this.pos++] = 48 + ((m / 100) | 0);
    b[this.pos++] = 48 + (((m / 10) | 0) % 10);
    b[this.pos++] = 48 + (m % 10);
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
  f.server = tx.server?.name ?? '';
  f.retries = tx.retries;
  f.term = tx.term;
  f.rule = tx.ruleId;
  f.request_id = tx.id;
  return f;
}

export function openAccessLog(path: string, nodeId: string): AccessLog {
  if (path === 'off' || path === '') return noop;
  const dest = new BatchedDestination(path);
  const enc = new AccessLineEncoder(nodeId);
  const fields: AccessFields = {
    client: '', method: '', host: '', path: '', status: 0, bytes_in: 0, bytes_out: 0, Ta: 0, Tw: 0, Tr: 0,
    backend: '', server: '', retries: 0, term: '', rule: null, request_id: '',
  };
  dest.attach(enc);
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
