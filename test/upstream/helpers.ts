// Shared test helpers for the upstream clients: a collecting sink, body pumps and a black-hole listener
// (their origins are the harness's scripted origin, test/harness/origin.ts).
import net from 'node:net';
import { spawn, spawnSync } from 'node:child_process';
import type { UpstreamClient, UpstreamFailure, UpstreamRequest, UpstreamSink, UpstreamStream, UpstreamTimeouts } from '../../edge/upstream/types.js';
import { H1Pool } from '../../edge/upstream/h1pool.js';
import { UndiciClient } from '../../edge/upstream/undici-client.js';

export const T: UpstreamTimeouts = { connectMs: 2000, responseMs: 5000, idleMs: 5000 };

export interface ClientCase { name: string; make(): UpstreamClient }
export const CLIENTS: ClientCase[] = [
  { name: 'h1pool', make: () => new H1Pool({ tickMs: 50 }) },
  { name: 'undici', make: () => new UndiciClient() },
];

/** Records every sink call; `done` settles on end or error. */
export class CollectSink implements UpstreamSink {
  status = 0;
  headers: string[] = [];
  chunks: Buffer[] = [];
  bytes = 0;
  error: UpstreamFailure | null = null;
  ended = false;
  drains = 0;
  calls: string[] = [];
  keepBody = true;
  /** What onResponseData returns (false = back-pressure). */
  accept = true;
  readonly done: Promise<void>;
  private settle!: () => void;
  onData: ((chunk: Buffer) => void) | null = null;
  onDrain: (() => void) | null = null;

  constructor() {
    this.done = new Promise<void>((r) => { this.settle = r; });
  }
  onResponseStart(status: number, headers: string[]): void {
    this.calls.push('start');
    this.status = status;
    this.headers = headers;
  }
  onResponseData(chunk: Buffer): boolean {
    this.calls.push('data');
    this.bytes += chunk.length;
    if (this.keepBody) this.chunks.push(Buffer.from(chunk));
    this.onData?.(chunk);
    return this.accept;
  }
  onResponseEnd(): void {
    this.calls.push('end');
    this.ended = true;
    this.settle();
  }
  onError(err: UpstreamFailure): void {
    this.calls.push('error');
    this.error = err;
    this.settle();
  }
  onBodyDrain(): void {
    this.drains++;
    this.onDrain?.();
  }
  get body(): string { return Buffer.concat(this.chunks).toString('latin1'); }
  header(name: string): string | undefined {
    for (let i = 0; i < this.headers.length; i += 2) if (this.headers[i] === name) return this.headers[i + 1];
    return undefined;
  }
}

export function get(path = '/', extra: string[] = []): UpstreamRequest {
  return { method: 'GET', path, headers: ['host', 'origin.test', ...extra], bodyLength: -1 };
}

export async function fetchOnce(client: UpstreamClient, origin: string, req: UpstreamRequest, timeouts = T, body?: Buffer[]): Promise<CollectSink> {
  const sink = new CollectSink();
  const st = client.request(origin, req, timeouts, sink);
  if (body !== undefined) {
    for (const b of body) st.writeBody(b);
    st.endBody();
  }
  await sink.done;
  return sink;
}

/** Write `total` bytes of body honouring back-pressure; resolves with how often writeBody said "full". */
export function pumpBody(st: UpstreamStream, sink: CollectSink, total: number, chunkSize = 64 * 1024): Promise<number> {
  return new Promise((resolve) => {
    let sent = 0;
    let refusals = 0;
    const chunk = Buffer.alloc(chunkSize, 0x61);
    const pump = (): void => {
      while (sent < total) {
        const n = Math.min(chunkSize, total - sent);
        sent += n;
        const ok = st.writeBody(n === chunkSize ? chunk : chunk.subarray(0, n));
        if (!ok) { refusals++; return; }
      }
      st.endBody();
      resolve(refusals);
    };
    sink.onDrain = pump;
    pump();
  });
}

import { sleep } from '../harness/wait.js';
export { sleep };

/**
 * A loopback listener whose accept queue is full, so a further connect() never completes (SYNs are
 * dropped): the only way to get a connect timeout without leaving 127.0.0.1. Needs python3 (Node always
 * accepts). Returns null when python3 is missing.
 */
export async function blackholeListener(): Promise<{ url: string; close(): void } | null> {
  if (spawnSync('python3', ['-c', 'pass']).status !== 0) return null;
  const py = spawn('python3', ['-c', [
    'import socket, sys',
    's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)',
    'print(s.getsockname()[1], flush=True)',
    'sys.stdin.read()',
  ].join('\n')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((r) => py.stdout.once('data', (d: Buffer) => r(Number(String(d).trim()))));
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 4; i++) {
    const f = net.connect(port, '127.0.0.1');
    f.on('error', () => {});
    fillers.push(f);
    await sleep(30);
  }
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => { for (const f of fillers) f.destroy(); py.kill(); },
  };
}
