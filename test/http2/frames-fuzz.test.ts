// The frame engine (edge/http2/frames/) fed arbitrary bytes after the preface, in process on a fake
// socket (fast-check: thousands of runs): it never throws, never leaves an unhandled error, and
// answers only with well-formed frames of the kinds a server sends — GOAWAY, RST_STREAM and the
// frames of correct answers (SETTINGS, PING ack, WINDOW_UPDATE, HEADERS, CONTINUATION, DATA).
// Structured runs (frames of random type, flags, stream and payload, some carrying valid request
// heads) reach deeper states than raw bytes alone.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import fc from 'fast-check';
import { FrameConnection } from '../../edge/http2/frames/connection.js';
import type { Http2Context, Http2Handler } from '../../edge/http2/connection.js';
import { normalizeHttp2 } from '../../edge/http2/config.js';
import type { Transaction } from '../../edge/pipeline/transaction.js';
import { ManualClock } from '../../lib/clock.js';
import { PREFACE, frame, requestHeaders, settings, hpack } from './raw.js';

class FakeSocket extends EventEmitter {
  out: Buffer[] = [];
  destroyed = false;
  writable = true;
  ended = false;
  write(b: Buffer): boolean { this.out.push(Buffer.from(b)); return true; }
  end(): this { this.ended = true; this.writable = false; return this; }
  destroy(): this { if (!this.destroyed) { this.destroyed = true; this.writable = false; this.emit('close'); } return this; }
  resetAndDestroy(): this { return this.destroy(); }
  resume(): this { return this; }
  pause(): this { return this; }
}

/** A pipeline stand-in: GET answered at once (small body or a streamed one), POST bodies read to the end then answered. */
function handler(): Http2Handler & { errors: Error[] } {
  const errors: Error[] = [];
  const h = {
    errors,
    handle(tx: Transaction): void {
      const io = tx.io;
      if (tx.method === 'POST') {
        io.attachBody({ onClientBody: (_c: Buffer, last: boolean) => { if (last) io.reply(200, ['content-type', 'text/plain'], 'done\n', false); return true; } });
        return;
      }
      if (tx.path === '/stream') {
        io.startResponse(200, ['x-a', 'b'], -1, false, { onClientDrain() {} });
        io.writeResponseBody(Buffer.alloc(40_000, 1));
        io.responseTrailers?.(['x-t', 'v']);
        io.endResponse();
        return;
      }
      io.reply(200, null, 'hello\n', false);
    },
    rejected(): void {},
    bodyTooLarge(tx: Transaction): void { tx.io.reply(413, null, 'too large\n', false); },
    clientAborted(): void {},
    abortsOnClientClose(): boolean { return true; },
    badBody(): void {},
    headTimeout(): void {},
    http2Defence(): void {},
  };
  return h as unknown as Http2Handler & { errors: Error[] };
}

function context(h: Http2Handler): Http2Context {
  return {
    name: 'fuzz', tls: true, limits: { maxUrl: 8192, maxHeaderBytes: 32 * 1024, maxHeaders: 100, maxBody: 1 << 20 },
    clock: new ManualClock(), handler: h, always: [],
    settings: normalizeHttp2({ flood: { settings: 20, ping: 20 } }, 32 * 1024, 5000, 0),
    headTimeoutMs: 1000, idleTimeoutMs: 5000, draining: false, connectionClosed() {},
  };
}

const SERVER_TYPES = new Set([0, 1, 3, 4, 6, 7, 8, 9]);

/** Splits what the engine wrote into frames; asserts each is whole and of a kind a server sends. */
function checkOutput(out: Buffer[]): void {
  const b = Buffer.concat(out);
  let p = 0;
  while (p < b.length) {
    assert.ok(b.length - p >= 9, 'a whole frame header');
    const len = b.readUIntBE(p, 3);
    assert.ok(SERVER_TYPES.has(b[p + 3]), `frame type ${b[p + 3]}`);
    assert.ok(len <= 16384, 'within the default max frame size');
    assert.ok(b.length - p - 9 >= len, 'a whole frame');
    p += 9 + len;
  }
}

