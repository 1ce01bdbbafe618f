// Admin state (runtime bans and rule modes) in Redis hashes, shared by every node (see state-store.ts).
// A module of its own so that ioredis (~8 MB of RSS) is loaded only when the admin state lives in Redis.
//
// Redis trouble (down, NOAUTH, OOM, READONLY …) never fails the edge nor an admin call: commands
// never queue (no offline queue, a short timeout), a write that fails waits in `pending` and is
// written once the connection is ready again, and load() answers with the last state it read plus
// the pending writes (`stale` says so) — the server re-applies the real state when Redis is back.
//
// Rule-mode changes are also published on a channel so every node applies them within milliseconds
// (bans travel with BanList). The connection follows the Sentinel master when one is configured.
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { closeRedis, connectRedis } from '../observe/events/redis-sink.js';
import type { RedisConnection } from '../shield/stick/config.js';
import { parseState, pruneExpired } from './state-store.js';
import type { AdminState, ModeChange, RuntimeServer, StateStore, StoredBan } from './state-store.js';
import type { RuleMode } from '../observe/events/schema.js';

type Write = { hash: 'bans' | 'modes' | 'servers'; key: string; value: string | null };

export class RedisStateStore implements StateStore {
  readonly kind = 'redis' as const;
  private readonly redis: Redis;
  private readonly bansKey: string;
  private readonly modesKey: string;
  private readonly serversKey: string;
  /** Writes not acknowledged by Redis yet, in order (last one per key wins). */
  private readonly pending = new Map<string, Write>();
  private last: AdminState = { bans: {}, modes: {}, servers: {} };
  private flushing = false;
  /** true when the last load() could not read Redis (answered from memory). */
  stale = false;
  /** The last error Redis gave us (null after a successful call). */
  lastError: string | null = null;
  /** Rule-mode changes are published here so every node applies them at once. */
  private readonly channel: string;
  private readonly origin = randomUUID();
  private sub: Redis | null = null;

  constructor(url: RedisConnection, prefix = 'portcullis:admin:', private readonly now: () => number = Date.now, private readonly timeoutMs = 1000) {
    this.redis = connectRedis(url, {
      enableOfflineQueue: false, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false,
      commandTimeout: timeoutMs, connectTimeout: Math.max(500, timeoutMs),
      retryStrategy: (times: number) => Math.min(100 * times, 1000),
    });
    this.redis.on('error', (e: Error) => { this.lastError = e.message; });
    this.redis.on('ready', () => { void this.flush(); });
    this.bansKey = `${prefix}bans`;
    this.modesKey = `${prefix}modes`;
    this.serversKey = `${prefix}servers`;
    this.channel = `${prefix}changes`;
  }

  /** Called each time the connection becomes ready (the admin server re-applies the state then). */
  onReady(fn: () => void): void { this.redis.on('ready', fn); }

  get connected(): boolean { return this.redis.status === 'ready'; }

  /** The connection, for other admin state kept in the same Redis (the failed-login throttle). */
  get client(): Redis { return this.redis; }

  async load(): Promise<AdminState> {
    try {
      await this.whenReady();
      const [bans, modes, servers] = await Promise.all([this.redis.hgetall(this.bansKey), this.redis.hgetall(this.modesKey), this.redis.hgetall(this.serversKey)]);
      const text = JSON.stringify({
        bans: Object.fromEntries(Object.entries(bans).map(([k, v]) => [k, safeJson(v)])),
        modes,
        servers: Object.fromEntries(Object.entries(servers).map(([k, v]) => [k, safeJson(v)])),
      });
      this.last = parseState(text, `redis ${this.bansKey}/${this.modesKey}`);
      this.stale = false;
      this.lastError = null;
    } catch (e) {
      this.stale = true;
      this.lastError = (e as Error).message;
    }
    // Our own writes not acknowledged yet are part of the state.
    const out: AdminState = { bans: { ...this.last.bans }, modes: { ...this.last.modes }, servers: { ...this.last.servers } };
    for (const w of this.pending.values()) {
      if (w.hash === 'bans') { if (w.value === null) delete out.bans[w.key]; else out.bans[w.key] = safeJson(w.value) as StoredBan; }
      else if (w.hash === 'servers') { if (w.value === null) delete out.servers[w.key]; else out.servers[w.key] = safeJson(w.value) as RuntimeServer; }
      else if (w.value === null) delete out.modes[w.key]; else out.modes[w.key] = w.value as RuleMode;
    }
    return pruneExpired(out, this.now());
  }

