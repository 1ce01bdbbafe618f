// One HTTP/2 client connection on the frame engine (listen[].http2_engine: portcullis): frames are
// read and written here, on the (TLS) socket, with no node:http2 session and no gate. The parse loop
// counts every inbound frame against the defences (FrameBudgets, the same budgets the gate feeds
// for the node engine) before acting on it, keeps the stream states of RFC 9113 §5.1, both
// directions of flow control, SETTINGS, PING, GOAWAY and RST_STREAM, and turns each request head
// into a Transaction through the same pipeline as the node engine (translate.ts, handleGuarded).
import type { Socket } from 'node:net';
import type { Transaction } from '../../pipeline/transaction.js';
import { http2Refused } from '../../pipeline/reply.js';
import type { ClientIO } from '../../pipeline/exchange.js';
import { handleGuarded } from '../../http1/connection.js';
import { dateValue } from '../../http1/response.js';
import type { Http2Context, Http2Handler } from '../connection.js';
import { FrameBudgets, type Http2Defence } from '../defences.js';
import { http2Transaction, refuseHead, translateRequest, type HeadRefusal, type TranslateContext } from '../translate.js';
import { CompressionError, HeaderDecoder, HeaderEncoder } from './hpack.js';
import { malformedRequest, malformedTrailers } from './check.js';
import { FrameStream, type StreamOwner } from './stream.js';
import {
  DEFAULT_WINDOW, E_COMPRESSION, E_ENHANCE_YOUR_CALM, E_FLOW_CONTROL, E_FRAME_SIZE, E_NO_ERROR, E_PROTOCOL, E_REFUSED_STREAM,
  E_STREAM_CLOSED, F_ACK, F_END_HEADERS, F_END_STREAM, F_PADDED, F_PRIORITY, MAX_FRAME, MAX_WINDOW, PREFACE, S_ENABLE_PUSH,
  S_HEADER_TABLE_SIZE, S_INITIAL_WINDOW_SIZE, S_MAX_CONCURRENT_STREAMS, S_MAX_FRAME_SIZE, S_MAX_HEADER_LIST_SIZE, SETTINGS_ACK,
  T_CONTINUATION, T_DATA, T_GOAWAY, T_HEADERS, T_PING, T_PRIORITY, T_PUSH_PROMISE, T_RST_STREAM, T_SETTINGS, T_WINDOW_UPDATE,
  frameU32, goawayFrame, pushHeaderFrames, settingsFrame, writeHeader,
} from './wire.js';

/** How often a connection's deadlines are looked at (by the listener's scan). */
const CHECK_MS = 250;
/** Connection-level receive window given back in steps of at least this many bytes. */
const CONN_CREDIT_STEP = DEFAULT_WINDOW >>> 1;
const EMPTY = Buffer.alloc(0);

/** A ClientIO for connection-level records (a defence's event and error count): nothing to write. */
const NO_IO: ClientIO = {
  aborted: true, responseStarted: false,
  attachBody() {}, resumeBody() {}, reply() {}, startResponse() {}, writeResponseBody() { return true; }, endResponse() {}, close() {},
};


export class FrameConnection implements StreamOwner {
  slot = -1;
  deadline: number;
  closed = false;
  readonly always: readonly string[];
  readonly maxBody: number;
  readonly handler: Http2Handler;
  private readonly budgets: FrameBudgets;
  private readonly tctx: TranslateContext;
  private readonly refusal: HeadRefusal = { status: 0, reason: '', expectContinue: false };
  private readonly dec: HeaderDecoder;
  private readonly enc = new HeaderEncoder();
  private readonly streams = new Map<number, FrameStream>();
  /** Streams with response bytes held by a window. */
  private readonly waiting = new Set<FrameStream>();
  private readonly resetIds = new Set<number>();
  /** Highest stream id the client opened (streams at or below it that are not in `streams` are closed). */
  private lastStream = 0;
  private prefaceLeft = PREFACE.length;
  private rest: Buffer | null = null;
  // An open header block (HEADERS without END_HEADERS): its stream, flags and fragments.
  private blockStream = 0;
  private blockFlags = 0;
  private blockParts: Buffer[] = [];
  // Flow control, what we send: the connection window and the client's settings.
  private sendWindow = DEFAULT_WINDOW;
  private peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrame = MAX_FRAME;
  // Flow control, what we receive.
  private recvWindow = DEFAULT_WINDOW;
  private recvUnacked = 0;
  private settingsAcked = false;
  private sawSettings = false;
  // Output: frames batched and written once per inbound chunk (or once per event-loop turn).
  private out: Buffer[] = [];
  private outBytes = 0;
  private inLoop = false;
  private flushScheduled = false;
  /** Counts flushed batches: a frame queued in the current batch can still be changed. */
  private batch = 0;
  /** Monotonic ms since which the socket has not taken our bytes, 0 when it does. */
  private writeBlockedSince = 0;
  socketBlocked = false;
  // Ending.
  private goingAway = false;
  private shut = false;
  private defended = false;
  // Deadlines.
  private idleSince: number;
  private chunkNow = 0;