async function feed(chunks: Buffer[]): Promise<void> {
  const sock = new FakeSocket();
  const h = handler();
  const conn = new FrameConnection(sock as unknown as Socket, context(h), new Uint8Array([127, 0, 0, 1]), 'shop.test', sock as unknown as Socket, Buffer.alloc(0));
  for (const c of chunks) { sock.emit('data', c); if (sock.destroyed) break; }
  conn.expire();
  await new Promise((r) => setImmediate(r));
  checkOutput(sock.out);
  conn.destroy();
}

const A = 'shop.test';
const frameArb = fc.oneof(
  // any frame
  fc.record({ type: fc.nat(11), flags: fc.nat(255), id: fc.nat(9), payload: fc.uint8Array({ maxLength: 64 }) })
    .map((f) => frame(f.type, f.flags, f.id, Buffer.from(f.payload))),
  // a request head on an odd stream, sometimes ending the stream, sometimes not the end of its block
  fc.record({ id: fc.nat(4).map((n) => 2 * n + 1), flags: fc.constantFrom(4, 5, 0, 1, 0x24, 0x0c), path: fc.constantFrom('/', '/stream', '/x?y'), method: fc.constantFrom('GET', 'POST', 'HEAD') })
    .map((f) => frame(1, f.flags, f.id, f.flags & 0x08 ? Buffer.concat([Buffer.from([0]), requestHeaders(A, f.path, f.method)]) : f.flags & 0x20 ? Buffer.concat([Buffer.alloc(5), requestHeaders(A, f.path, f.method)]) : requestHeaders(A, f.path, f.method))),
  // DATA on an odd stream
  fc.record({ id: fc.nat(4).map((n) => 2 * n + 1), end: fc.boolean(), n: fc.nat(3000) }).map((f) => frame(0, f.end ? 1 : 0, f.id, Buffer.alloc(f.n, 7))),
  // CONTINUATION with a field, WINDOW_UPDATE, SETTINGS with random values, RST_STREAM
  fc.record({ id: fc.nat(5), end: fc.boolean() }).map((f) => frame(9, f.end ? 4 : 0, f.id, hpack([['x-c', 'v']]))),
  fc.record({ id: fc.nat(5), inc: fc.nat() }).map((f) => { const p = Buffer.alloc(4); p.writeUInt32BE(f.inc >>> 0); return frame(8, 0, f.id, p); }),
  fc.array(fc.tuple(fc.nat(8), fc.nat()), { maxLength: 4 }).map((pairs) => settings(pairs as [number, number][])),
  fc.record({ id: fc.nat(5), code: fc.nat(14) }).map((f) => { const p = Buffer.alloc(4); p.writeUInt32BE(f.code); return frame(3, 0, f.id, p); }),
);

/** Cuts a byte string at random points (TLS records arrive in any sizes). */
const cut = (b: Buffer, at: number[]): Buffer[] => {
  const points = [...new Set(at.map((x) => x % (b.length + 1)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let p = 0;
  for (const q of points) { out.push(b.subarray(p, q)); p = q; }
  out.push(b.subarray(p));
  return out.filter((x) => x.length > 0);
};

describe('frame engine fuzz', () => {
  it('raw bytes after the preface and SETTINGS: no throw, only well-formed server frames', async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), fc.array(fc.nat(500), { maxLength: 5 }), async (bytes, at) => {
      await feed(cut(Buffer.concat([PREFACE, settings(), Buffer.from(bytes)]), at));
    }), { numRuns: 1500 });
  });

  it('random frames (valid heads, DATA, CONTINUATION, WINDOW_UPDATE, SETTINGS, RST_STREAM, any type): no throw, only well-formed server frames', async () => {
    await fc.assert(fc.asyncProperty(fc.array(frameArb, { maxLength: 14 }), fc.array(fc.nat(4000), { maxLength: 4 }), async (frames, at) => {
      await feed(cut(Buffer.concat([PREFACE, settings(), ...frames]), at));
    }), { numRuns: 1500 });
  });

  it('random bytes in place of the preface: GOAWAY or nothing, no throw', async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 60 }), async (bytes) => {
      await feed([Buffer.from(bytes)]);
    }), { numRuns: 300 });
  });
});
