// Events into one Redis Stream shared by every edge node (XADD … MAXLEN ~ N, batched in one
// pipeline per drain), so that a SOC reads all nodes in one place — and each node reads the stream
// back (XREAD BLOCK on its own connection) to show other nodes' events in its WebSocket feed.
// The writer never queues while Redis is down (enableOfflineQueue: false): the batch fails fast and
// is counted as dropped.
import { Redis, type RedisOptions } from 'ioredis';
import type { RedisConnection } from '../../shield/stick/config.js';

/** A client for a URL or for the master behind Sentinel. */
export function connectRedis(c: RedisConnection, opts: RedisOptions): Redis {
  return typeof c === 'string' ? new Redis(c, opts) : new Redis({ ...opts, ...c });
}
import type { EdgeEvent, EventBus } from './bus.js';
import { BufferedSink } from './ring.js';

export interface RedisStreamOptions {
  /** redis://host:port/db, or Sentinel options (the master behind Sentinel). */
  url: RedisConnection;
  /** Stream key (default `portcullis:events`). */
  stream?: string;
  /** Approximate stream length kept (MAXLEN ~, default 100000). */
  maxLen?: number;
  /** Events held while a batch is in flight (default 16384). */
  capacity?: number;
  /** Read other nodes' events back into bus.deliverRemote (default true). */
  read?: boolean;
}

export class RedisStreamSink extends BufferedSink {
  readonly stream: string;
  private readonly maxLen: number;
  private readonly writer: Redis;
  private reader: Redis | null = null;
  private lastId = '$';
  private stopping = false;
  private readLoop: Promise<void> | null = null;
  /** Events read from other nodes. */
  remoteReceived = 0;
  /** Resolves once the reader has fixed its start position (tests wait on it). */
  readonly readerReady: Promise<void>;
  private markReaderReady: () => void = () => undefined;

  constructor(private readonly bus: EventBus, opts: RedisStreamOptions) {
    super('redis', opts.capacity ?? 16384, 500);
    this.stream = opts.stream ?? 'portcullis:events';
    this.maxLen = opts.maxLen ?? 100_000;
    this.writer = connectRedis(opts.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: false });
    this.writer.on('error', () => { /* state is visible through status; errors are counted as drops */ });
    this.readerReady = new Promise((r) => { this.markReaderReady = r; });
    if (opts.read !== false) {
      this.reader = connectRedis(opts.url, { maxRetriesPerRequest: null });
      this.reader.on('error', () => { /* reconnects on its own */ });
      this.readLoop = this.runReader();
    } else {
      this.markReaderReady();
    }
  }

  get connected(): boolean { return this.writer.status === 'ready'; }

  protected process(batch: EdgeEvent[]): void | Promise<void> {
    if (this.writer.status !== 'ready') { this.lost(batch.length); return; }
    const p = this.writer.pipeline();
    const maxLen = String(this.maxLen);
    for (let i = 0; i < batch.length; i++) {
      const ev = batch[i];
      p.xadd(this.stream, 'MAXLEN', '~', maxLen, '*', 'n', String(ev.node ?? this.bus.node), 'e', JSON.stringify(ev));
    }
    return p.exec().then((res) => {
      if (res === null) throw new Error('pipeline aborted');
      let failed = 0;
      for (const [err] of res) if (err) failed++;
      // Failed entries inside an otherwise sent pipeline: count them, keep the rest as written.
      if (failed > 0) { this.lost(failed); this.written -= failed; }
    });
  }

  private async runReader(): Promise<void> {
    const r = this.reader as Redis;
    // Start after the newest entry present now, so a restart does not replay old events and an
    // event written right after start is not missed (which `$` on a late first XREAD could do).
    while (!this.stopping) {
      try {
        const last = await r.xrevrange(this.stream, '+', '-', 'COUNT', 1);
        this.lastId = last.length > 0 ? last[0][0] : '0-0';
        break;
      } catch {
        await sleep(500);
      }
    }
    this.markReaderReady();
    while (!this.stopping) {
      try {
        const res = await r.xread('COUNT', 500, 'BLOCK', 1000, 'STREAMS', this.stream, this.lastId);
        if (res === null) continue;
        for (const [, entries] of res) {
          for (const [id, fields] of entries) {
            this.lastId = id;
            this.deliver(fields);
          }
        }
      } catch {
        if (!this.stopping) await sleep(500);
      }
    }
  }

  private deliver(fields: string[]): void {
    let node = '';
    let json = '';
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === 'n') node = fields[i + 1];
      else if (fields[i] === 'e') json = fields[i + 1];
    }
    if (node === this.bus.node || json === '') return; // our own: already delivered locally
    try {
      const ev = JSON.parse(json) as EdgeEvent;
      this.remoteReceived++;
      this.bus.deliverRemote(ev);
    } catch { /* a foreign writer's malformed entry: skip */ }
  }

  async stop(): Promise<void> {
    this.markClosed();
    this.stopping = true;
    await this.flushRing();
    this.reader?.disconnect();
    // An XREAD queued while Redis is down is not rejected by disconnect(): do not wait on it forever.
    if (this.readLoop !== null) await Promise.race([this.readLoop.catch(() => undefined), sleep(1000)]);
    await closeRedis(this.writer);
  }
}

/**
 * QUIT when connected (pending replies arrive first), else drop the connection at once: a QUIT sent
 * to a Redis that is down waits in the offline queue for a reconnect that may never come, and a
 * graceful stop must not hang on it. QUIT itself gets at most `ms`.
 */
export async function closeRedis(client: { status: string; quit(): Promise<unknown>; disconnect(): void }, ms = 1000): Promise<void> {
  if (client.status !== 'ready') { client.disconnect(); return; }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => { timer = setTimeout(resolve, ms); });
  await Promise.race([client.quit().catch(() => undefined), timeout]);
  clearTimeout(timer);
  client.disconnect();
}

function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }
