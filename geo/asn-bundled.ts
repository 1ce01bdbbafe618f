// The default ASN data: the openly licensed `@ip-location-db/asn` package (RouteViews and DB-IP data,
// CC BY 4.0 — attribution: "IP to ASN data by RouteViews and DB-IP (db-ip.com)"), so `geo.asn` works
// on a default install. Its `asn-ipv4-num.csv` / `asn-ipv6-num.csv` (start,end,asn,organisation as
// decimal integers) are parsed once, byte by byte (no string per line), into compact typed arrays
// searched by binary search: ≈ 515,000 ranges in ≈ 12 MB. The arrays live in SharedArrayBuffers, so
// with `workers: N` the main thread parses once and every worker thread reads the same memory
// (AsnTable travels in the edge's shared-memory record; see loadBundledAsn). Only loaded when a rule
// reads geo.asn; a configured GeoLite2-ASN file (geo.asn_db) still wins.
import { closeSync, openSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseIp } from '../lib/ip.js';

export const BUNDLED_ASN_PACKAGE = '@ip-location-db/asn';
/** `sources.asn` of a lookup that uses the bundled data. */
export const BUNDLED_ASN_SOURCE = `bundled:${BUNDLED_ASN_PACKAGE}`;
/** Key of the parsed table in the edge's shared-memory record (edge.ts createSharedMemory / workerData). */
export const SHARED_ASN_KEY = 'geo:asn';

/** Paths of the package's two CSV files, or null when the package is not installed. */
export function bundledAsnFiles(): { v4: string; v6: string } | null {
  try {
    const req = createRequire(import.meta.url);
    return { v4: req.resolve(`${BUNDLED_ASN_PACKAGE}/asn-ipv4-num.csv`), v6: req.resolve(`${BUNDLED_ASN_PACKAGE}/asn-ipv6-num.csv`) };
  } catch {
    return null;
  }
}

/**
 * The parsed table: plain typed arrays (structured-clonable; over SharedArrayBuffers they are shared,
 * not copied, when posted to a worker). IPv6 bounds are four big-endian 32-bit words per range.
 * Organisation names are UTF-8 bytes, `orgStart[i]..orgStart[i+1]` for organisation i.
 */
export interface AsnTable {
  readonly v4Count: number;
  readonly v4Start: Uint32Array;
  readonly v4End: Uint32Array;
  readonly v4Asn: Uint32Array;
  readonly v4Org: Uint32Array;
  readonly v6Count: number;
  readonly v6Start: Uint32Array;
  readonly v6End: Uint32Array;
  readonly v6Asn: Uint32Array;
  readonly v6Org: Uint32Array;
  readonly orgStart: Uint32Array;
  readonly orgBytes: Uint8Array;
}

/** An ASN record as mmdb readers return it (geo/lookup.ts reads this shape). */
export interface AsnRecord { readonly autonomous_system_number: number; readonly autonomous_system_organization: string }

function sharedU32(n: number): Uint32Array { return new Uint32Array(new SharedArrayBuffer(Math.max(1, n) * 4)); }

/**
 * Calls `line(buf, start, end)` for every line of a file, reading it through one 1 MiB buffer: the
 * CSV files (32 MB together) are never held whole, so parsing them leaves no high-water mark of
 * freed file buffers in the process's memory.
 */
function forEachLine(path: string, line: (buf: Uint8Array, start: number, end: number) => void): void {
  const fd = openSync(path, 'r');
  try {
    let buf = Buffer.allocUnsafe(1 << 20);
    let have = 0;
    for (;;) {
      if (have === buf.length) { const g = Buffer.allocUnsafe(buf.length * 2); buf.copy(g, 0, 0, have); buf = g; } // a line longer than the buffer
      const n = readSync(fd, buf, have, buf.length - have, null);
      const end = have + n;
      let pos = 0;
      for (let nl = buf.indexOf(10, have); nl >= 0 && nl < end; nl = buf.indexOf(10, pos)) { line(buf, pos, nl); pos = nl + 1; }
      if (n === 0) { if (pos < end) line(buf, pos, end); return; }
      buf.copy(buf, 0, pos, end);
      have = end - pos;
    }
  } finally {
    closeSync(fd);
  }
}

function countLines(path: string): number {
  let n = 0;
  forEachLine(path, () => { n++; });
  return n;
}

/** Organisation names, deduplicated per ASN (the data gives one name per ASN, almost always). */
class OrgPool {
  bytes = new Uint8Array(1 << 22);
  len = 0;
  readonly starts: number[] = [0];
  private readonly byAsn = new Map<number, number>();

