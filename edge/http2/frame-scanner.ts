// A cheap HTTP/2 frame-header scanner for a byte stream (RFC 9113 §4.1): it reads each 9-byte frame
// header and the first 4 payload bytes (RST_STREAM's error code, WINDOW_UPDATE's increment) and skips
// the rest of the payload without copying. node:http2 hides frames from JavaScript; this sees every one
// of them, on the decrypted stream, for the cost of a few byte reads per frame.

export const enum Frame { Data = 0, Headers = 1, Priority = 2, RstStream = 3, Settings = 4, PushPromise = 5, Ping = 6, GoAway = 7, WindowUpdate = 8, Continuation = 9 }
export const FLAG_END_STREAM = 0x1;
export const FLAG_END_HEADERS = 0x4;
export const FLAG_ACK = 0x1;

/** Told about each frame header once its first min(length, 4) payload bytes are known. */
export interface FrameSink {
  /** `word`: the first 4 payload bytes as an unsigned integer (0 when the payload is shorter). False stops the scan. */
  onFrame(type: number, flags: number, stream: number, length: number, word: number): boolean;
}

/** The client connection preface (RFC 9113 §3.4), skipped before the first frame. */
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export class FrameScanner {
  /** Bytes of the frame header (9) + first payload word (4) collected so far. */
  private readonly hdr = new Uint8Array(13);
  private fill = 0;
  /** How many of hdr's bytes this frame needs (9 + min(length, 4)), 9 until the length is known. */
  private need = 9;
  /** Payload bytes of the current frame still to skip. */
  private skip = 0;
  /** Preface bytes still to skip (inbound only). */
  private preface: number;
  stopped = false;

  constructor(private readonly sink: FrameSink, skipPreface: boolean) {
    this.preface = skipPreface ? PREFACE.length : 0;
  }

  /** Scans a chunk; false once the sink stopped the scan (the chunk must not be passed on). */
  scan(buf: Uint8Array): boolean {
    if (this.stopped) return false;
    let p = 0;
    const n = buf.length;
    if (this.preface > 0) {
      const take = Math.min(this.preface, n);
      this.preface -= take;
      p = take;
    }
    const h = this.hdr;
    while (p < n) {
      if (this.skip > 0) {
        const take = Math.min(this.skip, n - p);
        this.skip -= take;
        p += take;
        continue;
      }
      // Fast path: the whole frame header and first payload word are in this chunk (nearly always: a
      // chunk is a TLS record's worth of frames) — read in place, no copy into hdr.
      if (this.fill === 0 && n - p >= 9) {
        const length = (buf[p] << 16) | (buf[p + 1] << 8) | buf[p + 2];
        const wl = length < 4 ? length : 4;
        if (n - p >= 9 + wl) {
          const at = p;
          p += 9 + wl;
          if (!this.frame(buf, at, length, wl)) return false;
          continue;
        }
      }
      // collecting the header (and the first payload word) across chunks
      while (this.fill < this.need && p < n) {
        h[this.fill++] = buf[p++];
        if (this.fill === 9) {
          const len = (h[0] << 16) | (h[1] << 8) | h[2];
          this.need = 9 + (len < 4 ? len : 4);
        }
      }
      if (this.fill < this.need) return true;
      const wl = this.need - 9;
      this.fill = 0;
      this.need = 9;
      if (!this.frame(h, 0, (h[0] << 16) | (h[1] << 8) | h[2], wl)) return false;
    }
    return true;
  }

  /**
   * Reports the frame whose 9-byte header (and first `wl` = min(length, 4) payload bytes) start at
   * b[at] — in the chunk itself or in hdr when it arrived split — and sets the payload left to skip.
   */
  private frame(b: Uint8Array, at: number, length: number, wl: number): boolean {
    const stream = ((b[at + 5] & 0x7f) << 24 | (b[at + 6] << 16) | (b[at + 7] << 8) | b[at + 8]) >>> 0;
    const word = wl === 4 ? ((b[at + 9] << 24) | (b[at + 10] << 16) | (b[at + 11] << 8) | b[at + 12]) >>> 0 : 0;
    this.skip = length - wl;
    if (this.sink.onFrame(b[at + 3], b[at + 4], stream, length, word)) return true;
    this.stopped = true;
    return false;
  }
}
