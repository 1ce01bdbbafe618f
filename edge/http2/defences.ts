// The HTTP/2 denial-of-service defences that need to see frames (the rest are node:http2 settings,
// see session.ts): per-connection frame budgets over a fixed window, rapid reset, and the header
// block bound across CONTINUATION frames. Fed by the inbound FrameScanner; outbound DATA frames
// (from the outbound scanner) earn the client its WINDOW_UPDATE allowance.
import { FLAG_END_HEADERS, FLAG_END_STREAM, Frame } from './frame-scanner.js';
import type { Http2Settings } from './config.js';

/** Names of the defences, as they appear in events (`reason: h2_<name>`) and metrics (`defence`). */
export type Http2Defence = 'rapid_reset' | 'continuation_flood' | 'header_block_timeout' | 'settings_flood' | 'ping_flood'
  | 'priority_flood' | 'window_update_flood' | 'empty_data_flood' | 'write_stall' | 'header_list_too_large'
  | 'refused_stream' | 'protocol_error' | 'frame_size';

export const HTTP2_DEFENCES: readonly Http2Defence[] = ['rapid_reset', 'continuation_flood', 'header_block_timeout', 'settings_flood',
  'ping_flood', 'priority_flood', 'window_update_flood', 'empty_data_flood', 'write_stall', 'header_list_too_large', 'refused_stream',
  'protocol_error', 'frame_size'];

/** Largest frame payload we accept (SETTINGS_MAX_FRAME_SIZE keeps its default). */
const MAX_FRAME = 16384;
/**
 * CONTINUATION frames one header block may have: nghttp2's own limit (1.61, Node 20.20: 8). Beyond it
 * nghttp2 tears the session down with GOAWAY(INTERNAL_ERROR) and tells nobody; cut here first, so the
 * flood gets its GOAWAY(ENHANCE_YOUR_CALM), event and metric whichever limit a client reaches first.
 */
const MAX_CONTINUATIONS = 8;

export class FrameBudgets {
  private windowStart: number;
  private resetWindowStart: number;
  resets = 0;
  settings = 0;
  pings = 0;
  priorities = 0;
  windowUpdates = 0;
  emptyData = 0;
  /** DATA frames we sent in the window (each may earn the client two WINDOW_UPDATEs). */
  dataOut = 0;
  /** A header block is open (HEADERS or PUSH_PROMISE without END_HEADERS): since when, and its size so far. */
  blockSince = 0;
  blockBytes = 0;
  blockFrames = 0;
  /** What fired, with a detail for the event. */
  fired: Http2Defence | null = null;
  detail = '';

  constructor(private readonly s: Http2Settings, now: number) {
    this.windowStart = now;
    this.resetWindowStart = now;
  }

  /** Starts new windows when the old ones are over (called once per inbound chunk, not per frame). */
  tick(now: number): void {
    if (now - this.windowStart >= this.s.flood.windowMs) {
      this.windowStart = now;
      this.settings = 0; this.pings = 0; this.priorities = 0; this.windowUpdates = 0; this.emptyData = 0; this.dataOut = 0;
    }
    if (now - this.resetWindowStart >= this.s.rapidReset.windowMs) {
      this.resetWindowStart = now;
      this.resets = 0;
    }
  }

