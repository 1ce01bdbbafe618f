// HTTP/2 direct-answer servers for the issue-17 prototype measurement (not shipped code; nothing in
// edge/ imports this). Every stream gets `200`, content-type text/plain, a date, and a 100-byte body.
//
//   node bench/h2-frame-layer/server.mjs MODE PORT CERT KEY
//
// MODE
//   frame      our own frame layer on node:tls (ALPN h2): frame parser/writer, SETTINGS, HEADERS +
//              CONTINUATION, DATA, WINDOW_UPDATE, PING, RST_STREAM, GOAWAY, flow control, HPACK from
//              hpack.js — with Portcullis's frame budgets (dist/edge/http2/defences.js) counted on every
//              inbound frame, as a frame layer of our own would do them in place of the gate
//   node       node:http2 createSecureServer, stream.respond + end (the floor)
//   node-gate  node:http2 sessions on Portcullis's FrameGate (dist/edge/http2/gate.js: JSStreamSocket
//              plumbing + both frame scanners) over node:tls, as the production path has them
//
// Prints "ready PORT" on stdout when listening. Needs a build (dist/) for frame and node-gate.
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import http2 from 'node:http2';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { HeaderDecoder, HeaderEncoder, ListTooLarge } from './hpack.mjs';

const [mode, portArg, certFile, keyFile] = process.argv.slice(2);
const cert = readFileSync(certFile);
const key = readFileSync(keyFile);
const BODY = Buffer.alloc(100, 'x');
const MAX_STREAMS = 100;
const TABLE_SIZE = 4096;
const INITIAL_WINDOW = 65535;
const MAX_HEADER_LIST = 32 * 1024;

// A date header as node:http2 and Portcullis send one (refreshed once a second).
let date = new Date().toUTCString();
setInterval(() => { date = new Date().toUTCString(); }, 1000).unref();