  constructor(
    private readonly sock: Socket,
    readonly ctx: Http2Context,
    readonly remote: Uint8Array,
    readonly sni: string | null,
    private readonly raw: Socket,
    first: Buffer,
  ) {
    const now = ctx.clock.now();
    this.idleSince = now;
    this.deadline = now + CHECK_MS;
    this.always = ctx.always;
    this.maxBody = ctx.limits.maxBody;
    this.handler = ctx.handler;
    const s = ctx.settings;
    this.budgets = new FrameBudgets(s, now);
    this.dec = new HeaderDecoder(s.headerTableSize);
    this.tctx = { tls: ctx.tls, sni, limits: ctx.limits, sniMismatchStatus: ctx.tls ? s.sniMismatchStatus : 0 };
    sock.on('data', (c: Buffer) => this.onData(c));
    sock.on('drain', () => this.onDrain());
    sock.on('end', () => this.onEnd());
    sock.on('error', () => { /* 'close' follows */ });
    sock.on('close', () => this.onClose());
    // Our SETTINGS (RFC 9113 §3.4: the server preface), sent at once.
    const pairs = [S_MAX_CONCURRENT_STREAMS, s.maxConcurrentStreams, S_INITIAL_WINDOW_SIZE, s.initialWindowSize, S_ENABLE_PUSH, 0,
      S_MAX_HEADER_LIST_SIZE, s.maxHeaderListSize];
    if (s.headerTableSize !== 4096) pairs.push(S_HEADER_TABLE_SIZE, s.headerTableSize);
    this.queue(settingsFrame(pairs));
    this.flush();
    if (first.length > 0) this.onData(first);
    sock.resume();
  }

  /** Idle: no stream open (the listener closes idle connections first when it stops). */
  get current(): FrameConnection | null { return this.streams.size > 0 ? this : null; }

  // ---- output ----
  private queue(b: Buffer): void {
    this.out.push(b);
    this.outBytes += b.length;
    if (!this.inLoop && !this.flushScheduled) { this.flushScheduled = true; setImmediate(flushLater, this); }
  }

  /** One socket write (one TLS record run) for everything queued. */
  flush(): void {
    this.flushScheduled = false;
    const n = this.out.length;
    if (n === 0) return;
    this.batch++;
    const b = n === 1 ? this.out[0] : Buffer.concat(this.out, this.outBytes);
    this.out = [];
    this.outBytes = 0;
    if (this.closed || this.sock.destroyed || !this.sock.writable) return;
    if (!this.sock.write(b) && !this.socketBlocked) { this.socketBlocked = true; this.writeBlockedSince = this.ctx.clock.now(); }
  }

  private onDrain(): void {
    if (!this.socketBlocked) return;
    this.socketBlocked = false;
    this.writeBlockedSince = 0;
    for (const st of this.streams.values()) if (st.stalled && st.pendingBytes === 0) st.drained();
  }

