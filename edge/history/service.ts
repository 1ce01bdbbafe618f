// The history of a running node (main thread): its own recorder (the main thread's requests and the
// concurrency samples), the records worker threads send each minute, the store with its roll-ups and
// bounds, the disk file, and the exchange with other nodes through Redis. Every timer here is off
// the request path and unref'd.
import { join } from 'node:path';
import type { EventBus } from '../observe/events/bus.js';
import { errorEvent } from '../observe/events/build.js';
import type { RedisConnection } from '../shield/stick/config.js';
import type { HistorySection } from './config.js';
import { HistoryFile } from './disk.js';
import { decodeRecord, TIERS, type HistoryRecord, type SeriesKind } from './record.js';
import { HistoryRecorder, type SampledPool } from './recorder.js';
import { HistoryStore, type StoreStats } from './store.js';
import { historyQuery, type HistoryAnswer } from './query.js';
import { capacityView, type CapacityView } from './capacity.js';
import type { RedisHistorySync } from './redis-sync.js';

export interface HistoryDeps {
  node: string;
  bus: EventBus | null;
  pools: () => Iterable<SampledPool & { servers(): readonly { name: string; active: number; maxconn: number; backup?: boolean }[] }>;
  redis?: { url: RedisConnection; prefix: string; commandTimeoutMs: number } | null;
  now?: () => number;
}

export interface HistoryStatus extends StoreStats {
  file: { path: string; bytes: number; maxBytes: number; writeErrors: number; lastError: string | null; corrupt: { reason: string; movedTo: string; at: string } | null } | null;
  cluster: { state: 'ok' | 'degraded' | 'off'; reason: string | null; received: number; dropped: number };
}

export class HistoryService {
  readonly store: HistoryStore;
  readonly recorder = new HistoryRecorder(true);
  readonly file: HistoryFile | null;
  private sync: RedisHistorySync | null = null;
  private readonly now: () => number;
  private timers: NodeJS.Timeout[] = [];
  private minuteTimer: NodeJS.Timeout | null = null;
  /** Start of the minute the recorder is filling. */
  private openMinute: number;
  private lastSample: number;
  private corrupt: { reason: string; movedTo: string; at: string } | null = null;
  private capacityCache: { at: number; view: CapacityView } | null = null;

  constructor(readonly cfg: HistorySection, private readonly deps: HistoryDeps) {
    this.now = deps.now ?? Date.now;
    // The file is rewritten before it reaches max_disk: the records held stay under half of it.
    this.store = new HistoryStore({ node: deps.node, retentionMs: cfg.retentionMs, maxBytes: Math.min(cfg.maxMemory, Math.floor(cfg.maxDisk / 2)) });
    this.file = cfg.dir === null ? null : new HistoryFile(join(cfg.dir, 'history.log'));
    const t = this.now();
    this.openMinute = Math.floor(t / 60_000) * 60_000;
    this.lastSample = t;
  }

  /** Reads the file back (a damaged one is reported and set aside) and connects to Redis. */
  async start(timers = true): Promise<void> {
    if (this.file !== null) {
      let loaded: ReturnType<HistoryFile['load']>;
      try {
        loaded = this.file.load(this.now());
      } catch (e) {
        // Unreadable (permissions, a directory in the way): the edge starts with an empty history.
        const msg = `history file ${this.file.path} cannot be read (${(e as Error).message}): starting with an empty history`;
        process.stderr.write(`${JSON.stringify({ level: 50, time: new Date(this.now()).toISOString(), msg })}\n`);
        this.deps.bus?.emit(errorEvent(msg));
        loaded = { records: [], corrupt: null };
      }
      for (const r of loaded.records) this.store.add(r, 'replace', this.now(), false);
      this.store.restoredRollups();
      if (loaded.corrupt !== null) {
        this.corrupt = { reason: `${loaded.corrupt.reason} at byte ${loaded.corrupt.offset}`, movedTo: loaded.corrupt.movedTo, at: new Date(this.now()).toISOString() };
        const msg = `history file ${this.file.path} is damaged (${this.corrupt.reason}): moved to ${loaded.corrupt.movedTo}; ${loaded.records.length} records before the damage kept`;
        process.stderr.write(`${JSON.stringify({ level: 50, time: this.corrupt.at, msg })}\n`);
        this.deps.bus?.emit(errorEvent(msg));
        this.file.compact(this.store.all());
      }
    }
    // Peers' records go to disk (a restart keeps the cluster view) but are never sent on as ours.
    this.store.onStored = (bytes, rec) => { this.file?.append(bytes); if (rec.node === this.deps.node) this.sync?.push(bytes); };
    if (this.deps.redis) {
      const { RedisHistorySync } = await import('./redis-sync.js');
      this.sync = new RedisHistorySync({ url: this.deps.redis.url, prefix: this.deps.redis.prefix, node: this.deps.node, maxLen: this.cfg.redisMaxLen, commandTimeoutMs: Math.max(1000, this.deps.redis.commandTimeoutMs) },
        (recs) => { for (const r of recs) this.store.add(r, 'replace', this.now()); });
    }
    if (!timers) return;
    const sampler = setInterval(() => this.sample(), this.cfg.sampleMs);
    sampler.unref();
    this.timers.push(sampler);
    if (this.sync !== null) {
      const s = setInterval(() => { void this.sync?.round(); }, this.cfg.syncMs);
      s.unref();
      this.timers.push(s);
      void this.sync.round();
    }
    this.scheduleMinute();
  }