  /** One inbound frame; false when a defence fired (see `fired`). */
  inbound(type: number, flags: number, length: number, now: number): boolean {
    const f = this.s.flood;
    if (length > MAX_FRAME) return this.fire('frame_size', `frame of ${length} bytes (max ${MAX_FRAME})`);
    switch (type) {
      case Frame.Data:
        if (length === 0 && (flags & FLAG_END_STREAM) === 0 && ++this.emptyData > f.emptyData) return this.fire('empty_data_flood', `${this.emptyData} empty DATA frames`);
        break;
      case Frame.Headers:
        if (this.blockSince !== 0) return this.fire('protocol_error', 'HEADERS inside an open header block');
        if (length > this.s.maxHeaderBlock) return this.fire('continuation_flood', `header block of ${length} bytes`);
        if ((flags & FLAG_END_HEADERS) === 0) { this.blockSince = now; this.blockBytes = length; this.blockFrames = 0; }
        break;
      case Frame.Continuation:
        this.blockBytes += length;
        if (this.blockBytes > this.s.maxHeaderBlock) return this.fire('continuation_flood', `header block of ${this.blockBytes} bytes across CONTINUATION frames`);
        if (++this.blockFrames > MAX_CONTINUATIONS) return this.fire('continuation_flood', `${this.blockFrames} CONTINUATION frames in one header block (max ${MAX_CONTINUATIONS})`);
        if ((flags & FLAG_END_HEADERS) !== 0) { this.blockSince = 0; this.blockBytes = 0; this.blockFrames = 0; }
        break;
      case Frame.Priority:
        if (++this.priorities > f.priority) return this.fire('priority_flood', `${this.priorities} PRIORITY frames`);
        break;
      case Frame.RstStream:
        if (++this.resets > this.s.rapidReset.limit) return this.fire('rapid_reset', `${this.resets} streams reset`);
        break;
      case Frame.Settings:
        if (++this.settings > f.settings) return this.fire('settings_flood', `${this.settings} SETTINGS frames`);
        break;
      case Frame.Ping:
        if (++this.pings > f.ping) return this.fire('ping_flood', `${this.pings} PING frames`);
        break;
      case Frame.WindowUpdate:
        if (++this.windowUpdates > f.windowUpdate + 2 * this.dataOut) return this.fire('window_update_flood', `${this.windowUpdates} WINDOW_UPDATE frames for ${this.dataOut} DATA frames sent`);
        break;
    }
    return true;
  }

  // Write stalls, for both engines: streams waiting on a closed flow-control window, and whether any
  // DATA frame left since the first began to wait (dataOut restarts every flood window; this does not).
  private stalledStreams = 0;
  private stallSince = 0;
  private dataSent = 0;
  private dataAtStall = 0;

  /** A DATA frame with a payload left for the client. */
  sentData(): void { this.dataSent++; this.dataOut++; }

  /** A stream waits on a closed flow-control window. */
  streamStalled(now: number): void {
    if (this.stalledStreams++ === 0) { this.stallSince = now; this.dataAtStall = this.dataSent; }
  }

  streamUnstalled(): void { if (this.stalledStreams > 0) this.stalledStreams--; }

  /**
   * The connection deadlines the listener's scan checks, in the order both engines act on them: a header
   * block left unfinished (`timeouts.client_head`), a socket that has taken nothing (`socket_stall`: a
   * GOAWAY would not leave either, so the engine resets), streams whose windows stay closed while no DATA
   * frame leaves (`http2.write_stall`). Returns the one passed (its text in `detail`) or null.
   */
  deadline(now: number, headTimeoutMs: number, writeBlockedSince: number, writeStallMs: number): 'header_block_timeout' | 'socket_stall' | 'write_stall' | null {
    if (this.blockSince !== 0 && now - this.blockSince > headTimeoutMs) {
      this.detail = `header block unfinished after ${headTimeoutMs} ms (timeouts.client_head)`;
      return 'header_block_timeout';
    }
    if (writeBlockedSince !== 0 && now - writeBlockedSince > writeStallMs) {
      this.detail = `socket not drained for ${writeStallMs} ms (slow read)`;
      return 'socket_stall';
    }
    if (this.stalledStreams === 0) return null;
    if (this.dataSent !== this.dataAtStall) { this.dataAtStall = this.dataSent; this.stallSince = now; return null; }
    if (now - this.stallSince <= writeStallMs) return null;
    this.detail = `no DATA frame could be sent for ${writeStallMs} ms (flow-control window kept closed)`;
    return 'write_stall';
  }

  private fire(d: Http2Defence, detail: string): false {
    this.fired = d;
    const windowed = d.endsWith('_flood') && d !== 'continuation_flood';
    this.detail = d === 'rapid_reset' ? `${detail} in ${this.s.rapidReset.windowMs} ms` : windowed ? `${detail} in ${this.s.flood.windowMs} ms` : detail;
    return false;
  }
}
