// The kept HPACK implementation behind the prototype: hpack.js (RFC 7541, plain JS, MIT; the HPACK of
// the `spdy` package). Its public API is a pair of object-mode streams (one push per header field);
// the prototype drives the same codec without the stream machinery: the decompressor's bit decoder
// and table, the compressor's encoder and table (underscored members, pinned to hpack.js 2.1.6).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const hpack = require('hpack.js');

export class HeaderDecoder {
  /** `tableSize`: SETTINGS_HEADER_TABLE_SIZE we advertised (the client cannot raise it beyond). */
  constructor(tableSize) {
    this.d = hpack.decompressor.create({ table: { maxSize: tableSize } });
    this.out = null;
    this.bytes = 0;
    this.limit = 0;
    // Replaces the stream's push: fields go straight into the list being decoded.
    this.d.push = (f) => {
      this.bytes += f.name.length + f.value.length + 32;
      if (this.bytes > this.limit) throw new ListTooLarge();
      this.out.push(f.name, f.value);
      return true;
    };
  }

  /**
   * Decodes one complete header block into a flat [name, value, …] list. Throws on a malformed block
   * (a connection error: COMPRESSION_ERROR) and ListTooLarge past `limit` decoded bytes (the block is
   * still decoded to its end first, so the table stays in step with the client's encoder).
   */
  decode(block, limit) {
    const d = this.d;
    const out = [];
    this.out = out;
    this.bytes = 0;
    this.limit = limit;
    d._decoder.push(block);
    let tooLarge = false;
    while (!d._decoder.isEmpty()) {
      try { d._execute(); } catch (e) { if (e instanceof ListTooLarge) { tooLarge = true; this.limit = Infinity; } else throw e; }
    }
    if (tooLarge) throw new ListTooLarge();
    return out;
  }
}

export class ListTooLarge extends Error {}

export class HeaderEncoder {
  constructor() {
    this.c = hpack.compressor.create({ table: { maxSize: 4096 } });
  }

  /** The client's SETTINGS_HEADER_TABLE_SIZE. */
  setTableSize(size) {
    this.pendingSize = size;
  }

  /** Encodes [{ name, value }, …] into buffers (their total length in `.length` of the result's sum). */
  encode(fields) {
    const c = this.c;
    const parts = [];
    if (this.pendingSize !== undefined) {
      const size = Math.min(this.pendingSize, 4096);
      this.pendingSize = undefined;
      c.push = (b) => { parts.push(b); return true; };
      c.updateTableSize(size);
    }
    c._encoder = hpack.encoder.create();
    for (let i = 0; i < fields.length; i++) c._encodeHeader(fields[i]);
    const rendered = c._encoder.render();
    c._encoder = null;
    for (let i = 0; i < rendered.length; i++) parts.push(rendered[i]);
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }
}