  // ---- input ----
  private onData(chunk: Buffer): void {
    if (this.shut || this.closed) return;
    let buf = chunk;
    if (this.rest !== null) { buf = Buffer.concat([this.rest, chunk]); this.rest = null; }
    let p = 0;
    const n = buf.length;
    if (this.prefaceLeft > 0) {
      const off = PREFACE.length - this.prefaceLeft;
      const take = Math.min(this.prefaceLeft, n);
      if (buf.compare(PREFACE, off, off + take, 0, take) !== 0) { this.connectionError(E_PROTOCOL, 'invalid connection preface', false); return; }
      this.prefaceLeft -= take;
      p = take;
      if (this.prefaceLeft > 0) return;
    }
    const now = this.ctx.clock.now();
    this.chunkNow = now;
    this.budgets.tick(now);
    this.inLoop = true;
    try {
      while (n - p >= 9 && !this.shut) {
        const len = (buf[p] << 16) | (buf[p + 1] << 8) | buf[p + 2];
        const type = buf[p + 3];
        if (len > MAX_FRAME) {
          // RFC 9113 §4.2: a frame larger than SETTINGS_MAX_FRAME_SIZE is a FRAME_SIZE_ERROR (on the
          // connection: we cannot tell what state it would have changed).
          this.report('frame_size', `frame of ${len} bytes (max ${MAX_FRAME})`, true);
          this.connectionError(E_FRAME_SIZE, 'frame too large', false);
          return;
        }
        if (n - p - 9 < len) break;
        const flags = buf[p + 4];
        const id = ((buf[p + 5] & 0x7f) << 24 | buf[p + 6] << 16 | buf[p + 7] << 8 | buf[p + 8]) >>> 0;
        const start = p + 9;
        p = start + len;
        if (!this.sawSettings) {
          // RFC 9113 §3.4: the client preface ends with a SETTINGS frame.
          if (type !== T_SETTINGS || (flags & F_ACK) !== 0) { this.connectionError(E_PROTOCOL, 'client preface without SETTINGS'); return; }
          this.sawSettings = true;
        }
        // Inside a header block only its CONTINUATION frames may come (RFC 9113 §6.10).
        if (this.blockStream !== 0 && (type !== T_CONTINUATION || id !== this.blockStream)) { this.connectionError(E_PROTOCOL, 'frame inside a header block'); return; }
        // The defences, counted on the frame itself (no gate, no second scan).
        if (!this.budgets.inbound(type, flags, len, now)) { this.defend(this.budgets.fired as Http2Defence, this.budgets.detail); return; }
        this.frame(type, flags, id, buf, start, len);
      }
      if (p < n && !this.shut) this.rest = Buffer.from(buf.subarray(p));
    } finally {
      this.inLoop = false;
    }
    this.flush();
  }

  private frame(type: number, flags: number, id: number, buf: Buffer, start: number, len: number): void {
    switch (type) {
      case T_DATA: this.onDataFrame(id, flags, buf, start, len); return;
      case T_HEADERS: this.onHeaders(id, flags, buf, start, len); return;
      case T_CONTINUATION: this.onContinuation(id, flags, buf, start, len); return;
      case T_PRIORITY:
        // Ignored (RFC 9113 §5.3.2 deprecates the scheme), counted by the budgets, checked for form.
        if (id === 0) { this.connectionError(E_PROTOCOL, 'PRIORITY on stream 0'); return; }
        if (len !== 5) { this.streamError(id, E_FRAME_SIZE); return; }
        if ((buf.readUInt32BE(start) & 0x7fffffff) === id) this.streamError(id, E_PROTOCOL);
        return;
      case T_RST_STREAM: this.onRst(id, buf, start, len); return;
      case T_SETTINGS: this.onSettings(id, flags, buf, start, len); return;
      case T_PUSH_PROMISE: this.connectionError(E_PROTOCOL, 'PUSH_PROMISE from a client'); return;
      case T_PING:
        if (id !== 0) { this.connectionError(E_PROTOCOL, 'PING on a stream'); return; }
        if (len !== 8) { this.connectionError(E_FRAME_SIZE, 'PING of a wrong length'); return; }
        if ((flags & F_ACK) === 0) {
          const f = Buffer.allocUnsafe(17);
          writeHeader(f, 0, 8, T_PING, F_ACK, 0);
          buf.copy(f, 9, start, start + 8);
          this.queue(f);
        }
        return;
      case T_GOAWAY:
        if (id !== 0) { this.connectionError(E_PROTOCOL, 'GOAWAY on a stream'); return; }
        if (len < 8) { this.connectionError(E_FRAME_SIZE, 'GOAWAY too short'); return; }
        // The client leaves: no new streams; those in flight finish.
        this.goingAway = true;
        if (this.streams.size === 0) this.end();
        return;
      case T_WINDOW_UPDATE: this.onWindowUpdate(id, buf, start, len); return;
      default: return; // unknown frame types are ignored (RFC 9113 §4.1)
    }
  }

