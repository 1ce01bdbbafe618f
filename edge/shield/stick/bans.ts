// Bans: (key, until, reason, rule id, who set it). Checked on every request from a local Map
// (isBanned is synchronous and allocation-free), kept apart from the stick tables' LRU so an
// evicted key never comes back with a clean slate while its ban runs.
//
// Shared mode (a `shared:` Redis): bans live in one Redis hash `{prefix}:bans` (field = key, value =
// JSON) and every change is published on `<prefix>:bans`, so every node applies it within
// milliseconds (< 1 s); a full reload every `ban_refresh` (5 s) and on every reconnect catches
// anything missed. A restarted edge reloads the hash at start(). Expired entries are dropped by
// whichever node sees them. Redis being down never blocks add/remove: the change applies locally
// at once and is written when Redis is back.
// Local-only mode keeps bans in memory; with `workers: N` pass `channel` so the worker threads of
// one process tell each other through a BroadcastChannel.
import { BroadcastChannel } from 'node:worker_threads';
import { randomUUID } from 'node:crypto';
import type { EventBus } from '../../observe/events/bus.js';
import { banEvent, banTtlSec, unbanEvent, remoteBanReason, remoteUnbanReason } from '../../observe/events/build.js';
import type { SharedConfig } from './config.js';
import type { RedisClient } from './redis.js';

export interface BanInfo {
  key: string;
  /** Wall-clock ms when the ban ends. */
  until: number;
  reason: string;
  ruleId: string | null;
  /** Who set it: a rule, `guard`, an admin user … */
  by: string;
  /** Wall-clock ms when it was set. */
  at: number;
  /** Node that set it. */
  node: string;
}

export interface BanMeta { reason: string; ruleId?: string | null; by: string }

export interface BanListOptions {
  shared?: SharedConfig | null;
  /** Reuse an existing ioredis client for writes/reads (a subscriber connection is duplicated from it). */
  client?: RedisClient;
  bus?: EventBus;
  nodeId?: string;
  now?: () => number;
  /** Most bans kept; beyond it the oldest set is dropped (and counted in `dropped`). */
  max?: number;
  /** Local mode with worker threads: BroadcastChannel name shared by the workers of one process. */
  channel?: string;
}

interface BanMessage { op: 'add' | 'remove'; key: string; ban?: BanInfo; node: string; by?: string; origin?: string }

export class BanList {
  private readonly bans = new Map<string, BanInfo>();
  /** Keys whose current state (present or removed) still has to be written to Redis. */
  private readonly pending = new Map<string, BanInfo | null>();
  private readonly bus: EventBus | undefined;
  private readonly now: () => number;
  private readonly max: number;
  readonly nodeId: string;
  /** This BanList instance (worker threads of one node share the node id). */
  private readonly origin = randomUUID();
  private readonly shared: SharedConfig | null;
  private client: RedisClient | null = null;
  private sub: RedisClient | null = null;
  private ownsClient = false;
  private timer: NodeJS.Timeout | null = null;
  private bc: BroadcastChannel | null = null;
  private readonly hashKey: string;
  private readonly channelName: string;
  private flushing = false;
  private closed = false;
  /** Bans dropped because `max` was reached. */
  dropped = 0;
  /** Full reloads from Redis that succeeded. */
  reloads = 0;

  constructor(opts: BanListOptions = {}) {
    this.bus = opts.bus;
    this.now = opts.now ?? Date.now;
    this.max = opts.max ?? 1_000_000;
    this.shared = opts.shared ?? null;
    this.nodeId = opts.nodeId ?? this.shared?.nodeId ?? `node-${process.pid}`;
    const prefix = this.shared?.prefix ?? 'portcullis';
    this.hashKey = `{${prefix}}:bans`;
    this.channelName = `${prefix}:bans`;
    this.client = this.shared !== null ? opts.client ?? null : null;
    if (opts.channel) {
      this.bc = new BroadcastChannel(opts.channel);
      this.bc.onmessage = (ev: unknown) => this.onMessage((ev as { data: BanMessage }).data);
      this.bc.unref();
    }
  }

  get size(): number { return this.bans.size; }

  /** Loads bans from Redis (a restarted edge keeps them), subscribes to changes, starts the refresh. */
  async start(): Promise<void> {
    if (!this.shared) return;
    if (this.client === null) {
      // Our own connection. Loaded here rather than imported at the top: ioredis costs ~8 MB of
      // RSS and a local-only BanList never needs it. Changes made before start() wait in `pending`.
      const { createRedis } = await import('./redis.js');
      if (this.closed) return;
      this.client = createRedis(this.shared);
      this.ownsClient = true;
    }
    const client = this.client;
    // Subscriber connection: same target, its own socket (a subscribed connection can't run commands).
    // Redis and Cluster both have duplicate(); their option types differ, so TypeScript cannot call it on the union.
    const sub = (client as { duplicate(): RedisClient }).duplicate();
    this.sub = sub;
    sub.on('error', () => { /* reconnects by itself; the refresh covers the gap */ });
    sub.on('message', (_ch: string, msg: string) => {
      try { this.onMessage(JSON.parse(msg) as BanMessage); } catch { /* not ours */ }
    });
    // (Re)subscribed: reload too, so a change published while the subscription was down (another
    // node flushing its outage-time bans right after a Redis restart) is not missed until ban_refresh.
    const subscribe = (): void => {
      sub.subscribe(this.channelName).then(() => this.refresh(), () => { /* retried on next ready */ });
    };
    sub.on('ready', subscribe);
    if (sub.status === 'ready') subscribe();
    client.on('ready', () => { void this.refresh(); });
    this.timer = setInterval(() => { void this.refresh(); }, this.shared.banRefreshMs);
    this.timer.unref();
    await waitReady(client, this.shared.commandTimeoutMs * 8);
    await this.refresh();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.sub?.disconnect();
    if (this.ownsClient) this.client?.disconnect();
    this.bc?.close();
  }

