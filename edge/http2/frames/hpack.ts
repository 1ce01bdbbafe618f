// HPACK (RFC 7541) for the frame engine: hpack.js 2.1.6 (Fedor Indutny, MIT; the HPACK of `spdy`),
// kept as a dependency pinned exactly, driven without its object-mode stream wrapper: the
// decompressor's bit decoder and table, the compressor's encoder and table (underscored members,
// which is why the version is pinned).
//
// Why not a fork that counts the header list while decoding: the encoded block reaching the decoder
// is already bounded (http2.max_header_block, 64 KB by default, counted by FrameBudgets across
// HEADERS and CONTINUATION), so one decoded field is at most that large; fields are counted as they
// are pushed, and past the limit they are dropped (decoding goes on to the block's end so the dynamic
// table stays in step with the client's encoder). An indexed field is a reference to the table's
// strings, not a copy: an HPACK bomb (one 4 KB entry referenced 12,000 times) costs one small object
// per reference while it is decoded, and nothing is kept.
import { createRequire } from 'node:module';

interface Field { name: string; value: string; neverIndex?: boolean }
interface BitDecoder { push(b: Buffer): void; isEmpty(): boolean }
interface Decompressor {
  _decoder: BitDecoder;
  push: (f: Field) => boolean;
  _execute(): void;
}
interface BitEncoder { render(): Buffer[] }
interface Compressor {
  _encoder: BitEncoder | null;
  push: (b: Buffer) => boolean;
  _encodeHeader(f: Field): void;
  updateTableSize(size: number): void;
}
interface HpackJs {
  decompressor: { create(o: { table: { maxSize: number } }): Decompressor };
  compressor: { create(o: { table: { maxSize: number } }): Compressor };
  encoder: { create(): BitEncoder };
}

const require = createRequire(import.meta.url);
const hpack = require('hpack.js') as HpackJs;

/** Thrown by decode(): the block is not valid HPACK (a connection error, COMPRESSION_ERROR). */
export class CompressionError extends Error {}

export class HeaderDecoder {
  private readonly d: Decompressor;
  private out: string[] = [];
  private bytes = 0;
  private fields = 0;
  private maxBytes = 0;
  private maxFields = 0;
  /** The last decode() went past a limit (its list is incomplete and must not be used). */
  tooLarge = false;

  /** `tableSize`: the SETTINGS_HEADER_TABLE_SIZE we advertised (a size update above it is refused). */
  constructor(tableSize: number) {
    this.d = hpack.decompressor.create({ table: { maxSize: tableSize } });
    // Replaces the stream's push: each field goes straight into the list being decoded, counted as
    // RFC 9113 §6.5.2 counts (name + value + 32), and dropped once the list is over a limit.
    this.d.push = (f: Field): boolean => {
      if (this.tooLarge) return true;
      this.bytes += f.name.length + f.value.length + 32;
      if (this.bytes > this.maxBytes || ++this.fields > this.maxFields) { this.tooLarge = true; this.out.length = 0; return true; }
      this.out.push(f.name, f.value);
      return true;
    };
  }

  /**
   * One complete header block as a flat [name, value, …] list (latin1 strings, as node:http2's raw
   * headers). Throws CompressionError on a malformed block; sets `tooLarge` (and returns an empty
   * list) past `maxBytes` decoded bytes or `maxFields` fields.
   */
  decode(block: Buffer, maxBytes: number, maxFields: number): string[] {
    const out: string[] = [];
    this.out = out;
    this.bytes = 0;
    this.fields = 0;
    this.maxBytes = maxBytes;
    this.maxFields = maxFields;
    this.tooLarge = false;
    const d = this.d;
    try {
      d._decoder.push(block);
      while (!d._decoder.isEmpty()) d._execute();
    } catch (e) {
      // hpack.js asserts (plain Error) on short input, a bad index, a bad Huffman end or a table size
      // update above our setting. Its bit decoder may hold the rest of the bad block: a fresh one would
      // be needed, but a compression error ends the connection anyway.
      throw new CompressionError(e instanceof Error ? e.message : 'hpack');
    }
    return out;
  }
}

export class HeaderEncoder {
  private readonly c: Compressor;
  private pendingSize = -1;
  private parts: Buffer[] = [];

  constructor() {
    this.c = hpack.compressor.create({ table: { maxSize: 4096 } });
    this.c.push = (b: Buffer): boolean => { this.parts.push(b); return true; };
  }

  /** The client's SETTINGS_HEADER_TABLE_SIZE: applied (with a size update) at the next block. */
  setTableSize(size: number): void { this.pendingSize = size; }

  /** Encodes fields given as a flat [name, value, …] list (names lower-case). */
  encode(list: readonly string[]): Buffer {
    const c = this.c;
    const parts = this.parts;
    parts.length = 0;
    if (this.pendingSize >= 0) {
      const size = Math.min(this.pendingSize, 4096);
      this.pendingSize = -1;
      // hpack.js writes the size update only when it is the protocol maximum: write it ourselves for smaller ones.
      if (size >= 4096) c.updateTableSize(size);
      else { c.updateTableSize(size); parts.push(sizeUpdate(size)); }
    }
    const enc = hpack.encoder.create();
    c._encoder = enc;
    const f: Field = { name: '', value: '' };
    for (let i = 0; i < list.length; i += 2) { f.name = list[i]; f.value = list[i + 1]; c._encodeHeader(f); }
    const rendered = enc.render();
    c._encoder = null;
    for (let i = 0; i < rendered.length; i++) parts.push(rendered[i]);
    const out = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    parts.length = 0;
    return out;
  }
}

/** A dynamic table size update (RFC 7541 §6.3): 001 prefix, 5-bit integer. */
function sizeUpdate(size: number): Buffer {
  if (size < 31) return Buffer.from([0x20 | size]);
  const bytes = [0x20 | 31];
  let v = size - 31;
  while (v >= 128) { bytes.push((v & 0x7f) | 0x80); v >>>= 7; }
  bytes.push(v);
  return Buffer.from(bytes);
}