  /** Index of the organisation written as buf[from..to) (CSV field, maybe quoted) for this ASN. */
  intern(asn: number, buf: Uint8Array, from: number, to: number): number {
    let a = from, b = to;
    const quoted = b - a >= 2 && buf[a] === 34 && buf[b - 1] === 34;
    if (quoted) { a++; b--; }
    const prev = this.byAsn.get(asn);
    if (prev !== undefined && this.equals(prev, buf, a, b, quoted)) return prev;
    if (this.len + (b - a) > this.bytes.length) { const g = new Uint8Array(Math.max(this.bytes.length * 2, this.len + (b - a))); g.set(this.bytes.subarray(0, this.len)); this.bytes = g; }
    for (let i = a; i < b; i++) {
      this.bytes[this.len++] = buf[i];
      if (quoted && buf[i] === 34 && buf[i + 1] === 34) i++; // "" is one quote
    }
    const id = this.starts.length - 1;
    this.starts.push(this.len);
    this.byAsn.set(asn, id);
    return id;
  }

  private equals(id: number, buf: Uint8Array, a: number, b: number, quoted: boolean): boolean {
    let k = this.starts[id];
    const end = this.starts[id + 1];
    for (let i = a; i < b; i++, k++) {
      if (k >= end || this.bytes[k] !== buf[i]) return false;
      if (quoted && buf[i] === 34 && buf[i + 1] === 34) i++;
    }
    return k === end;
  }
}

/** Parses one CSV file of ranges; v6 bounds go into four words each. Returns the number of ranges. */
function parseRanges(path: string, v6: boolean, start: Uint32Array, end: Uint32Array, asn: Uint32Array, org: Uint32Array, orgs: OrgPool): number {
  const words = [0, 0, 0, 0];
  let k = 0;
  forEachLine(path, (buf, pos, eol) => {
    if (k >= asn.length) return; // the file grew between counting and parsing
    let lineEnd = eol;
    if (lineEnd > pos && buf[lineEnd - 1] === 13) lineEnd--;
    // start,end,asn,organisation
    const c1 = buf.indexOf(44, pos), c2 = c1 < 0 ? -1 : buf.indexOf(44, c1 + 1), c3 = c2 < 0 ? -1 : buf.indexOf(44, c2 + 1);
    if (c3 < 0 || c3 >= lineEnd) return;
    const as = decimal(buf, c2 + 1, c3);
    if (v6) {
      if (decimal128(buf, pos, c1, words)) for (let w = 0; w < 4; w++) start[k * 4 + w] = words[w];
      if (decimal128(buf, c1 + 1, c2, words)) for (let w = 0; w < 4; w++) end[k * 4 + w] = words[w];
    } else {
      start[k] = decimal(buf, pos, c1);
      end[k] = decimal(buf, c1 + 1, c2);
    }
    asn[k] = as;
    org[k] = orgs.intern(as, buf, c3 + 1, lineEnd);
    k++;
  });
  return k;
}

function decimal(buf: Uint8Array, from: number, to: number): number {
  let v = 0;
  for (let i = from; i < to; i++) v = v * 10 + (buf[i] - 48);
  return v;
}

/** A decimal of up to 128 bits into four big-endian 32-bit words (nine digits at a time). */
function decimal128(buf: Uint8Array, from: number, to: number, out: number[]): boolean {
  out[0] = out[1] = out[2] = out[3] = 0;
  for (let i = from; i < to;) {
    const end = Math.min(to, i + 9);
    let chunk = 0, scale = 1;
    for (; i < end; i++) {
      const d = buf[i] - 48;
      if (d < 0 || d > 9) return false;
      chunk = chunk * 10 + d;
      scale *= 10;
    }
    let carry = chunk;
    for (let w = 3; w >= 0; w--) {
      // out[w] * scale + carry < 2^32 * 10^9 + 2^32 < 2^63: split to stay exact in doubles
      const lo = (out[w] & 0xffff) * scale + carry;
      const hi = (out[w] >>> 16) * scale + Math.floor(lo / 65536);
      out[w] = (((hi % 65536) * 65536) + (lo % 65536)) >>> 0;
      carry = Math.floor(hi / 65536);
    }
  }
  return true;
}