  // ---- streams: heads ----
  private onHeaders(id: number, flags: number, buf: Buffer, start: number, len: number): void {
    if (id === 0) { this.connectionError(E_PROTOCOL, 'HEADERS on stream 0'); return; }
    if ((id & 1) === 0) { this.connectionError(E_PROTOCOL, 'even stream id from a client'); return; }
    let s = start, e = start + len;
    if (flags & F_PADDED) {
      if (len < 1) { this.connectionError(E_FRAME_SIZE, 'padded HEADERS without a pad length'); return; }
      const pad = buf[s++];
      if (pad > e - s) { this.connectionError(E_PROTOCOL, 'padding longer than the frame'); return; }
      e -= pad;
    }
    if (flags & F_PRIORITY) {
      if (e - s < 5) { this.connectionError(E_FRAME_SIZE, 'HEADERS too short for its priority'); return; }
      if ((buf.readUInt32BE(s) & 0x7fffffff) === id) { s += 5; this.streamError(id, E_PROTOCOL); if (id > this.lastStream) this.lastStream = id; return; }
      s += 5;
    }
    const frag = buf.subarray(s, e);
    if (flags & F_END_HEADERS) { this.headerBlock(id, flags, frag); return; }
    this.blockStream = id;
    this.blockFlags = flags;
    this.blockParts = [Buffer.from(frag)];
  }

  private onContinuation(id: number, flags: number, buf: Buffer, start: number, len: number): void {
    if (this.blockStream === 0 || id !== this.blockStream) { this.connectionError(E_PROTOCOL, 'CONTINUATION without a header block'); return; }
    this.blockParts.push(Buffer.from(buf.subarray(start, start + len)));
    if ((flags & F_END_HEADERS) === 0) return;
    const block = this.blockParts.length === 1 ? this.blockParts[0] : Buffer.concat(this.blockParts);
    const f = this.blockFlags;
    this.blockStream = 0;
    this.blockParts = [];
    this.headerBlock(id, f, block);
  }

  private headerBlock(id: number, flags: number, block: Buffer): void {
    const s = this.ctx.settings;
    let list: string[];
    try {
      list = this.dec.decode(block, s.maxHeaderListSize, this.ctx.limits.maxHeaders + 8);
    } catch (e) {
      if (!(e instanceof CompressionError)) throw e;
      this.connectionError(E_COMPRESSION, 'HPACK block not decodable');
      return;
    }
    const endStream = (flags & F_END_STREAM) !== 0;
    const existing = this.streams.get(id);
    if (existing !== undefined) {
      // Trailers: they must end the stream (RFC 9113 §8.1).
      if (existing.remoteEnded) { this.streamError(id, E_STREAM_CLOSED); return; }
      const bad = this.dec.tooLarge ? 'trailers too large' : !endStream ? 'trailers without END_STREAM' : malformedTrailers(list);
      if (bad !== null) { this.resetStream(existing, E_PROTOCOL, bad); return; }
      existing.requestTrailers = list;
      this.remoteEnd(existing);
      return;
    }
    // A new stream's id must be above every earlier one (RFC 9113 §5.1.1); a closed stream cannot be
    // reopened either. Both are PROTOCOL_ERROR here, as nghttp2 answers them.
    if (id <= this.lastStream) {
      // Trailers of a stream we reset (answered early, refused) may still be on their way: ignored.
      if (this.resetIds.has(id)) return;
      this.connectionError(E_PROTOCOL, 'HEADERS on a closed stream or a stream id going backwards');
      return;
    }
    this.lastStream = id;
    if (this.goingAway) { this.refuse(id, E_REFUSED_STREAM); return; }
    if (this.dec.tooLarge) {
      this.refuse(id, E_ENHANCE_YOUR_CALM);
      this.report('header_list_too_large', `stream ${id}: decoded header list over ${s.maxHeaderListSize} bytes or ${this.ctx.limits.maxHeaders} fields`, false);
      return;
    }
    if (this.streams.size >= s.maxConcurrentStreams) {
      this.refuse(id, E_REFUSED_STREAM);
      this.report('refused_stream', `stream ${id} beyond max_concurrent_streams ${s.maxConcurrentStreams}`, false, true);
      return;
    }
    const bad = malformedRequest(list);
    if (bad !== null) {
      this.refuse(id, E_PROTOCOL);
      this.report('protocol_error', `stream ${id} malformed (RFC 9113 §8.1.1): ${bad}`, false);
      return;
    }
    const recv = this.settingsAcked ? s.initialWindowSize : Math.max(s.initialWindowSize, DEFAULT_WINDOW);
    const st = new FrameStream(this, id, this.peerInitialWindow, recv);
    this.streams.set(id, st);
    const tx = this.transactionFor(st);
    st.tx = tx;
    if (endStream) { st.bodyEnded = true; st.remoteEnded = true; tx.bodyComplete = true; }
    const r = this.refusal;
    if (!translateRequest(list, endStream, this.tctx, tx, r)) { refuseHead(list, r, tx, this.handler, st); return; }
    if (tx.bodyLength >= 0) st.declaredLength = tx.bodyLength;
    st.expectContinue = r.expectContinue;
    handleGuarded(this.handler, tx, st);
  }

