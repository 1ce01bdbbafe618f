// Shares the history between nodes through Redis: each node appends the records it stores (its own
// minutes and its own roll-ups, each the slot's whole current value) to its own stream
// `<prefix>:history:<node>` (XADD MAXLEN ~), and reads the other nodes' streams into its store
// ('replace': reading a stream twice changes nothing). Either node then answers for the cluster.
//
// Off the request path (a timer every sync interval), on its own connection, never queuing while
// Redis is away: a round that fails marks the sync degraded (the node shows its own history and
// what it already had from peers, and says so); its unsent batches wait in a bounded queue (oldest
// dropped and counted beyond it) and go out when Redis answers again.
import { Redis } from 'ioredis';
import type { RedisConnection } from '../shield/stick/config.js';
import { frameAll, parseFrames } from './disk.js';
import type { HistoryRecord } from './record.js';

export interface RedisSyncOptions {
  url: RedisConnection;
  prefix: string;
  node: string;
  /** Approximate entries kept per node stream (one entry per sync round with new records). */
  maxLen?: number;
  commandTimeoutMs?: number;
  /** Batches held while Redis is away (default 2000). */
  maxPending?: number;
}

export type SyncState = 'ok' | 'degraded';

export class RedisHistorySync {
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly node: string;
  private readonly maxLen: number;
  private readonly maxPending: number;
  private batch: Uint8Array[] = [];
  private readonly pending: Buffer[] = [];
  private readonly lastIds = new Map<string, string>();
  private running: Promise<void> | null = null;
  private readonly waitMs: number;
  state: SyncState = 'ok';
  lastError: string | null = null;
  /** Batches dropped while Redis was away (beyond maxPending). */
  dropped = 0;
  /** Records received from other nodes. */
  received = 0;
  faults = 0;

  constructor(opts: RedisSyncOptions, private readonly onRecords: (recs: HistoryRecord[]) => void) {
    this.prefix = opts.prefix;
    this.node = opts.node;
    this.maxLen = opts.maxLen ?? 20_000;
    this.maxPending = opts.maxPending ?? 2000;
    this.waitMs = opts.commandTimeoutMs ?? 2000;
    const common = { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: opts.commandTimeoutMs ?? 2000, lazyConnect: false };
    this.redis = typeof opts.url === 'string' ? new Redis(opts.url, common) : new Redis({ ...common, ...opts.url });
    this.redis.on('error', () => { /* the state and lastError say it */ });
  }

  private streamOf(node: string): string { return `${this.prefix}:history:${node}`; }
  private get nodesKey(): string { return `${this.prefix}:history:nodes`; }

  /** A record this node stored: sent with the next round. */
  push(bytes: Uint8Array): void { this.batch.push(bytes); }

  /** One round: send what is new, read what the other nodes sent. Never throws. */
  round(): Promise<void> {
    this.running ??= this.doRound().finally(() => { this.running = null; });
    return this.running;
  }

  private async doRound(): Promise<void> {
    if (this.batch.length > 0) {
      this.pending.push(frameAll(this.batch));
      this.batch = [];
      while (this.pending.length > this.maxPending) { this.pending.shift(); this.dropped++; }
    }
    try {
      if (this.redis.status !== 'ready') await this.whenReady();
      while (this.pending.length > 0) {
        await this.redis.multi()
          .xadd(this.streamOf(this.node), 'MAXLEN', '~', String(this.maxLen), '*', 'r', this.pending[0])
          .sadd(this.nodesKey, this.node)
          .exec();
        this.pending.shift();
      }
      const nodes = await this.redis.smembers(this.nodesKey);
      for (const n of nodes) {
        if (n === this.node) continue;
        for (;;) {
          const last = this.lastIds.get(n) ?? '-';
          const start = last === '-' ? '-' : `(${last}`;
          const entries = await this.redis.xrangeBuffer(this.streamOf(n), start, '+', 'COUNT', 200);
          if (entries.length === 0) break;
          for (const [id, fields] of entries) {
            for (let i = 0; i + 1 < fields.length; i += 2) {
              if (fields[i].toString() !== 'r') continue;
              const parsed = parseFrames(fields[i + 1], 0);
              this.received += parsed.records.length;
              this.onRecords(parsed.records);
            }
            this.lastIds.set(n, id.toString());
          }
          if (entries.length < 200) break;
        }
      }
      this.state = 'ok';
      this.lastError = null;
    } catch (e) {
      if (this.state === 'ok') this.faults++;
      this.state = 'degraded';
      this.lastError = (e as Error).message;
    }
  }

  /** Waits for the connection (at start, or while ioredis reconnects) up to the command timeout. */
  private whenReady(): Promise<void> {
    const r = this.redis;
    return new Promise<void>((resolve, reject) => {
      const done = (): void => { clearTimeout(timer); r.off('ready', done); resolve(); };
      const timer = setTimeout(() => { r.off('ready', done); reject(new Error(`not connected (${r.status})`)); }, this.waitMs);
      r.on('ready', done);
    });
  }

  async close(): Promise<void> {
    await this.running;
    this.redis.disconnect();
  }
}