// H2FL_DIST: another build's dist/ (run.mjs's node-gate@DIST: A/B of two gates).
const dist = process.env.H2FL_DIST ? pathToFileURL(`${resolve(process.env.H2FL_DIST)}/`) : new URL('../../dist/', import.meta.url);
let server;
if (mode === 'node') {
  server = http2.createSecureServer({ key, cert, settings: { maxConcurrentStreams: MAX_STREAMS, initialWindowSize: INITIAL_WINDOW, enablePush: false } });
  server.on('stream', (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': 100 });
    stream.end(BODY);
  });
} else if (mode === 'node-gate') {
  const { FrameGate } = await import(new URL('edge/http2/gate.js', dist));
  const owner = { inboundFrame: () => true, inboundChunk() {}, outboundFrame() {} };
  const factory = http2.createServer({ settings: { maxConcurrentStreams: MAX_STREAMS, initialWindowSize: INITIAL_WINDOW, enablePush: false } });
  factory.on('stream', (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': 100 });
    stream.end(BODY);
  });
  server = tls.createServer({ key, cert, ALPNProtocols: ['h2'] }, (sock) => {
    const gate = new FrameGate(sock, owner, () => performance.now(), true);
    factory.emit('connection', gate);
  });
} else if (mode === 'frame') {
  const { FrameBudgets } = await import(new URL('edge/http2/defences.js', dist));
  const { normalizeHttp2 } = await import(new URL('edge/http2/config.js', dist));
  const h2settings = normalizeHttp2({}, MAX_HEADER_LIST, 30_000, 0);
  server = tls.createServer({ key, cert, ALPNProtocols: ['h2'] }, (sock) => new Connection(sock, h2settings, FrameBudgets));
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
server.listen(Number(portArg), '127.0.0.1', () => console.log(`ready ${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));

// ---------------------------------------------------------------------------------------------------
// The frame layer.

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const T_DATA = 0, T_HEADERS = 1, T_PRIORITY = 2, T_RST = 3, T_SETTINGS = 4, T_PUSH = 5, T_PING = 6, T_GOAWAY = 7, T_WU = 8, T_CONT = 9;
const F_END_STREAM = 0x1, F_ACK = 0x1, F_END_HEADERS = 0x4, F_PADDED = 0x8, F_PRIORITY = 0x20;
const E_NO_ERROR = 0, E_PROTOCOL = 1, E_FLOW = 3, E_FRAME_SIZE = 6, E_REFUSED = 7, E_COMPRESSION = 9, E_CALM = 11;

class Stream {
  constructor(id, sendWindow) {
    this.id = id;
    this.sendWindow = sendWindow;
    this.recvWindow = INITIAL_WINDOW;
    this.remoteEnded = false;
    /** Response DATA not yet sent (flow control), or null. */
    this.pending = null;
  }
}

class Connection {
  constructor(sock, settings, Budgets) {
    this.sock = sock;
    this.budgets = new Budgets(settings, performance.now());
    this.maxHeaderBlock = settings.maxHeaderBlock;
    this.prefaceLeft = PREFACE.length;
    this.rest = null;
    this.dec = new HeaderDecoder(TABLE_SIZE);
    this.enc = new HeaderEncoder();
    this.streams = new Map();
    this.lastStream = 0;
    this.sendWindow = 65535;
    this.peerInitialWindow = 65535;
    this.peerMaxFrame = 16384;
    this.recvUnacked = 0;
    this.blocked = 0; // streams waiting on a window
    // An open header block (HEADERS without END_HEADERS): its stream, flags and fragments.
    this.blockStream = 0;
    this.blockFlags = 0;
    this.blockParts = null;
    this.out = [];
    this.outBytes = 0;
    this.closing = false;
    sock.on('data', (c) => this.onData(c));
    sock.on('error', () => {});
    sock.on('close', () => { this.closing = true; this.streams.clear(); });
    // Our SETTINGS: max concurrent streams, initial window, no push.
    const s = Buffer.allocUnsafe(9 + 18);
    frameHeader(s, 0, 18, T_SETTINGS, 0, 0);
    s.writeUInt16BE(0x3, 9); s.writeUInt32BE(MAX_STREAMS, 11);
    s.writeUInt16BE(0x4, 15); s.writeUInt32BE(INITIAL_WINDOW, 17);
    s.writeUInt16BE(0x2, 21); s.writeUInt32BE(0, 23);
    this.queue(s);
    this.flush();
  }

  queue(b) { this.out.push(b); this.outBytes += b.length; }

  /** One socket write (one TLS record run) per inbound chunk. */
  flush() {
    const n = this.out.length;
    if (n === 0 || this.closing) { this.out.length = 0; this.outBytes = 0; return; }
    const b = n === 1 ? this.out[0] : Buffer.concat(this.out, this.outBytes);
    this.out = [];
    this.outBytes = 0;
    this.sock.write(b);
  }

  onData(chunk) {
    if (this.closing) return;
    let buf = chunk;
    if (this.rest !== null) { buf = Buffer.concat([this.rest, chunk]); this.rest = null; }
    let p = 0;
    const n = buf.length;
    if (this.prefaceLeft > 0) {
      const take = Math.min(this.prefaceLeft, n);
      if (buf.compare(PREFACE, PREFACE.length - this.prefaceLeft, PREFACE.length - this.prefaceLeft + take, 0, take) !== 0) return this.goaway(E_PROTOCOL);
      this.prefaceLeft -= take;
      p = take;
    }
    const b = this.budgets;
    const now = performance.now();
    b.tick(now);
    while (n - p >= 9) {
      const len = (buf[p] << 16) | (buf[p + 1] << 8) | buf[p + 2];
      if (len > 16384) return this.goaway(E_FRAME_SIZE);
      if (n - p - 9 < len) break;
      const type = buf[p + 3];
      const flags = buf[p + 4];
      const id = buf.readUInt32BE(p + 5) & 0x7fffffff;
      // The defences, counted on the frame itself (no gate, no second scan).
      if (!b.inbound(type, flags, len, now)) return this.goaway(E_CALM);
      const start = p + 9;
      p = start + len;
      if (this.blockStream !== 0 && type !== T_CONT) return this.goaway(E_PROTOCOL);
      switch (type) {
        case T_HEADERS: this.onHeaders(id, flags, buf, start, len); break;
        case T_CONT: this.onContinuation(id, flags, buf, start, len); break;
        case T_DATA: this.onDataFrame(id, flags, buf, start, len); break;
        case T_SETTINGS: this.onSettings(flags, buf, start, len); break;
        case T_WU: this.onWindowUpdate(id, buf.readUInt32BE(start) & 0x7fffffff); break;
        case T_PING: if ((flags & F_ACK) === 0) { const f = Buffer.allocUnsafe(17); frameHeader(f, 0, 8, T_PING, F_ACK, 0); buf.copy(f, 9, start, start + 8); this.queue(f); } break;
        case T_RST: this.streams.delete(id); break;
        case T_GOAWAY: this.closing = true; this.flushAndEnd(); return;
        case T_PRIORITY: case T_PUSH: default: break;
      }
      if (this.closing) return;
    }
    if (p < n) this.rest = Buffer.from(buf.subarray(p));
    this.flush();
  }

  onHeaders(id, flags, buf, start, len) {
    if (id === 0 || (id & 1) === 0) return this.goaway(E_PROTOCOL);
    let s = start, e = start + len;
    if (flags & F_PADDED) { const pad = buf[s++]; e -= pad; }
    if (flags & F_PRIORITY) s += 5;
    if (s > e) return this.goaway(E_PROTOCOL);
    const frag = buf.subarray(s, e);
    if (flags & F_END_HEADERS) return this.headerBlock(id, flags, frag);
    this.blockStream = id;
    this.blockFlags = flags;
    this.blockParts = [Buffer.from(frag)];
    this.blockBytes = frag.length;
  }

  onContinuation(id, flags, buf, start, len) {
    if (id !== this.blockStream) return this.goaway(E_PROTOCOL);
    this.blockParts.push(Buffer.from(buf.subarray(start, start + len)));
    this.blockBytes += len;
    if (this.blockBytes > this.maxHeaderBlock) return this.goaway(E_CALM);
    if ((flags & F_END_HEADERS) === 0) return;
    const block = Buffer.concat(this.blockParts);
    const f = this.blockFlags;
    this.blockStream = 0;
    this.blockParts = null;
    this.headerBlock(id, f, block);
  }

  headerBlock(id, flags, block) {
    let fields;
    let tooLarge = false;
    try { fields = this.dec.decode(block, MAX_HEADER_LIST); } catch (e) {
      if (!(e instanceof ListTooLarge)) return this.goaway(E_COMPRESSION);
      tooLarge = true;
    }
    const existing = this.streams.get(id);
    if (existing !== undefined) {
      // Trailers: must end the stream.
      if ((flags & F_END_STREAM) === 0) return this.rst(id, E_PROTOCOL);
      existing.remoteEnded = true;
      return this.respond(existing);
    }
    if (id <= this.lastStream) return this.goaway(E_PROTOCOL);
    this.lastStream = id;
    if (tooLarge) return this.rst(id, E_CALM);
    if (this.streams.size >= MAX_STREAMS) return this.rst(id, E_REFUSED);
    if (!validRequest(fields)) return this.rst(id, E_PROTOCOL);
    const st = new Stream(id, this.peerInitialWindow);
    this.streams.set(id, st);
    if (flags & F_END_STREAM) { st.remoteEnded = true; this.respond(st); }
  }

  onDataFrame(id, flags, buf, start, len) {
    // Flow control on what we receive: give the window back in large steps.
    this.recvUnacked += len;
    if (this.recvUnacked >= INITIAL_WINDOW / 2) { this.windowUpdate(0, this.recvUnacked); this.recvUnacked = 0; }
    const st = this.streams.get(id);
    if (st === undefined || st.remoteEnded) return id > this.lastStream ? this.goaway(E_PROTOCOL) : this.rst(id, 5 /* STREAM_CLOSED */);
    st.recvWindow -= len;
    if (st.recvWindow < 0) return this.rst(id, E_FLOW);
    if (flags & F_END_STREAM) { st.remoteEnded = true; return this.respond(st); }
    if (st.recvWindow < INITIAL_WINDOW / 2) { this.windowUpdate(id, INITIAL_WINDOW - st.recvWindow); st.recvWindow = INITIAL_WINDOW; }
  }

  onSettings(flags, buf, start, len) {
    if (flags & F_ACK) return;
    if (len % 6 !== 0) return this.goaway(E_FRAME_SIZE);
    for (let q = start; q < start + len; q += 6) {
      const k = buf.readUInt16BE(q), v = buf.readUInt32BE(q + 2);
      if (k === 0x1) this.enc.setTableSize(v);
      else if (k === 0x4) {
        if (v > 0x7fffffff) return this.goaway(E_FLOW);
        const delta = v - this.peerInitialWindow;
        this.peerInitialWindow = v;
        for (const st of this.streams.values()) st.sendWindow += delta;
      } else if (k === 0x5) {
        if (v < 16384 || v > 16777215) return this.goaway(E_PROTOCOL);
        this.peerMaxFrame = v;
      }
    }
    const ack = Buffer.allocUnsafe(9);
    frameHeader(ack, 0, 0, T_SETTINGS, F_ACK, 0);
    this.queue(ack);
    if (this.blocked > 0) this.sendPending();
  }

  onWindowUpdate(id, inc) {
    if (inc === 0) return id === 0 ? this.goaway(E_PROTOCOL) : this.rst(id, E_PROTOCOL);
    if (id === 0) {
      this.sendWindow += inc;
      if (this.sendWindow > 0x7fffffff) return this.goaway(E_FLOW);
    } else {
      const st = this.streams.get(id);
      if (st === undefined) return;
      st.sendWindow += inc;
    }
    if (this.blocked > 0) this.sendPending();
  }

  /** The direct answer: HEADERS + DATA in one buffer when the windows allow it (they nearly always do). */
  respond(st) {
    const block = this.enc.encode([
      { name: ':status', value: '200' },
      { name: 'content-type', value: 'text/plain' },
      { name: 'content-length', value: '100' },
      { name: 'date', value: date },
    ]);
    const hl = block.length;
    const fits = this.sendWindow >= BODY.length && st.sendWindow >= BODY.length;
    const f = Buffer.allocUnsafe(9 + hl + (fits ? 9 + BODY.length : 0));
    frameHeader(f, 0, hl, T_HEADERS, F_END_HEADERS, st.id);
    block.copy(f, 9);
    if (fits) {
      frameHeader(f, 9 + hl, BODY.length, T_DATA, F_END_STREAM, st.id);
      BODY.copy(f, 18 + hl);
      this.sendWindow -= BODY.length;
      this.streams.delete(st.id);
    } else {
      st.pending = BODY;
      this.blocked++;
    }
    this.queue(f);
  }

  /** Streams held by flow control send what their windows now allow. */
  sendPending() {
    for (const st of this.streams.values()) {
      if (st.pending === null) continue;
      const n = Math.min(st.pending.length, st.sendWindow, this.sendWindow, this.peerMaxFrame);
      if (n <= 0) continue;
      const last = n === st.pending.length;
      const f = Buffer.allocUnsafe(9 + n);
      frameHeader(f, 0, n, T_DATA, last ? F_END_STREAM : 0, st.id);
      st.pending.copy(f, 9, 0, n);
      this.queue(f);
      st.sendWindow -= n;
      this.sendWindow -= n;
      if (last) { st.pending = null; this.blocked--; this.streams.delete(st.id); } else st.pending = st.pending.subarray(n);
    }
  }

  windowUpdate(id, inc) {
    const f = Buffer.allocUnsafe(13);
    frameHeader(f, 0, 4, T_WU, 0, id);
    f.writeUInt32BE(inc, 9);
    this.queue(f);
  }

  rst(id, code) {
    const st = this.streams.get(id);
    if (st !== undefined) { if (st.pending !== null) this.blocked--; this.streams.delete(id); }
    const f = Buffer.allocUnsafe(13);
    frameHeader(f, 0, 4, T_RST, 0, id);
    f.writeUInt32BE(code, 9);
    this.queue(f);
  }

  goaway(code) {
    if (this.closing) return;
    const f = Buffer.allocUnsafe(17);
    frameHeader(f, 0, 8, T_GOAWAY, 0, 0);
    f.writeUInt32BE(this.lastStream, 9);
    f.writeUInt32BE(code, 13);
    this.queue(f);
    this.flushAndEnd();
  }

  flushAndEnd() {
    const out = this.out;
    this.out = [];
    this.outBytes = 0;
    this.closing = true;
    if (out.length > 0) this.sock.end(Buffer.concat(out)); else this.sock.end();
  }
}

function frameHeader(b, at, len, type, flags, id) {
  b[at] = len >>> 16; b[at + 1] = (len >>> 8) & 0xff; b[at + 2] = len & 0xff;
  b[at + 3] = type; b[at + 4] = flags;
  b.writeUInt32BE(id, at + 5);
}

/** The RFC 9113 §8.3.1 minimum: :method, :scheme, :path once each, pseudo-headers first, lower-case names. */
function validRequest(f) {
  let m = 0, s = 0, pa = 0, regular = false;
  for (let i = 0; i < f.length; i += 2) {
    const name = f[i];
    if (name.charCodeAt(0) === 58) {
      if (regular) return false;
      if (name === ':method') m++; else if (name === ':scheme') s++; else if (name === ':path') pa++; else if (name !== ':authority') return false;
    } else {
      regular = true;
      if (name === 'connection' || name === 'transfer-encoding' || name === 'upgrade' || name === 'keep-alive' || name === 'proxy-connection') return false;
      for (let k = 0; k < name.length; k++) { const c = name.charCodeAt(k); if (c >= 65 && c <= 90) return false; }
    }
  }
  return m === 1 && s === 1 && pa === 1;
}

export { E_NO_ERROR };