  private transactionFor(io: ClientIO): Transaction { return http2Transaction(io, this.ctx, this.sni, this.remote); }

  // ---- streams: bodies and flow control ----
  private onDataFrame(id: number, flags: number, buf: Buffer, start: number, len: number): void {
    if (id === 0) { this.connectionError(E_PROTOCOL, 'DATA on stream 0'); return; }
    // Connection-level flow control counts every DATA frame, padding included, whatever its stream.
    this.recvWindow -= len;
    if (this.recvWindow < 0) { this.connectionError(E_FLOW_CONTROL, 'connection window exceeded'); return; }
    this.giveBack(len);
    const st = this.streams.get(id);
    if (st === undefined) {
      if (id > this.lastStream) this.connectionError(E_PROTOCOL, 'DATA on an idle stream');
      // DATA still on its way to a stream we reset is dropped (its window was counted above and is given back).
      else if (this.resetIds.has(id)) { /* nothing */ }
      else this.streamError(id, E_STREAM_CLOSED);
      return;
    }
    if (st.remoteEnded) { this.resetStream(st, E_STREAM_CLOSED, null); return; }
    let s = start, e = start + len;
    if (flags & F_PADDED) {
      if (len < 1) { this.connectionError(E_FRAME_SIZE, 'padded DATA without a pad length'); return; }
      const pad = buf[s++];
      if (pad > e - s) { this.connectionError(E_PROTOCOL, 'padding longer than the frame'); return; }
      e -= pad;
    }
    st.recvWindow -= len;
    if (st.recvWindow < 0) { this.resetStream(st, E_FLOW_CONTROL, null); return; }
    // The padding is never consumed by anyone: given back at once.
    const body = e - s;
    if (len > body) this.credit(st, len - body);
    st.received += body;
    const end = (flags & F_END_STREAM) !== 0;
    if (st.declaredLength >= 0 && (st.received > st.declaredLength || (end && st.received !== st.declaredLength))) {
      // RFC 9113 §8.1.1: DATA that disagrees with content-length makes the request malformed (the
      // transaction records a bad body, as the node engine does when nghttp2 resets such a stream).
      this.resetStream(st, E_PROTOCOL, 'request body does not match content-length (stream reset PROTOCOL_ERROR)');
      return;
    }
    // The last DATA frame: no window is given back for it (the stream is half-closed once delivered).
    if (end) st.remoteEnded = true;
    st.data(body === 0 ? EMPTY : buf.subarray(s, e), false);
    if (end) this.remoteEnd(st);
  }

  /** The client's side of `st` ended (END_STREAM on DATA or trailers). */
  private remoteEnd(st: FrameStream): void {
    st.remoteEnded = true;
    if (!st.bodyEnded) st.data(EMPTY, true);
    if (st.localEnded) this.closeStream(st, null);
  }

  /**
   * The connection window is given back as DATA arrives (each stream's own window bounds what waits
   * for the upstream, so the connection's need not): one slow upstream does not stall the others.
   */
  private giveBack(n: number): void {
    this.recvUnacked += n;
    if (this.recvUnacked >= CONN_CREDIT_STEP) { this.queue(frameU32(T_WINDOW_UPDATE, 0, this.recvUnacked)); this.recvWindow += this.recvUnacked; this.recvUnacked = 0; }
  }

  credit(st: FrameStream, n: number): void {
    if (st.closed || st.remoteEnded || n <= 0) return;
    st.unacked += n;
    const w = this.ctx.settings.initialWindowSize;
    if (st.unacked >= (w >>> 1) || st.unacked >= 16384) {
      this.queue(frameU32(T_WINDOW_UPDATE, st.id, st.unacked));
      st.recvWindow += st.unacked;
      st.unacked = 0;
    }
  }