  add(key: string, ttlMs: number, meta: BanMeta): BanInfo {
    const at = this.now();
    const ban: BanInfo = { key, until: at + Math.max(0, ttlMs), reason: meta.reason, ruleId: meta.ruleId ?? null, by: meta.by, at, node: this.nodeId };
    this.put(ban);
    this.bus?.emit(banEvent({ key, ttlSec: banTtlSec(ttlMs), reason: ban.reason, rule: ban.ruleId, who: ban.by }));
    this.broadcast({ op: 'add', key, ban, node: this.nodeId, origin: this.origin });
    if (this.shared) { this.pending.set(key, ban); void this.flush(); }
    return ban;
  }

  remove(key: string, by: string): boolean {
    const had = this.bans.delete(key);
    if (had) this.bus?.emit(unbanEvent({ key, reason: 'removed', who: by }));
    this.broadcast({ op: 'remove', key, node: this.nodeId, by, origin: this.origin });
    if (this.shared) { this.pending.set(key, null); void this.flush(); }
    return had;
  }

  /** The running ban of `key`, or null. Synchronous, local map only. */
  isBanned(key: string, now: number): BanInfo | null {
    const b = this.bans.get(key);
    if (b === undefined) return null;
    if (b.until > now) return b;
    this.bans.delete(key);
    if (b.node === this.nodeId) this.bus?.emit(unbanEvent({ key, reason: 'expired', who: 'expiry' }));
    return null;
  }

  list(now = this.now()): BanInfo[] {
    const out: BanInfo[] = [];
    for (const b of this.bans.values()) if (b.until > now) out.push(b);
    return out;
  }

  /** Drops expired bans (call from a timer in local mode; the shared refresh does it too). */
  sweep(now = this.now()): number {
    let n = 0;
    for (const [k, b] of this.bans) if (b.until <= now) { this.bans.delete(k); n++; }
    return n;
  }

  /** Full reload from Redis; writes pending changes first. Never throws. */
  async refresh(): Promise<boolean> {
    const client = this.client;
    if (!client || client.status !== 'ready') return false;
    await this.flush();
    try {
      const all = await client.hgetall(this.hashKey);
      const now = this.now();
      const expired: string[] = [];
      const seen = new Set<string>();
      for (const [k, json] of Object.entries(all)) {
        let b: BanInfo;
        try { b = JSON.parse(json) as BanInfo; } catch { expired.push(k); continue; }
        if (!(b.until > now)) { expired.push(k); continue; }
        seen.add(k);
        if (this.pending.has(k)) continue; // our newer local change wins until written
        const cur = this.bans.get(k);
        if (!cur || cur.until !== b.until) this.put(b);
      }
      // Bans removed in Redis while our subscription was down.
      for (const k of this.bans.keys()) if (!seen.has(k) && !this.pending.has(k)) this.bans.delete(k);
      if (expired.length > 0) await client.hdel(this.hashKey, ...expired);
      this.sweep(now);
      this.reloads++;
      return true;
    } catch {
      return false;
    }
  }

  private async flush(): Promise<void> {
    const client = this.client;
    if (!client || this.flushing || this.pending.size === 0 || client.status !== 'ready') return;
    this.flushing = true;
    try {
      for (const [key, ban] of [...this.pending]) {
        if (ban) {
          const ttl = ban.until - this.now();
          if (ttl > 0) await client.hset(this.hashKey, key, JSON.stringify(ban));
        } else {
          await client.hdel(this.hashKey, key);
        }
        const msg: BanMessage = ban ? { op: 'add', key, ban, node: this.nodeId, origin: this.origin } : { op: 'remove', key, node: this.nodeId, origin: this.origin };
        await client.publish(this.channelName, JSON.stringify(msg));
        if (this.pending.get(key) === ban) this.pending.delete(key);
      }
    } catch {
      // Redis unreachable: keep pending, the next ready/refresh retries.
    } finally {
      this.flushing = false;
    }
  }

  private onMessage(m: BanMessage): void {
    if (!m || m.origin === this.origin || typeof m.key !== 'string') return;
    if (m.op === 'add' && m.ban && m.ban.until > this.now()) {
      this.put(m.ban);
      // Reported once, by the thread that set it; another node's ban is reported as applied here.
      if (m.ban.node !== this.nodeId) this.bus?.emit(banEvent({ key: m.key, ttlSec: banTtlSec(m.ban.until - this.now()), reason: remoteBanReason(m.ban.node, m.ban.reason), rule: m.ban.ruleId, who: m.ban.by }));
    } else if (m.op === 'remove') {
      if (this.bans.delete(m.key) && m.node !== this.nodeId) this.bus?.emit(unbanEvent({ key: m.key, reason: remoteUnbanReason(m.node), who: m.by ?? 'remote' }));
    }
  }

  private put(ban: BanInfo): void {
    this.bans.delete(ban.key); // re-insert: Map order = age, for the `max` bound
    if (this.bans.size >= this.max) {
      const oldest = this.bans.keys().next().value;
      if (oldest !== undefined) { this.bans.delete(oldest); this.dropped++; }
    }
    this.bans.set(ban.key, ban);
  }

  private broadcast(m: BanMessage): void {
    this.bc?.postMessage(m);
  }
}

/** Resolves when the client is ready, reports an error (Redis unusable: start locally) or after `ms`. */
function waitReady(client: RedisClient, ms: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => { clearTimeout(t); client.off('ready', done); client.off('error', done); resolve(); };
    const t = setTimeout(done, ms);
    client.once('ready', done);
    client.once('error', done);
  });
}
