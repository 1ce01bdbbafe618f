// Hand-built HTTP/2 for the tests: frames written byte by byte (RFC 9113 §4.1), an HPACK encoder that
// only emits "literal header field without indexing — new name" (RFC 7541 §6.2.2, no Huffman), and a
// reader that splits what the server sends back into frames. No HTTP/2 library on the attacking side.
import { connect, type TLSSocket } from 'node:tls';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const enum T { DATA = 0, HEADERS = 1, PRIORITY = 2, RST_STREAM = 3, SETTINGS = 4, PING = 6, GOAWAY = 7, WINDOW_UPDATE = 8, CONTINUATION = 9 }
export const END_STREAM = 0x1, END_HEADERS = 0x4, ACK = 0x1;

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

/** HPACK integer with an N-bit prefix (RFC 7541 §5.1). */
function hpackInt(value: number, prefixBits: number, first: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [first | value];
  const out = [first | max];
  value -= max;
  while (value >= 128) { out.push((value % 128) + 128); value = Math.floor(value / 128); }
  out.push(value);
  return out;
}

/** Header block of literal fields without indexing, new names (pairs: [name, value]). */
export function hpack(fields: [string, string][]): Buffer {
  const bytes: number[] = [];
  for (const [n, v] of fields) {
    bytes.push(0x00);
    const nb = Buffer.from(n, 'latin1');
    const vb = Buffer.from(v, 'latin1');
    bytes.push(...hpackInt(nb.length, 7, 0), ...nb, ...hpackInt(vb.length, 7, 0), ...vb);
  }
  return Buffer.from(bytes);
}

/** "Literal with incremental indexing — new name": the field goes into the decoder's dynamic table. */
export function hpackIndexed(name: string, value: string): Buffer {
  const nb = Buffer.from(name, 'latin1');
  const vb = Buffer.from(value, 'latin1');
  return Buffer.from([0x40, ...hpackInt(nb.length, 7, 0), ...nb, ...hpackInt(vb.length, 7, 0), ...vb]);
}

/** An indexed header field (RFC 7541 §6.1): a reference to table entry `index` (62 = newest dynamic entry). */
export function hpackRef(index: number): Buffer {
  return Buffer.from(hpackInt(index, 7, 0x80));
}

export function requestHeaders(authority: string, path: string, method = 'GET', extra: [string, string][] = []): Buffer {
  return hpack([[':method', method], [':scheme', 'https'], [':authority', authority], [':path', path], ...extra]);
}

export const settings = (pairs: [number, number][] = []): Buffer => {
  const p = Buffer.alloc(pairs.length * 6);
  pairs.forEach(([id, v], i) => { p.writeUInt16BE(id, i * 6); p.writeUInt32BE(v, i * 6 + 2); });
  return frame(T.SETTINGS, 0, 0, p);
};
export const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(n >>> 0); return b; };

export interface Frame { type: number; flags: number; stream: number; payload: Buffer }

/** A raw HTTP/2 connection over TLS (ALPN h2) that records every frame the server sends. */
export class RawH2 {
  readonly frames: Frame[] = [];
  closed = false;
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  bytesIn = 0;

  private constructor(readonly sock: TLSSocket) {
    sock.on('data', (d: Buffer) => { this.bytesIn += d.length; this.buf = Buffer.concat([this.buf, d]); this.split(); });
    sock.on('close', () => { this.closed = true; this.wake(); });
    sock.on('error', () => {});
  }

  /** A connected TLS socket the test writes to itself (an invalid preface). */
  static wrap(s: TLSSocket): RawH2 { return new RawH2(s); }

  static open(port: number, servername: string, ca: Buffer, initial: Buffer[] = [settings()]): Promise<RawH2> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, servername, ca, ALPNProtocols: ['h2'] }, () => {
        if (s.alpnProtocol !== 'h2') { reject(new Error(`ALPN ${String(s.alpnProtocol)}`)); return; }
        s.write(Buffer.concat([PREFACE, ...initial]));
        resolve(new RawH2(s));
      });
      s.once('error', reject);
    });
  }

  private split(): void {
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + len) break;
      this.frames.push({ type: this.buf[3], flags: this.buf[4], stream: this.buf.readUInt32BE(5) & 0x7fffffff, payload: this.buf.subarray(9, 9 + len) });
      this.buf = this.buf.subarray(9 + len);
    }
    this.wake();
  }

  private wake(): void { const w = this.waiters; this.waiters = []; for (const f of w) f(); }

  write(b: Buffer): boolean { return this.closed ? false : this.sock.write(b); }

  /** Waits until `pred` holds on the frames seen (or the connection closed), at most `ms`. */
  async until(pred: (f: Frame[]) => boolean, ms = 10_000): Promise<boolean> {
    const end = Date.now() + ms;
    while (!pred(this.frames)) {
      if (this.closed || Date.now() > end) return pred(this.frames);
      await new Promise<void>((r) => { this.waiters.push(r); setTimeout(r, 200).unref(); });
    }
    return true;
  }

  goaway(): { code: number } | null {
    const g = this.frames.find((f) => f.type === T.GOAWAY);
    return g === undefined ? null : { code: g.payload.readUInt32BE(4) };
  }

  /** The :status of a response on `stream`, read from a HEADERS frame HPACK-encoded by the server (indexed or literal status). */
  status(stream: number): number | null {
    const h = this.frames.find((f) => f.type === T.HEADERS && f.stream === stream);
    if (h === undefined) return null;
    const b = h.payload[0];
    // Static table entries 8–14 are :status 200, 204, 206, 304, 400, 404, 500.
    const STATIC: Record<number, number> = { 8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500 };
    if ((b & 0x80) !== 0) return STATIC[b & 0x7f] ?? null;
    // Literal with indexed name :status (index 8..14 share the name): the value follows as a string.
    const vlen = h.payload[1] & 0x7f;
    const huff = (h.payload[1] & 0x80) !== 0;
    if (!huff) return Number(h.payload.subarray(2, 2 + vlen).toString('latin1'));
    return decodeHuffmanDigits(h.payload.subarray(2, 2 + vlen));
  }

  close(): void { this.sock.destroy(); }
}

/** Huffman-decodes a string of digits (RFC 7541 Appendix B: '0'–'2' are 5 bits, '3'–'9' 6 bits). */
function decodeHuffmanDigits(b: Buffer): number | null {
  const codes5: Record<number, string> = { 0x0: '0', 0x1: '1', 0x2: '2' };
  const codes6: Record<number, string> = { 0x19: '3', 0x1a: '4', 0x1b: '5', 0x1c: '6', 0x1d: '7', 0x1e: '8', 0x1f: '9' };
  let bits = '';
  for (const x of b) bits += x.toString(2).padStart(8, '0');
  let out = '';
  let i = 0;
  while (i + 5 <= bits.length && out.length < 3) {
    const c5 = parseInt(bits.slice(i, i + 5), 2);
    if (codes5[c5] !== undefined) { out += codes5[c5]; i += 5; continue; }
    const c6 = parseInt(bits.slice(i, i + 6), 2);
    if (codes6[c6] !== undefined) { out += codes6[c6]; i += 6; continue; }
    return null;
  }
  return out.length === 3 ? Number(out) : null;
}