  private onWindowUpdate(id: number, buf: Buffer, start: number, len: number): void {
    if (len !== 4) { this.connectionError(E_FRAME_SIZE, 'WINDOW_UPDATE of a wrong length'); return; }
    const inc = buf.readUInt32BE(start) & 0x7fffffff;
    if (id === 0) {
      if (inc === 0) { this.connectionError(E_PROTOCOL, 'WINDOW_UPDATE of 0'); return; }
      this.sendWindow += inc;
      if (this.sendWindow > MAX_WINDOW) { this.connectionError(E_FLOW_CONTROL, 'connection window over 2^31-1'); return; }
      this.pumpWaiting();
      return;
    }
    const st = this.streams.get(id);
    if (st === undefined) {
      if (id > this.lastStream) this.connectionError(E_PROTOCOL, 'WINDOW_UPDATE on an idle stream');
      return; // a closed stream: ignored (RFC 9113 §6.9)
    }
    if (inc === 0) { this.resetStream(st, E_PROTOCOL, null); return; }
    st.sendWindow += inc;
    if (st.sendWindow > MAX_WINDOW) { this.resetStream(st, E_FLOW_CONTROL, null); return; }
    if (st.waiting) this.pump(st);
  }

  private onSettings(id: number, flags: number, buf: Buffer, start: number, len: number): void {
    if (id !== 0) { this.connectionError(E_PROTOCOL, 'SETTINGS on a stream'); return; }
    if (flags & F_ACK) {
      if (len !== 0) { this.connectionError(E_FRAME_SIZE, 'SETTINGS ack with a payload'); return; }
      this.settingsAcked = true;
      return;
    }
    if (len % 6 !== 0) { this.connectionError(E_FRAME_SIZE, 'SETTINGS length not a multiple of 6'); return; }
    for (let q = start; q < start + len; q += 6) {
      const k = buf.readUInt16BE(q), v = buf.readUInt32BE(q + 2);
      switch (k) {
        case S_HEADER_TABLE_SIZE: this.enc.setTableSize(v); break;
        case S_ENABLE_PUSH: if (v > 1) { this.connectionError(E_PROTOCOL, 'ENABLE_PUSH not 0 or 1'); return; } break;
        case S_INITIAL_WINDOW_SIZE: {
          if (v > MAX_WINDOW) { this.connectionError(E_FLOW_CONTROL, 'INITIAL_WINDOW_SIZE over 2^31-1'); return; }
          const delta = v - this.peerInitialWindow;
          this.peerInitialWindow = v;
          for (const st of this.streams.values()) {
            st.sendWindow += delta;
            if (st.sendWindow > MAX_WINDOW) { this.connectionError(E_FLOW_CONTROL, 'a stream window over 2^31-1'); return; }
          }
          break;
        }
        case S_MAX_FRAME_SIZE:
          if (v < 16384 || v > 16777215) { this.connectionError(E_PROTOCOL, 'MAX_FRAME_SIZE out of range'); return; }
          this.peerMaxFrame = v;
          break;
        default: break; // MAX_CONCURRENT_STREAMS (we push nothing), MAX_HEADER_LIST_SIZE (advisory), unknown: ignored
      }
    }
    this.queue(SETTINGS_ACK);
    this.pumpWaiting();
  }

  private onRst(id: number, buf: Buffer, start: number, len: number): void {
    if (id === 0) { this.connectionError(E_PROTOCOL, 'RST_STREAM on stream 0'); return; }
    if (len !== 4) { this.connectionError(E_FRAME_SIZE, 'RST_STREAM of a wrong length'); return; }
    const st = this.streams.get(id);
    if (st === undefined) {
      if (id > this.lastStream) this.connectionError(E_PROTOCOL, 'RST_STREAM on an idle stream');
      return;
    }
    void buf;
    // The client gave up the stream: the exchange aborts (the upstream request with it).
    st.remoteEnded = true;
    st.localEnded = true;
    this.closeStream(st, null);
  }

  // ---- response side (StreamOwner) ----
  sendHeaders(st: FrameStream, list: string[], endStream: boolean): void {
    if (st.localEnded || this.closed) return;
    if (list.length >= 2 && list[0] === ':status' && list[1] !== '100') list.push('date', dateValue());
    const block = this.enc.encode(list);
    const frames: Buffer[] = [];
    pushHeaderFrames(frames, st.id, block, endStream, this.peerMaxFrame);
    for (let i = 0; i < frames.length; i++) this.queue(frames[i]);
    if (endStream) this.localEnd(st);
  }

  /**
   * Response body bytes (valid during the call only): framed straight from `chunk` as far as the
   * windows allow (one copy), the rest copied to the stream's pending list for pump().
   */
  writeBody(st: FrameStream, chunk: Buffer): void {
    if (st.closed || st.localEnded) return;
    let off = 0;
    if (st.pendingBytes === 0) {
      const max = this.peerMaxFrame;
      while (off < chunk.length) {
        const room = Math.min(st.sendWindow, this.sendWindow, max);
        if (room <= 0) break;
        const n = Math.min(room, chunk.length - off);
        this.dataFrame(st, chunk, off, n, false);
        off += n;
      }
    }
    if (off < chunk.length) {
      const rest = Buffer.from(off === 0 ? chunk : chunk.subarray(off));
      st.pending.push(rest);
      st.pendingBytes += rest.length;
      if (!st.waiting) { st.waiting = true; this.waiting.add(st); }
    }
  }

