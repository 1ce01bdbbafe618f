// Varint (LEB128) writer/reader for history records: counts, milliseconds and sketch buckets are
// non-negative integers, most of them small, so a record of a quiet server is a few dozen bytes.

const UTF8 = new Map<string, Uint8Array>();

export class ByteWriter {
  private buf: Uint8Array;
  len = 0;
  constructor(size = 256) { this.buf = new Uint8Array(size); }

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  byte(b: number): void { this.room(1); this.buf[this.len++] = b & 0xff; }

  /** Non-negative integer up to 2^53 (values are rounded, negatives written as 0). */
  uint(v: number): void {
    let x = v > 0 ? Math.round(v) : 0;
    this.room(8);
    while (x >= 0x80) {
      this.buf[this.len++] = (x % 0x80) | 0x80;
      x = Math.floor(x / 0x80);
      if (this.len + 1 > this.buf.length) this.room(8);
    }
    this.buf[this.len++] = x;
  }

  str(s: string): void {
    // Node, series and rule names repeat in every record: their UTF-8 bytes are kept (bounded).
    let b = UTF8.get(s);
    if (b === undefined) {
      b = Buffer.from(s, 'utf8');
      if (UTF8.size >= 50_000) UTF8.clear();
      UTF8.set(s, b);
    }
    this.uint(b.length);
    this.room(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  /** A copy of the bytes written. */
  bytes(): Uint8Array { return this.buf.slice(0, this.len); }
  reset(): void { this.len = 0; }
}

export class ByteReader {
  pos = 0;
  constructor(private readonly buf: Uint8Array, start = 0, private readonly end = buf.length) { this.pos = start; }

  byte(): number {
    if (this.pos >= this.end) throw new Error('record truncated');
    return this.buf[this.pos++];
  }

  uint(): number {
    let x = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.byte();
      x += (b & 0x7f) * mul;
      if (b < 0x80) return x;
      mul *= 0x80;
    }
    throw new Error('varint too long');
  }

  str(): string {
    const n = this.uint();
    if (this.pos + n > this.end) throw new Error('record truncated');
    const s = Buffer.from(this.buf.buffer, this.buf.byteOffset + this.pos, n).toString('utf8');
    this.pos += n;
    return s;
  }

  get done(): boolean { return this.pos >= this.end; }
}