/** Parses the package's CSV files into an AsnTable (SharedArrayBuffer-backed). */
export function parseBundledAsn(files: { v4: string; v6: string }): AsnTable {
  const n4 = countLines(files.v4), n6 = countLines(files.v6);
  const orgs = new OrgPool();
  const v4Start = sharedU32(n4), v4End = sharedU32(n4), v4Asn = sharedU32(n4), v4Org = sharedU32(n4);
  const v6Start = sharedU32(n6 * 4), v6End = sharedU32(n6 * 4), v6Asn = sharedU32(n6), v6Org = sharedU32(n6);
  const v4Count = parseRanges(files.v4, false, v4Start, v4End, v4Asn, v4Org, orgs);
  const v6Count = parseRanges(files.v6, true, v6Start, v6End, v6Asn, v6Org, orgs);
  const orgBytes = new Uint8Array(new SharedArrayBuffer(Math.max(1, orgs.len)));
  orgBytes.set(orgs.bytes.subarray(0, orgs.len));
  const orgStart = sharedU32(orgs.starts.length);
  orgStart.set(orgs.starts);
  return { v4Count, v4Start, v4End, v4Asn, v4Org, v6Count, v6Start, v6End, v6Asn, v6Org, orgStart, orgBytes };
}

function isAsnTable(x: unknown): x is AsnTable {
  return typeof x === 'object' && x !== null && (x as AsnTable).v4Start instanceof Uint32Array && (x as AsnTable).orgBytes instanceof Uint8Array;
}

/**
 * The bundled table, parsed once per process: a table already in `shared` (parsed by the main
 * thread, handed to this worker) is used as it is; otherwise it is parsed and put there, so worker
 * threads started afterwards with the same shared record do not parse (nor hold) their own copy.
 */
export function loadBundledAsn(files: { v4: string; v6: string }, shared?: Record<string, unknown>): BundledAsn {
  const have = shared?.[SHARED_ASN_KEY];
  if (isAsnTable(have)) return new BundledAsn(have);
  const table = parseBundledAsn(files);
  if (shared !== undefined) shared[SHARED_ASN_KEY] = table;
  return new BundledAsn(table);
}

const decoder = new TextDecoder();

export class BundledAsn {
  /** One frozen record per organisation, made on its first lookup. */
  private readonly records = new Map<number, AsnRecord>();

  constructor(readonly table: AsnTable) {}

  get ranges(): number { return this.table.v4Count + this.table.v6Count; }

  /** The ASN record of an address (text), or null. Same contract as a maxmind Reader's get(). */
  get(ip: string): AsnRecord | null {
    const b = parseIp(ip);
    if (b === null) return null;
    const t = this.table;
    if (b.length === 4) {
      const x = ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
      const start = t.v4Start;
      let lo = 0, hi = t.v4Count - 1, at = -1;
      while (lo <= hi) { const mid = (lo + hi) >> 1; if (start[mid] <= x) { at = mid; lo = mid + 1; } else hi = mid - 1; }
      return at >= 0 && x <= t.v4End[at] ? this.record(t.v4Asn[at], t.v4Org[at]) : null;
    }
    const x0 = word(b, 0), x1 = word(b, 4), x2 = word(b, 8), x3 = word(b, 12);
    const s = t.v6Start;
    let lo = 0, hi = t.v6Count - 1, at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (compare128(s, mid * 4, x0, x1, x2, x3) <= 0) { at = mid; lo = mid + 1; } else hi = mid - 1;
    }
    if (at < 0) return null;
    return compare128(t.v6End, at * 4, x0, x1, x2, x3) >= 0 ? this.record(t.v6Asn[at], t.v6Org[at]) : null;
  }

  private record(asn: number, org: number): AsnRecord {
    let r = this.records.get(org);
    if (r === undefined || r.autonomous_system_number !== asn) {
      const t = this.table;
      const name = decoder.decode(t.orgBytes.slice(t.orgStart[org], t.orgStart[org + 1]));
      r = Object.freeze({ autonomous_system_number: asn, autonomous_system_organization: name });
      this.records.set(org, r);
    }
    return r;
  }
}

function word(b: Uint8Array, i: number): number {
  return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
}

/** Sign of (range bound at words[at..at+4]) − (x0..x3). */
function compare128(words: Uint32Array, at: number, x0: number, x1: number, x2: number, x3: number): number {
  let d = words[at] - x0;
  if (d !== 0) return d;
  d = words[at + 1] - x1;
  if (d !== 0) return d;
  d = words[at + 2] - x2;
  if (d !== 0) return d;
  return words[at + 3] - x3;
}