  /** One DATA frame of `n` bytes of `src` from `off`. */
  private dataFrame(st: FrameStream, src: Buffer, off: number, n: number, end: boolean): void {
    const f = Buffer.allocUnsafe(9 + n);
    writeHeader(f, 0, n, T_DATA, end ? F_END_STREAM : 0, st.id);
    src.copy(f, 9, off, off + n);
    st.sendWindow -= n;
    this.sendWindow -= n;
    this.budgets.sentData();
    this.queue(f);
    // Still in the unflushed batch: endResponse() may set END_STREAM on it instead of an empty frame.
    st.lastData = f;
    st.lastDataBatch = this.batch;
  }

  pump(st: FrameStream): void {
    if (st.closed || st.localEnded) return;
    const max = this.peerMaxFrame;
    while (st.pendingBytes > 0) {
      const room = Math.min(st.sendWindow, this.sendWindow, max);
      if (room <= 0) break;
      const head = st.pending[0];
      const n = Math.min(room, head.length);
      const last = n === st.pendingBytes && st.endQueued && st.trailers === null;
      this.dataFrame(st, head, 0, n, last);
      if (n === head.length) st.pending.shift(); else st.pending[0] = head.subarray(n);
      st.pendingBytes -= n;
      if (last) { this.localEnd(st); return; }
    }
    if (st.pendingBytes > 0) {
      if (!st.waiting) { st.waiting = true; this.waiting.add(st); }
      return;
    }
    if (st.waiting) { st.waiting = false; this.waiting.delete(st); }
    if (st.endQueued) {
      if (st.trailers !== null) this.sendHeaders(st, st.trailers, true);
      else if (st.lastData !== null && st.lastDataBatch === this.batch) {
        // The last DATA frame has not left yet: it carries END_STREAM (no empty frame after it).
        st.lastData[4] |= F_END_STREAM;
        this.localEnd(st);
      } else {
        const f = Buffer.allocUnsafe(9);
        writeHeader(f, 0, 0, T_DATA, F_END_STREAM, st.id);
        this.queue(f);
        this.localEnd(st);
      }
      return;
    }
    if (st.stalled && !this.socketBlocked) st.drained();
  }

  private pumpWaiting(): void {
    if (this.waiting.size === 0) return;
    for (const st of [...this.waiting]) { if (this.sendWindow <= 0) break; this.pump(st); }
  }

  /** Our side of `st` ended (END_STREAM sent). */
  private localEnd(st: FrameStream): void {
    st.localEnded = true;
    if (st.remoteEnded) this.closeStream(st, null);
    else st.responseSent();
  }

  reset(st: FrameStream, code: number): void { this.resetStream(st, code, null); }

  /** RST_STREAM for a stream that never became ours (refused): remembered like a reset one. */
  private refuse(id: number, code: number): void {
    this.queue(frameU32(T_RST_STREAM, id, code));
    this.remember(id);
  }

  /** Streams we reset, whose late frames (DATA, trailers) are dropped; the last 128 are kept. */
  private remember(id: number): void {
    if (this.resetIds.size >= 128) this.resetIds.clear();
    this.resetIds.add(id);
  }

  private resetStream(st: FrameStream, code: number, reason: string | null): void {
    if (st.closed) return;
    this.queue(frameU32(T_RST_STREAM, st.id, code));
    this.remember(st.id);
    st.remoteEnded = true;
    st.localEnded = true;
    this.closeStream(st, reason);
  }

  /** A stream error on a stream we do not hold (closed or never opened). */
  private streamError(id: number, code: number): void {
    const st = this.streams.get(id);
    if (st !== undefined) { this.resetStream(st, code, null); return; }
    this.queue(frameU32(T_RST_STREAM, id, code));
  }

  private closeStream(st: FrameStream, reason: string | null): void {
    if (st.closed) return;
    st.closed = true;
    if (st.waiting) { st.waiting = false; this.waiting.delete(st); }
    this.streams.delete(st.id);
    if (this.streams.size === 0) this.idleSince = this.ctx.clock.now();
    st.onClosed(reason);
    if (this.goingAway && this.streams.size === 0) this.end();
  }

