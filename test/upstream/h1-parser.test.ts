// Properties of the strict response parser: split points never change the result, arbitrary bytes never
// throw, and pausing mid-body resumes exactly where it stopped.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ResponseParser, type ResponseParserHandler } from '../../edge/upstream/h1-parser.js';

class Collect implements ResponseParserHandler {
  status = 0;
  headers: string[] = [];
  body: Buffer[] = [];
  heads = 0;
  pauseEvery = 0;
  private n = 0;
  onParsedHead(status: number, headers: string[]): boolean {
    this.heads++;
    this.status = status;
    this.headers = headers;
    return true;
  }
  onParsedBody(chunk: Buffer): boolean {
    this.body.push(Buffer.from(chunk));
    return this.pauseEvery === 0 || ++this.n % this.pauseEvery !== 0;
  }
}

const LIMITS = { maxHeaderBytes: 65536, maxHeaderCount: 512 };

/** Feed `wire` cut at `cuts`; a paused parser is re-fed the unconsumed rest (like Conn does on resume). */
function feed(p: ResponseParser, wire: Buffer, cuts: number[]): void {
  const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
  let prev = 0;
  for (const c of [...points, wire.length]) {
    let piece = wire.subarray(prev, c);
    prev = c;
    for (let guard = 0; guard < 10_000; guard++) {
      const n = p.execute(piece);
      if (p.failed || p.done) return;
      if (n === piece.length) break;
      piece = piece.subarray(n);
    }
  }
  if (!p.done && !p.failed) p.execute(Buffer.alloc(0)); // a completion deferred by a pause
}

function chunkedWire(parts: Buffer[], ext: boolean): Buffer {
  const out: Buffer[] = [Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n')];
  for (const part of parts) {
    if (part.length === 0) continue;
    out.push(Buffer.from(part.length.toString(16) + (ext ? ';x=y' : '') + '\r\n'), part, Buffer.from('\r\n'));
  }
  out.push(Buffer.from('0\r\ntrailer-a: z\r\n\r\n'));
  return Buffer.concat(out);
}

describe('h1 response parser properties', () => {
  it('chunked bodies parse the same at any split points, with or without pauses', () => {
    fc.assert(fc.property(
      fc.array(fc.uint8Array({ minLength: 0, maxLength: 300 }), { maxLength: 8 }),
      fc.array(fc.nat(4000), { maxLength: 12 }),
      fc.boolean(),
      fc.nat(3),
      (parts, cuts, ext, pauseEvery) => {
        const bufs = parts.map((u) => Buffer.from(u));
        const wire = chunkedWire(bufs, ext);
        const h = new Collect();
        h.pauseEvery = pauseEvery;
        const p = new ResponseParser(h, LIMITS);
        p.reset(false);
        feed(p, wire, cuts);
        assert.equal(p.failed, false, p.error);
        assert.equal(p.done, true);
        assert.equal(h.status, 200);
        assert.deepEqual(Buffer.concat(h.body), Buffer.concat(bufs));
      },
    ), { numRuns: 300 });
  });

  it('content-length bodies parse the same at any split points', () => {
    fc.assert(fc.property(
      fc.uint8Array({ maxLength: 2000 }),
      fc.array(fc.nat(3000), { maxLength: 10 }),
      fc.nat(3),
      (body, cuts, pauseEvery) => {
        const wire = Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n`), Buffer.from(body)]);
        const h = new Collect();
        h.pauseEvery = pauseEvery;
        const p = new ResponseParser(h, LIMITS);
        p.reset(false);
        feed(p, wire, cuts);
        assert.equal(p.done, true, p.error);
        assert.deepEqual(Buffer.concat(h.body), Buffer.from(body));
      },
    ), { numRuns: 300 });
  });

  it('arbitrary bytes never throw and never yield a body without a head', () => {
    fc.assert(fc.property(
      fc.uint8Array({ maxLength: 600 }),
      fc.constantFrom('', 'HTTP/1.1 200 OK\r\n', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n', 'HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n'),
      fc.array(fc.nat(1000), { maxLength: 6 }),
      (junk, prefix, cuts) => {
        const wire = Buffer.concat([Buffer.from(prefix, 'latin1'), Buffer.from(junk)]);
        const h = new Collect();
        const p = new ResponseParser(h, LIMITS);
        p.reset(false);
        feed(p, wire, cuts);
        if (h.heads === 0) assert.equal(h.body.length, 0);
      },
    ), { numRuns: 500 });
  });

  it('header names and values are delivered as sent (names lower-cased), in order', () => {
    const token = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,20}$/);
    const value = fc.stringMatching(/^[\x21-\x7e]([\x20-\x7e]{0,30}[\x21-\x7e])?$/);
    fc.assert(fc.property(fc.array(fc.tuple(token, value), { maxLength: 20 }), (fields) => {
      const clean = fields.filter(([n]) => !['content-length', 'transfer-encoding', 'connection'].includes(n.toLowerCase()));
      const wire = Buffer.from('HTTP/1.1 204 No Content\r\n' + clean.map(([n, v]) => `${n}: ${v}\r\n`).join('') + '\r\n', 'latin1');
      const h = new Collect();
      const p = new ResponseParser(h, LIMITS);
      p.reset(false);
      feed(p, wire, []);
      assert.equal(p.done, true, p.error);
      assert.deepEqual(h.headers, clean.flatMap(([n, v]) => [n.toLowerCase(), v]));
    }), { numRuns: 300 });
  });
});