  private scheduleMinute(): void {
    const t = this.now();
    const next = Math.floor(t / 60_000) * 60_000 + 60_000;
    this.minuteTimer = setTimeout(() => { this.tick(); this.scheduleMinute(); }, next - t + 100);
    this.minuteTimer.unref();
  }

  /** One concurrency/queue sample over the time since the previous one. */
  sample(): void {
    const t = this.now();
    const period = Math.min(t - this.lastSample, 10 * this.cfg.sampleMs);
    this.lastSample = t;
    if (period > 0) this.recorder.sample(this.deps.pools(), period);
  }

  /** Closes every minute that has ended, rolls up, applies the bounds and writes the file. */
  tick(): void {
    const t = this.now();
    const minute = Math.floor(t / 60_000) * 60_000;
    if (minute > this.openMinute) {
      this.addOwn(this.recorder.close(this.openMinute, this.deps.node));
      this.openMinute = minute;
    }
    this.store.maintain(t);
    this.persist();
  }

  private persist(): void {
    const f = this.file;
    if (f === null) return;
    f.flush();
    const live = this.store.bytes;
    if (f.size > Math.min(this.cfg.maxDisk * 0.9, 2 * live + (1 << 20))) f.compact(this.store.all());
  }

  private addOwn(recs: HistoryRecord[]): void {
    const now = this.now();
    for (const r of recs) this.store.add(r, 'merge', now);
  }

  /** Records a worker thread closed (encoded, node name set by the worker). */
  addWorkerRecords(encoded: readonly Uint8Array[]): void {
    const recs: HistoryRecord[] = [];
    for (const b of encoded) {
      try { const r = decodeRecord(b); r.node = this.deps.node; recs.push(r); } catch { /* a worker never sends a bad record; nothing to keep */ }
    }
    this.addOwn(recs);
  }

  /**
   * Puts what the open minute holds so far into the store (the slot keeps adding up until the minute
   * ends), so that an answer includes this minute; worker threads report theirs when it ends.
   */
  private flushOpen(): void {
    this.tick();
    this.addOwn(this.recorder.close(this.openMinute, this.deps.node));
  }

  history(range: string, filter: { kind?: SeriesKind | null; backend?: string | null; server?: string | null; node?: string | null } = {}): HistoryAnswer {
    this.flushOpen();
    return historyQuery(this.store, range, this.now(), filter);
  }

  capacity(o: { days?: number; target?: number; growthPct?: number; lose?: string | null } = {}): CapacityView {
    this.flushOpen();
    const servers: { backend: string; name: string; backup: boolean }[] = [];
    for (const p of this.deps.pools()) for (const s of p.servers()) servers.push({ backend: p.name, name: s.name, backup: s.backup === true });
    return capacityView(this.store, {
      target: o.target ?? this.cfg.target, capacityRps: new Map(Object.entries(this.cfg.capacityRps)), days: o.days ?? 30,
      growthPct: o.growthPct ?? 0, lose: o.lose ?? null, servers, now: this.now(),
    });
  }

  /** The default capacity view, recomputed at most once a minute (for /metrics). */
  capacityCached(): CapacityView {
    const t = this.now();
    if (this.capacityCache === null || t - this.capacityCache.at > 60_000) this.capacityCache = { at: t, view: this.capacity() };
    return this.capacityCache.view;
  }

  status(): HistoryStatus {
    const s = this.sync;
    return {
      ...this.store.stats(),
      file: this.file === null ? null : { path: this.file.path, bytes: this.file.size, maxBytes: this.cfg.maxDisk, writeErrors: this.file.writeErrors, lastError: this.file.lastError, corrupt: this.corrupt },
      cluster: s === null ? { state: 'off', reason: null, received: 0, dropped: 0 } : { state: s.state, reason: s.lastError, received: s.received, dropped: s.dropped },
    };
  }

  /** One exchange with the other nodes now (tests, and the admin API before answering). */
  async syncNow(): Promise<void> { await this.sync?.round(); }

  /** Closes the open (partial) minute so a restart keeps it, writes the file, disconnects. */
  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (this.minuteTimer !== null) clearTimeout(this.minuteTimer);
    this.addOwn(this.recorder.close(this.openMinute, this.deps.node));
    this.store.maintain(this.now());
    this.persist();
    this.file?.close();
    await this.sync?.round();
    await this.sync?.close();
  }
}

export { TIERS };
