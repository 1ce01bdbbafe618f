// A small MaxMind DB (format 2.0) writer. The project uses it to produce its own test fixtures
// (GeoLite2-style country and ASN databases) instead of downloading licensed data, and operators
// can use it to turn their own IP data into an .mmdb file.
//
// Format summary (https://maxmind.github.io/MaxMind-DB/):
//   [search tree: nodeCount nodes × 2 records] [16 zero bytes] [data section] [\xAB\xCD\xEF"MaxMind.com"] [metadata map]
// A record < nodeCount points to a node, == nodeCount means "no data", > nodeCount points into the
// data section at (record - nodeCount - 16). IPv4 networks in an IPv6 tree live under ::/96,
// which is where readers (mmdb-lib) look IPv4 addresses up.

import { writeFileSync, renameSync } from 'node:fs';
import { parseCidr } from '../lib/ip.js';

/** An unsigned integer with an explicit MaxMind width (metadata needs uint16/uint64 fields). */
export class MmdbUint {
  constructor(readonly bits: 16 | 32 | 64 | 128, readonly value: number | bigint) {}
}

export type MmdbValue = string | number | boolean | bigint | MmdbUint | MmdbValue[] | { [key: string]: MmdbValue };

export interface MmdbWriterOptions {
  databaseType: string;
  ipVersion?: 4 | 6;
  recordSize?: 24 | 32;
  languages?: string[];
  description?: Record<string, string>;
  /** Seconds since the epoch; default: now. */
  buildEpoch?: number;
}

const EMPTY = -1;
type Rec = number | { data: number }; // node index, EMPTY, or a data entry id

export class MmdbWriter {
  private readonly ipVersion: 4 | 6;
  private readonly left: Rec[] = [EMPTY];
  private readonly right: Rec[] = [EMPTY];
  private readonly dataIds = new Map<string, number>();
  private readonly dataValues: MmdbValue[] = [];

  constructor(private readonly opts: MmdbWriterOptions) {
    this.ipVersion = opts.ipVersion ?? 6;
  }

  /**
   * Maps a network (CIDR or single address) to a record. Later, more specific networks override
   * earlier ones inside them; a shorter network inserted later only fills the parts that have no
   * more specific data.
   */
  insert(network: string, data: MmdbValue): this {
    const c = parseCidr(network);
    if (c === null) throw new Error(`invalid network: ${network}`);
    let bits: number[];
    let prefix = c.prefix;
    if (c.bytes.length === 4) {
      bits = bytesToBits(c.bytes);
      if (this.ipVersion === 6) {
        bits = new Array<number>(96).fill(0).concat(bits);
        prefix += 96;
      }
    } else {
      if (this.ipVersion === 4) throw new Error(`IPv6 network ${network} in an IPv4 database`);
      bits = bytesToBits(c.bytes);
    }
    const id = this.dataId(data);
    if (prefix === 0) throw new Error('a /0 network cannot be stored (the root node has two records)');
    let node = 0;
    for (let depth = 0; depth < prefix - 1; depth++) {
      const side = bits[depth] === 0 ? this.left : this.right;
      const rec = side[node]!;
      if (typeof rec === 'number' && rec !== EMPTY) { node = rec; continue; }
      // Split an empty or data record into a node whose two records inherit it.
      const child = this.left.length;
      this.left.push(rec);
      this.right.push(rec);
      side[node] = child;
      node = child;
    }
    const side = bits[prefix - 1] === 0 ? this.left : this.right;
    const rec = side[node]!;
    if (typeof rec === 'number' && rec !== EMPTY) this.fillEmpty(rec, { data: id });
    else side[node] = { data: id };
    return this;
  }

  private fillEmpty(node: number, leaf: { data: number }): void {
    for (const side of [this.left, this.right]) {
      const rec = side[node]!;
      if (rec === EMPTY) side[node] = leaf;
      else if (typeof rec === 'number') this.fillEmpty(rec, leaf);
    }
  }

