// HTTP/2 frames on the wire (RFC 9113 §4, §6): type and flag numbers, error codes, and the writers
// of the frames the engine sends. Frames are written into fresh buffers (no pooling): each one goes
// into the connection's output batch and leaves with it.

import { FLAG_ACK, FLAG_END_HEADERS, FLAG_END_STREAM, Frame } from '../frame-scanner.js';

// Frame types, flags and the preface are the frame scanner's (the gate and the defences read the same).
export const T_DATA = Frame.Data, T_HEADERS = Frame.Headers, T_PRIORITY = Frame.Priority, T_RST_STREAM = Frame.RstStream,
  T_SETTINGS = Frame.Settings, T_PUSH_PROMISE = Frame.PushPromise, T_PING = Frame.Ping, T_GOAWAY = Frame.GoAway,
  T_WINDOW_UPDATE = Frame.WindowUpdate, T_CONTINUATION = Frame.Continuation;
export const F_END_STREAM = FLAG_END_STREAM, F_ACK = FLAG_ACK, F_END_HEADERS = FLAG_END_HEADERS, F_PADDED = 0x8, F_PRIORITY = 0x20;
export { PREFACE } from '../frame-scanner.js';

/** Error codes (RFC 9113 §7). */
export const E_NO_ERROR = 0x0, E_PROTOCOL = 0x1, E_INTERNAL = 0x2, E_FLOW_CONTROL = 0x3, E_SETTINGS_TIMEOUT = 0x4, E_STREAM_CLOSED = 0x5,
  E_FRAME_SIZE = 0x6, E_REFUSED_STREAM = 0x7, E_CANCEL = 0x8, E_COMPRESSION = 0x9, E_CONNECT = 0xa, E_ENHANCE_YOUR_CALM = 0xb,
  E_INADEQUATE_SECURITY = 0xc, E_HTTP_1_1_REQUIRED = 0xd;

/** SETTINGS identifiers (RFC 9113 §6.5.2). */
export const S_HEADER_TABLE_SIZE = 0x1, S_ENABLE_PUSH = 0x2, S_MAX_CONCURRENT_STREAMS = 0x3, S_INITIAL_WINDOW_SIZE = 0x4,
  S_MAX_FRAME_SIZE = 0x5, S_MAX_HEADER_LIST_SIZE = 0x6;

/** The default SETTINGS_MAX_FRAME_SIZE, which we keep for what we receive. */
export const MAX_FRAME = 16384;
export const MAX_WINDOW = 0x7fffffff;
export const DEFAULT_WINDOW = 65535;

export function writeHeader(b: Buffer, at: number, len: number, type: number, flags: number, id: number): void {
  b[at] = len >>> 16; b[at + 1] = (len >>> 8) & 0xff; b[at + 2] = len & 0xff;
  b[at + 3] = type; b[at + 4] = flags;
  b[at + 5] = (id >>> 24) & 0x7f; b[at + 6] = (id >>> 16) & 0xff; b[at + 7] = (id >>> 8) & 0xff; b[at + 8] = id & 0xff;
}

/** A frame with a 4-byte payload (RST_STREAM, WINDOW_UPDATE). */
export function frameU32(type: number, id: number, value: number): Buffer {
  const f = Buffer.allocUnsafe(13);
  writeHeader(f, 0, 4, type, 0, id);
  f.writeUInt32BE(value >>> 0, 9);
  return f;
}

export function goawayFrame(lastStream: number, code: number, debug = ''): Buffer {
  const d = Buffer.from(debug, 'latin1');
  const f = Buffer.allocUnsafe(17 + d.length);
  writeHeader(f, 0, 8 + d.length, T_GOAWAY, 0, 0);
  f.writeUInt32BE(lastStream & 0x7fffffff, 9);
  f.writeUInt32BE(code, 13);
  d.copy(f, 17);
  return f;
}

export function settingsFrame(pairs: readonly number[]): Buffer {
  const n = pairs.length / 2;
  const f = Buffer.allocUnsafe(9 + 6 * n);
  writeHeader(f, 0, 6 * n, T_SETTINGS, 0, 0);
  for (let i = 0; i < n; i++) { f.writeUInt16BE(pairs[2 * i], 9 + 6 * i); f.writeUInt32BE(pairs[2 * i + 1] >>> 0, 11 + 6 * i); }
  return f;
}

export const SETTINGS_ACK = ((): Buffer => { const f = Buffer.alloc(9); writeHeader(f, 0, 0, T_SETTINGS, F_ACK, 0); return f; })();

/**
 * A header block as HEADERS (+ CONTINUATION frames when it is larger than the peer's frame size),
 * appended to `out`. `flags`: END_STREAM or 0 (END_HEADERS is set on the last frame).
 */
export function pushHeaderFrames(out: Buffer[], id: number, block: Buffer, endStream: boolean, maxFrame: number): number {
  let bytes = 0;
  let off = 0;
  let first = true;
  do {
    const n = Math.min(maxFrame, block.length - off);
    const last = off + n === block.length;
    const f = Buffer.allocUnsafe(9 + n);
    const flags = (first && endStream ? F_END_STREAM : 0) | (last ? F_END_HEADERS : 0);
    writeHeader(f, 0, n, first ? T_HEADERS : T_CONTINUATION, flags, id);
    block.copy(f, 9, off, off + n);
    out.push(f);
    bytes += f.length;
    off += n;
    first = false;
  } while (off < block.length);
  return bytes;
}
