// The raw HTTP client of the tests (and of the load harness's conformance scenario): it writes exact
// bytes on a fresh connection and stops as soon as it has a complete answer (or the server closed, or
// time ran out). Only node:net, so the load harness can use it without loading the edge.
// harness/client.ts's rawExchange/rawRequest are this client with a parsed answer.
import { connect } from 'node:net';

export interface Answer {
  /** Status codes of every response status line received, in order (1xx included). */
  statuses: number[];
  /** Every byte the client received. */
  data: Buffer;
  /** The server closed the connection (FIN or reset) before the wait ended. */
  closed: boolean;
  /** Milliseconds from the first write to the close (or -1). */
  closedAfterMs: number;
  /** Milliseconds from the last write to the first byte received or the close, whichever came first (-1: neither). */
  reactionMs: number;
}

export function statusesOf(data: Buffer): number[] {
  const out: number[] = [];
  const text = data.toString('latin1');
  const re = /HTTP\/1\.[01] (\d{3}) /g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) out.push(Number(m[1]));
  return out;
}

export interface ExchangeOptions {
  /** Give up after this long (default 1500 ms). */
  waitMs?: number;
  /** Stop `settleMs` after this many complete Content-Length-framed (or body-less) responses. */
  expectResponses?: number;
  /** Stop `settleMs` after this many final (non-1xx) status lines, whatever their framing. */
  expectFinal?: number;
  /** Wait for late bytes (or the close) after the expected answers (default 100 ms). */
  settleMs?: number;
  /** Delay between the pieces of an array `bytes` (default 30 ms). */
  gapMs?: number;
  host?: string;
  /** Source address (127.0.0.x: another client of the same host). */
  localAddress?: string;
}

/**
 * Sends `bytes` (or several pieces, `gapMs` apart) on a fresh connection. Resolves when the server
 * closes, when the expected answers arrived (then waits `settleMs` more for bytes that should not
 * come), or after `waitMs`.
 */
export function exchange(port: number, bytes: string | Buffer | readonly (string | Buffer)[], opts: ExchangeOptions = {}): Promise<Answer> {
  const waitMs = opts.waitMs ?? 1500;
  return new Promise((resolve) => {
    const t0 = Date.now();
    let lastWrite = t0;
    let firstByte = -1;
    const chunks: Buffer[] = [];
    const s = connect({ port, host: opts.host ?? '127.0.0.1', localAddress: opts.localAddress });
    let done = false;
    let settle: NodeJS.Timeout | null = null;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      const now = Date.now();
      clearTimeout(timer);
      if (settle !== null) clearTimeout(settle);
      const data = Buffer.concat(chunks);
      s.destroy();
      const react = firstByte >= 0 ? firstByte : closed ? now : -1;
      resolve({ statuses: statusesOf(data), data, closed, closedAfterMs: closed ? now - t0 : -1, reactionMs: react < 0 ? -1 : Math.max(0, react - lastWrite) });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    s.on('data', (c: Buffer) => {
      if (firstByte < 0) firstByte = Date.now();
      chunks.push(c);
      if (settle !== null) return;
      const all = Buffer.concat(chunks);
      const enough = (opts.expectResponses !== undefined && completeResponses(all) >= opts.expectResponses) ||
        (opts.expectFinal !== undefined && statusesOf(all).filter((x) => x >= 200).length >= opts.expectFinal);
      if (enough) settle = setTimeout(() => finish(false), opts.settleMs ?? 100);
    });
    s.on('error', () => {});
    s.on('close', () => finish(true));
    const pieces = typeof bytes === 'string' || Buffer.isBuffer(bytes) ? [bytes] : bytes;
    let i = 0;
    const next = (): void => {
      if (done || i >= pieces.length) return;
      s.write(pieces[i++]);
      lastWrite = Date.now();
      if (i < pieces.length) setTimeout(next, opts.gapMs ?? 30);
    };
    next();
  });
}

/** Number of complete Content-Length-framed (or body-less) responses at the start of `data`. */
export function completeResponses(data: Buffer): number {
  let pos = 0;
  let n = 0;
  for (;;) {
    const end = data.indexOf('\r\n\r\n', pos);
    if (end < 0) return n;
    const head = data.subarray(pos, end).toString('latin1');
    const m = /\r\ncontent-length: *(\d+)/i.exec(head);
    const len = m ? Number(m[1]) : 0;
    if (/^HTTP\/1\.1 1\d\d/.test(head)) { pos = end + 4; continue; }
    if (data.length < end + 4 + len) return n;
    pos = end + 4 + len;
    n++;
  }
}
