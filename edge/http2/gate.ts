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
import { EventEmitter } from 'node:events';
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

/**
 * What node:http2's stream wrapper (JSStreamSocket, lib/internal/js_stream_socket.js) uses of the stream
 * it wraps — and nothing more: pause/resume, 'data' / 'end' / 'close' / 'error', cork + write(buf, cb) +
 * uncork, end(cb), destroy, `readable`, `writable`, `_readableState.objectMode`. Not a stream.Duplex: its
 * Readable buffer and Writable queue (two state machines, a nextTick per write callback) sat between
 * the socket and nghttp2 on every chunk in both directions and did nothing the socket does not do
 * already (the socket buffers; pausing it is the back-pressure).
 */
export class FrameGate extends EventEmitter {
  private readonly inbound: FrameScanner;
  private readonly outbound: FrameScanner;
  /** Monotonic ms since which a write waits for the socket to drain, 0 when none waits. */
  writeBlockedSince = 0;
  /** Write callbacks held until the socket drains (the client reads slowly or not at all). */
  private blockedCbs: WriteCb[] | null = null;
  /** No more inbound bytes reach the session (a defence fired). */
  shut = false;
  destroyed = false;
  readable = true;
  writable = true;
  /** JSStreamSocket refuses object-mode streams by looking here. */
  readonly _readableState = { objectMode: false };
  /** The session asked for no more data (readStop): chunks the socket still delivers are held. */
  private paused = true;
  private held: Buffer[] | null = null;
  private heldBytes = 0;
  private sockPaused = false;
  /** The client ended its side (emitted as 'end' once the held chunks are delivered). */
  private ended = false;
  private corked = 0;
  private corkedBufs: Buffer[] = [];
  private corkedCbs: WriteCb[] = [];
  private corkedBytes = 0;
  // net.Socket-like fields node:http2 reads on the socket it is given.
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  readonly encrypted: boolean;
  readonly alpnProtocol: string | false;

  constructor(readonly sock: Socket, private readonly owner: GateOwner, private readonly now: () => number, prefaceExpected: boolean) {
    super();
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
    sock.on('end', () => { this.ended = true; if (this.held === null) this.emitEnd(); });
    sock.on('drain', () => this.onDrain());
    sock.on('close', () => this.destroy());
    sock.on('error', () => { /* 'close' follows */ });
  }

  /** Bytes read before the session existed (after a PROXY header, or the h2c preface sniff). */
  feed(bytes: Buffer): void { if (bytes.length > 0) this.onData(bytes); }

  private onData(chunk: Buffer): void {
    if (this.shut || this.destroyed) return;
    this.owner.inboundChunk();
    if (!this.inbound.scan(chunk)) { this.shut = true; return; }
    if (this.paused) {
      // Held for the session; the socket itself stops only past 64 KB (as a Readable's buffer would):
      // nghttp2 stops and restarts reading often, a socket pause per chunk would cost more than it saves.
      (this.held ??= []).push(chunk);
      this.heldBytes += chunk.length;
      if (this.heldBytes > HELD_MAX && !this.sockPaused) { this.sockPaused = true; this.sock.pause(); }
      return;
    }
    this.emit('data', chunk);
  }

  private emitEnd(): void {
    if (this.destroyed || !this.readable) return;
    this.readable = false;
    this.emit('end');
  }

  pause(): this {
    this.paused = true;
    return this;
  }

  resume(): this {
    this.paused = false;
    const held = this.held;
    if (held !== null) {
      this.held = null;
      this.heldBytes = 0;
      let i = 0;
      while (i < held.length && !this.paused && !this.destroyed) this.emit('data', held[i++]);
      if (this.destroyed) return this;
      if (i < held.length) {
        const rest = held.slice(i).concat(this.held ?? []);
        this.held = rest;
        for (let k = 0; k < rest.length; k++) this.heldBytes += rest[k].length;
        return this;
      }
      if (this.paused) return this;
      if (this.ended) { this.emitEnd(); return this; }
    }
    if (this.sockPaused && !this.shut && !this.destroyed) { this.sockPaused = false; this.sock.resume(); }
    return this;
  }

  cork(): void { this.corked++; }

  /**
   * nghttp2 hands its frames over in several buffers at once (cork, write…, uncork): one socket write
   * for all of them, so the TLS layer seals one record instead of one per frame.
   */
  uncork(): void {
    if (this.corked === 0 || --this.corked > 0 || this.corkedBufs.length === 0) return;
    const bufs = this.corkedBufs;
    const cbs = this.corkedCbs;
    const one = bufs.length === 1 ? bufs[0] : Buffer.concat(bufs, this.corkedBytes);
    this.corkedBufs = [];
    this.corkedCbs = [];
    this.corkedBytes = 0;
    this.send(one, cbs);
  }

  write(chunk: Buffer, cb?: WriteCb): boolean {
    if (this.destroyed) { if (cb) process.nextTick(cb); return false; }
    this.outbound.scan(chunk);
    if (this.corked > 0) {
      this.corkedBufs.push(chunk);
      this.corkedBytes += chunk.length;
      if (cb) this.corkedCbs.push(cb);
      return true;
    }
    this.send(chunk, cb ? [cb] : []);
    return this.blockedCbs === null;
  }

  /** Callbacks run once the socket took the bytes (at once, unless its buffer is full). */
  private send(chunk: Buffer, cbs: WriteCb[]): void {
    if (this.sock.destroyed || this.sock.write(chunk)) { for (let i = 0; i < cbs.length; i++) cbs[i](); return; }
    // The socket's buffer is full (the client reads slowly or not at all): hold nghttp2 back until it drains.
    if (this.blockedCbs === null) { this.writeBlockedSince = this.now(); this.blockedCbs = cbs; } else for (const cb of cbs) this.blockedCbs.push(cb);
  }

  private onDrain(): void {
    const cbs = this.blockedCbs;
    this.blockedCbs = null;
    this.writeBlockedSince = 0;
    if (cbs !== null) for (let i = 0; i < cbs.length; i++) cbs[i]();
  }

  end(cb?: () => void): this {
    this.writable = false;
    if (!this.sock.destroyed) this.sock.end();
    if (cb) process.nextTick(cb);
    return this;
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.readable = false;
    this.writable = false;
    this.held = null;
    // A write still waiting for the socket to drain is not completed here: node:http2's stream wrapper
    // (JSStreamSocket) cancels its own pending write when it closes; completing it after the destroy
    // would hand it a callback for a request it no longer holds.
    this.blockedCbs = null;
    this.corkedCbs = [];
    this.corkedBufs = [];
    if (!this.sock.destroyed) this.sock.destroy();
    process.nextTick(() => this.emit('close'));
    return this;
  }

  // net.Socket methods node:http2 may call on its socket.
  setNoDelay(): this { return this; }
  setKeepAlive(): this { return this; }
  setTimeout(): this { return this; }
  ref(): this { return this; }
  unref(): this { return this; }
}

type WriteCb = (err?: Error | null) => void;

/** Inbound bytes held while the session does not read before the socket is paused. */
const HELD_MAX = 64 * 1024;