  private dataId(v: MmdbValue): number {
    const key = JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x instanceof MmdbUint ? `u${x.bits}:${x.value}` : x));
    let id = this.dataIds.get(key);
    if (id === undefined) {
      id = this.dataValues.length;
      this.dataValues.push(v);
      this.dataIds.set(key, id);
    }
    return id;
  }

  toBuffer(): Buffer {
    const nodeCount = this.left.length;
    const data: Buffer[] = [];
    const offsets: number[] = [];
    let dataLen = 0;
    for (const v of this.dataValues) {
      offsets.push(dataLen);
      const b = encode(v);
      data.push(b);
      dataLen += b.length;
    }
    const maxRecord = nodeCount + 16 + dataLen;
    const recordSize = this.opts.recordSize ?? (maxRecord < 2 ** 24 ? 24 : 32);
    if (maxRecord >= 2 ** recordSize) throw new Error(`database too large for ${recordSize}-bit records`);
    const nodeBytes = (recordSize * 2) / 8;
    const tree = Buffer.alloc(nodeCount * nodeBytes);
    const recValue = (r: Rec): number => (typeof r === 'number' ? (r === EMPTY ? nodeCount : r) : nodeCount + 16 + offsets[r.data]!);
    for (let i = 0; i < nodeCount; i++) {
      const l = recValue(this.left[i]!);
      const r = recValue(this.right[i]!);
      const o = i * nodeBytes;
      if (recordSize === 24) {
        tree.writeUIntBE(l, o, 3);
        tree.writeUIntBE(r, o + 3, 3);
      } else {
        tree.writeUInt32BE(l, o);
        tree.writeUInt32BE(r, o + 4);
      }
    }
    const metadata: MmdbValue = {
      binary_format_major_version: new MmdbUint(16, 2),
      binary_format_minor_version: new MmdbUint(16, 0),
      build_epoch: new MmdbUint(64, BigInt(this.opts.buildEpoch ?? Math.floor(Date.now() / 1000))),
      database_type: this.opts.databaseType,
      description: this.opts.description ?? { en: `${this.opts.databaseType} (Portcullis mmdb-writer)` },
      ip_version: new MmdbUint(16, this.ipVersion),
      languages: this.opts.languages ?? ['en'],
      node_count: new MmdbUint(32, nodeCount),
      record_size: new MmdbUint(16, recordSize),
    };
    return Buffer.concat([
      tree,
      Buffer.alloc(16),
      ...data,
      Buffer.from('ABCDEF4D61784D696E642E636F6D', 'hex'),
      encode(metadata),
    ]);
  }

  /** Writes atomically (temp file + rename), like a database updater would. */
  writeFile(path: string): void {
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, this.toBuffer());
    renameSync(tmp, path);
  }
}

function bytesToBits(b: Uint8Array): number[] {
  const out: number[] = [];
  for (const byte of b) for (let i = 7; i >= 0; i--) out.push((byte >> i) & 1);
  return out;
}

// ---- data section encoding ----

const T_UTF8 = 2;
const T_DOUBLE = 3;
const T_UINT16 = 5;
const T_UINT32 = 6;
const T_MAP = 7;
const T_INT32 = 8;
const T_UINT64 = 9;
const T_UINT128 = 10;
const T_ARRAY = 11;
const T_BOOLEAN = 14;

function control(type: number, size: number): Buffer {
  const head: number[] = [];
  let sizeBits: number;
  const ext: number[] = [];
  if (size < 29) sizeBits = size;
  else if (size < 29 + 256) { sizeBits = 29; ext.push(size - 29); }
  else if (size < 285 + 65536) { sizeBits = 30; const s = size - 285; ext.push(s >> 8, s & 255); }
  else { sizeBits = 31; const s = size - 65821; ext.push((s >> 16) & 255, (s >> 8) & 255, s & 255); }
  if (type <= 7) head.push((type << 5) | sizeBits);
  else head.push(sizeBits, type - 7);
  return Buffer.from([...head, ...ext]);
}

function uintBytes(v: bigint): Buffer {
  const out: number[] = [];
  let x = v;
  while (x > 0n) { out.unshift(Number(x & 255n)); x >>= 8n; }
  return Buffer.from(out);
}

function encodeUint(type: number, v: bigint): Buffer {
  const b = uintBytes(v);
  return Buffer.concat([control(type, b.length), b]);
}

function encode(v: MmdbValue): Buffer {
  if (typeof v === 'string') {
    const b = Buffer.from(v, 'utf8');
    return Buffer.concat([control(T_UTF8, b.length), b]);
  }
  if (typeof v === 'boolean') return control(T_BOOLEAN, v ? 1 : 0);
  if (typeof v === 'bigint') return encodeUint(v < 2n ** 64n ? T_UINT64 : T_UINT128, v);
  if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= 0 && v < 2 ** 32) return encodeUint(T_UINT32, BigInt(v));
    if (Number.isInteger(v) && v < 0 && v >= -(2 ** 31)) {
      const b = Buffer.alloc(4);
      b.writeInt32BE(v);
      return Buffer.concat([control(T_INT32, 4), b]);
    }
    const b = Buffer.alloc(8);
    b.writeDoubleBE(v);
    return Buffer.concat([control(T_DOUBLE, 8), b]);
  }
  if (v instanceof MmdbUint) {
    const type = v.bits === 16 ? T_UINT16 : v.bits === 32 ? T_UINT32 : v.bits === 64 ? T_UINT64 : T_UINT128;
    return encodeUint(type, BigInt(v.value));
  }
  if (Array.isArray(v)) return Buffer.concat([control(T_ARRAY, v.length), ...v.map(encode)]);
  const entries = Object.entries(v);
  const parts: Buffer[] = [control(T_MAP, entries.length)];
  for (const [k, val] of entries) parts.push(encode(k), encode(val));
  return Buffer.concat(parts);
}