  async putBan(key: string, ban: StoredBan): Promise<void> { await this.write({ hash: 'bans', key, value: JSON.stringify(ban) }); }
  async deleteBan(key: string): Promise<void> { await this.write({ hash: 'bans', key, value: null }); }
  async putMode(rule: string, mode: RuleMode): Promise<void> {
    await this.write({ hash: 'modes', key: rule, value: mode });
    await this.publish({ rule, mode });
  }
  async deleteMode(rule: string): Promise<void> {
    await this.write({ hash: 'modes', key: rule, value: null });
    await this.publish({ rule, mode: null });
  }
  async putServer(key: string, change: RuntimeServer | null): Promise<void> { await this.write({ hash: 'servers', key, value: change === null ? null : JSON.stringify(change) }); }

  watch(fn: (change: ModeChange) => void): void {
    if (this.sub !== null) return;
    // The subscriber may queue its SUBSCRIBE until connected (the main connection never queues commands).
    const sub = this.redis.duplicate({ enableOfflineQueue: true, commandTimeout: undefined });
    sub.on('error', () => { /* reconnects; a change missed meanwhile is in the hash for the next start/reload */ });
    sub.on('message', (_ch: string, text: string) => {
      let m: { origin?: string; rule?: unknown; mode?: unknown };
      try { m = JSON.parse(text) as typeof m; } catch { return; }
      if (m.origin === this.origin || typeof m.rule !== 'string') return;
      fn({ rule: m.rule, mode: typeof m.mode === 'string' ? (m.mode as RuleMode) : null });
    });
    void sub.subscribe(this.channel).catch(() => undefined);
    this.sub = sub;
  }

  async close(): Promise<void> {
    if (this.sub !== null) await closeRedis(this.sub);
    await closeRedis(this.redis);
  }

  private async publish(change: ModeChange): Promise<void> {
    // The hash write is pending or done: a failed publish only delays the other nodes to their next reload.
    if (this.redis.status !== 'ready') return;
    await this.redis.publish(this.channel, JSON.stringify({ origin: this.origin, ...change })).catch(() => undefined);
  }

  private async write(w: Write): Promise<void> {
    const id = `${w.hash}\u0000${w.key}`;
    this.pending.delete(id);
    this.pending.set(id, w);
    await this.flush();
  }

  /** Writes what is pending, in order; stops at the first failure (retried on the next ready/write). */
  private async flush(): Promise<void> {
    if (this.flushing || this.redis.status !== 'ready') return;
    this.flushing = true;
    try {
      for (const [id, w] of [...this.pending]) {
        const key = w.hash === 'bans' ? this.bansKey : w.hash === 'servers' ? this.serversKey : this.modesKey;
        if (w.value === null) await this.redis.hdel(key, w.key); else await this.redis.hset(key, w.key, w.value);
        if (this.pending.get(id) === w) this.pending.delete(id);
        const target = (w.hash === 'bans' ? this.last.bans : w.hash === 'servers' ? this.last.servers : this.last.modes) as Record<string, unknown>;
        if (w.value === null) delete target[w.key];
        else target[w.key] = w.hash === 'modes' ? w.value : safeJson(w.value);
      }
      this.lastError = null;
    } catch (e) {
      this.lastError = (e as Error).message;
    } finally {
      this.flushing = false;
    }
  }

  private whenReady(): Promise<void> {
    if (this.redis.status === 'ready') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (): void => { clearTimeout(t); this.redis.off('ready', done); this.redis.off('error', fail); resolve(); };
      const fail = (e?: Error): void => { clearTimeout(t); this.redis.off('ready', done); this.redis.off('error', fail); reject(new Error(e?.message ?? this.lastError ?? `redis ${this.redis.status}`)); };
      const t = setTimeout(fail, this.timeoutMs);
      this.redis.once('ready', done);
      this.redis.once('error', fail);
    });
  }
}

function safeJson(v: string): unknown { try { return JSON.parse(v); } catch { return null; } }
