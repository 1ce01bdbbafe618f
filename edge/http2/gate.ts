// The stream node:http2 reads from and writes to, between it and the client's (TLS) socket. Inbound
// bytes pass the frame scanner before nghttp2 sees them, so a flood is cut before it costs more than
// a few byte reads per frame — and once a defence fired, not one more byte reaches the session.
// Outbound bytes pass a second scanner (our DATA frames earn WINDOW_UPDATE allowance; our RST_STREAM
// codes tell which streams nghttp2 refused), and a write the socket does not take is timed (slow read).
//
// Why a scanner here rather than node:http2's own knobs: nghttp2 has limits for some floods but keeps
// them to itself — no event, no metric, no client record — and none for PRIORITY, WINDOW_UPDATE or a
// CONTINUATION block's total size. Why not our own HTTP/2 stack: HPACK, flow control and stream states
// are where implementations go wrong; nghttp2 is the one HAProxy-grade clients are tested against.
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { FrameScanner, type FrameSink } from './frame-scanner.js';

/** What the gate reports to its connection. */
export interface GateOwner {
  /** An inbound frame (return false to stop reading: the connection is being closed). */
  inboundFrame(type: number, flags: number, stream: number, length: number, word: number): boolean;
  /** An inbound chunk is about to be scanned (one clock read per chunk). */
  inboundChunk(): void;
  /** A frame nghttp2 sent. */
  outboundFrame(type: number, flags: number, stream: number, length: number, word: number): void;
}

class InboundSink implements FrameSink {
  constructor(private readonly owner: GateOwner) {}
  onFrame(type: number, flags: number, stream: number, length: number, word: number): boolean {
    return this.owner.inboundFrame(type, flags, stream, length, word);
  }
}

class OutboundSink implements FrameSink {
  constructor(private readonly owner: GateOwner) {}
  onFrame(type: number, flags: number, stream: number, length: number, word: number): boolean {
    this.owner.outboundFrame(type, flags, stream, length, word);
    return true;
  }
}

export class FrameGate extends Duplex {
  private readonly inbound: FrameScanner;
  private readonly outbound: FrameScanner;
  /** Monotonic ms since which a write waits for the socket to drain, 0 when none waits. */
  writeBlockedSince = 0;
  private pendingCb: ((err?: Error | null) => void) | null = null;
  /** No more inbound bytes reach the session (a defence fired). */
  shut = false;
  // net.Socket-like fields node:http2 reads on the socket it is given.
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  readonly encrypted: boolean;
  readonly alpnProtocol: string | false;

  constructor(readonly sock: Socket, private readonly owner: GateOwner, private readonly now: () => number, prefaceExpected: boolean) {
    super({ allowHalfOpen: false, readableHighWaterMark: 64 * 1024, writableHighWaterMark: 64 * 1024 });
    this.inbound = new FrameScanner(new InboundSink(owner), prefaceExpected);
    this.outbound = new FrameScanner(new OutboundSink(owner), false);
    this.remoteAddress = sock.remoteAddress;
    this.remotePort = sock.remotePort;
    this.localAddress = sock.localAddress;
    this.localPort = sock.localPort;
    this.encrypted = (sock as { encrypted?: boolean }).encrypted === true;
    // node:http2 treats a socket whose ALPN is false or http/1.1 as "unknown protocol": h2c has none.
    this.alpnProtocol = (sock as { alpnProtocol?: string | false }).alpnProtocol || 'h2c';
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('end', () => this.push(null));
    sock.on('drain', () => this.onDrain());
    sock.on('close', () => this.destroy());
    sock.on('error', () => { /* 'close' follows */ });
  }

  /** Bytes read before the session existed (after a PROXY header, or the h2c preface sniff). */
  feed(bytes: Buffer): void { if (bytes.length > 0) this.onData(bytes); }

  private onData(chunk: Buffer): void {
    if (this.shut) return;
    this.owner.inboundChunk();
    if (!this.inbound.scan(chunk)) { this.shut = true; return; }
    if (!this.push(chunk)) this.sock.pause();
  }

  override _read(): void {
    if (!this.shut) this.sock.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.outbound.scan(chunk);
    this.send(chunk, cb);
  }

  /**
   * nghttp2 hands its frames over in several buffers at once: one socket write for all of them, so
   * the TLS layer seals one record instead of one per frame (the largest CPU item in the h2 profile).
   */
  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    let total = 0;
    for (let i = 0; i < chunks.length; i++) { this.outbound.scan(chunks[i].chunk); total += chunks[i].chunk.length; }
    const one = chunks.length === 1 ? chunks[0].chunk : Buffer.concat(chunks.map((c) => c.chunk), total);
    this.send(one, cb);
  }

  private send(chunk: Buffer, cb: (err?: Error | null) => void): void {
    if (this.sock.destroyed) { cb(); return; }
    if (this.sock.write(chunk)) { cb(); return; }
    // The socket's buffer is full (the client reads slowly or not at all): hold nghttp2 back until it drains.
    this.writeBlockedSince = this.now();
    this.pendingCb = cb;
  }

  private onDrain(): void {
    const cb = this.pendingCb;
    this.pendingCb = null;
    this.writeBlockedSince = 0;
    if (cb !== null) cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.sock.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    // A write still waiting for the socket to drain is not completed here: node:http2's stream wrapper
    // (JSStreamSocket) cancels its own pending write when it closes; completing it after the destroy
    // would hand it a callback for a request it no longer holds.
    this.pendingCb = null;
    if (!this.sock.destroyed) this.sock.destroy();
    cb(err);
  }

  // net.Socket methods node:http2 may call on its socket.
  setNoDelay(): this { return this; }
  setKeepAlive(): this { return this; }
  setTimeout(): this { return this; }
  ref(): this { return this; }
  unref(): this { return this; }
}
