// Shared helpers for the hostile-input tests: one edge in front of a raw-socket origin, and a raw
// client that stops as soon as it has a complete answer (or the server closed, or time ran out).
import { connect } from 'node:net';
import { startRawOrigin, type RawOrigin, type RawReply } from '../harness/raw-origin.js';
import { CLIENT_LIMITS_OFF, edgeYaml, startTestEdge, type TestEdge } from '../harness/edge.js';
import type { EdgeOptions } from '../../edge/edge.js';

export interface Answer {
  /** Status codes of every complete response head received, in order. */
  statuses: number[];
  /** Every byte the client received. */
  data: Buffer;
  /** The server closed the connection (FIN or reset) before the wait ended. */
  closed: boolean;
  /** Milliseconds from the first write to the close (or -1). */
  closedAfterMs: number;
}

export function statusesOf(data: Buffer): number[] {
  const out: number[] = [];
  const text = data.toString('latin1');
  const re = /HTTP\/1\.1 (\d{3}) /g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    // only count status lines at the start of the data or right after a CRLF-terminated message
    out.push(Number(m[1]));
  }
  return out;
}

/**
 * Sends `bytes` (or several pieces, `gapMs` apart) on a fresh connection. Resolves when the server
 * closes, when `expectResponses` complete responses arrived (then waits `settleMs` more for bytes
 * that should not come), or after `waitMs`.
 */
export function exchange(port: number, bytes: string | Buffer | (string | Buffer)[], opts: { waitMs?: number; expectResponses?: number; settleMs?: number; gapMs?: number } = {}): Promise<Answer> {
  const waitMs = opts.waitMs ?? 1500;
  return new Promise((resolve) => {
    const t0 = Date.now();
    const chunks: Buffer[] = [];
    const s = connect(port, '127.0.0.1');
    let done = false;
    let settle: NodeJS.Timeout | null = null;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (settle !== null) clearTimeout(settle);
      const data = Buffer.concat(chunks);
      s.destroy();
      resolve({ statuses: statusesOf(data), data, closed, closedAfterMs: closed ? Date.now() - t0 : -1 });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      const want = opts.expectResponses;
      if (want !== undefined && settle === null && completeResponses(Buffer.concat(chunks)) >= want) {
        settle = setTimeout(() => finish(false), opts.settleMs ?? 100);
      }
    });
    s.on('error', () => {});
    s.on('close', () => finish(true));
    const pieces = Array.isArray(bytes) ? bytes : [bytes];
    let i = 0;
    const next = (): void => {
      if (done || i >= pieces.length) return;
      s.write(pieces[i++]);
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

export interface Bench {
  edge: TestEdge;
  origin: RawOrigin;
  stop(): Promise<void>;
}

/** An in-process edge whose only backend is a raw origin. `extra` is appended to the YAML. */
export async function startBench(opts: { reply?: RawReply; extra?: string; edge?: EdgeOptions; requestLimits?: string; backendMore?: string } = {}): Promise<Bench> {
  const origin = await startRawOrigin(opts.reply);
  // The per-client guard is off: these tests send hundreds of requests from 127.0.0.1 on purpose.
  const edge = await startTestEdge(edgeYaml({
    limits: `${CLIENT_LIMITS_OFF}, request: { ${opts.requestLimits ?? ''} }`,
    servers: [{ name: 'raw', url: origin.url }],
    backendMore: opts.backendMore,
    more: opts.extra,
  }), opts.edge);
  return { edge, origin, stop: async () => { await edge.stop(); await origin.close(); } };
}

/** Header lines the edge adds itself (not part of what the client sent). */
export function clientHeaderLines(lines: readonly string[]): string[] {
  return lines.filter((l) => !/^x-(forwarded-(for|proto|host)|request-id):/i.test(l));
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