  streamStalled(_st: FrameStream): void { this.budgets.streamStalled(this.ctx.clock.now()); }

  streamUnstalled(_st: FrameStream): void { this.budgets.streamUnstalled(); }

  // ---- errors and defences ----
  /** RFC 9113 §5.4.1: GOAWAY with `code`, then close. `report`: also a protocol_error event (the client broke the protocol). */
  private connectionError(code: number, detail: string, report = true): void {
    if (this.shut) return;
    if (report && code !== E_NO_ERROR) this.report('protocol_error', detail, true);
    this.shut = true;
    this.queue(goawayFrame(this.lastStream, code));
    this.finish();
  }

  /** A defence fired: report it, read nothing more, GOAWAY(ENHANCE_YOUR_CALM) and close. */
  private defend(defence: Http2Defence, detail: string): void {
    if (this.defended || this.closed) return;
    this.defended = true;
    this.report(defence, detail, true);
    if (this.shut) { this.destroy(); return; }
    this.shut = true;
    this.queue(goawayFrame(this.lastStream, E_ENHANCE_YOUR_CALM));
    this.finish();
  }

  /** After a GOAWAY of ours: streams in flight are aborted, the bytes leave, the socket closes. */
  private finish(): void {
    this.inLoop = false;
    this.flush();
    this.abortStreams();
    if (!this.sock.destroyed) this.sock.end();
    // Give the GOAWAY a moment to leave, then close whatever the client still holds open.
    const t = setTimeout(() => this.destroy(), 50);
    t.unref();
  }

  private abortStreams(): void {
    if (this.streams.size === 0) return;
    for (const st of [...this.streams.values()]) { st.remoteEnded = true; st.localEnded = true; this.closeStream(st, null); }
  }

  /**
   * `request`: the frame was a request refused before it became a stream (REFUSED_STREAM): one access
   * line too, as the node engine logs it (status 0, termination PR).
   */
  private report(defence: Http2Defence, detail: string, closed: boolean, request = false): void {
    const tx = this.transactionFor(NO_IO);
    tx.method = '<H2>';
    http2Refused(tx);
    this.handler.http2Defence(tx, defence, detail, closed, request);
  }

  // ---- deadlines (listener scan) ----
  expire(): void {
    if (this.closed) return;
    const now = this.ctx.clock.now();
    this.deadline = now + CHECK_MS;
    const s = this.ctx.settings;
    const b = this.budgets;
    const passed = b.deadline(now, this.ctx.headTimeoutMs, this.writeBlockedSince, s.writeStallMs);
    if (passed === 'socket_stall') {
      // The socket takes nothing: a GOAWAY would not leave either. Reset.
      this.report('write_stall', b.detail, true);
      this.defended = true;
      this.abort();
      return;
    }
    if (passed !== null) { this.defend(passed, b.detail); return; }
    if (this.prefaceLeft > 0 && now - this.idleSince > this.ctx.headTimeoutMs) { this.destroy(); return; }
    if (this.streams.size === 0 && now - this.idleSince > this.ctx.idleTimeoutMs) this.drain(true);
  }

  /** Graceful end: GOAWAY(NO_ERROR); streams in flight finish. `now`: close at once when idle. */
  drain(now = false): void {
    if (this.closed) return;
    if (!this.goingAway && !this.shut) {
      this.goingAway = true;
      this.queue(goawayFrame(this.lastStream, E_NO_ERROR));
      this.flush();
    }
    if (this.streams.size === 0) {
      if (now) { const t = setTimeout(() => this.destroy(), 50); t.unref(); } else this.end();
    }
  }

  /** Nothing more to say: flush and end our side. */
  private end(): void {
    if (this.shut) return;
    this.shut = true;
    this.flush();
    if (!this.sock.destroyed) this.sock.end();
    const t = setTimeout(() => this.destroy(), 1000);
    t.unref();
  }

  private onEnd(): void {
    // The client closed its side: what it sent is all there is.
    this.shut = true;
    this.abortStreams();
    if (!this.sock.destroyed) this.sock.end();
  }

  destroy(): void {
    if (this.closed) return;
    if (!this.sock.destroyed) this.sock.destroy();
    this.onClose();
  }

  private abort(): void {
    try { this.raw.resetAndDestroy(); } catch { this.raw.destroy(); }
    this.destroy();
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.shut = true;
    this.abortStreams();
    this.out = [];
    this.ctx.connectionClosed(this);
  }
}

function flushLater(c: FrameConnection): void { c.flush(); }
