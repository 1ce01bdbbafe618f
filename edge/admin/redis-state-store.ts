// Admin state (runtime bans and rule modes) in Redis hashes, shared by every node (see state-store.ts).
// A module of its own so that ioredis (~8 MB of RSS) is loaded only when the admin state lives in Redis.
import { Redis } from 'ioredis';
import { closeRedis, connectRedis } from '../events/redis-sink.js';
import type { RedisConnection } from '../stick/config.js';
import { parseState, pruneExpired } from './state-store.js';
import { randomUUID } from 'node:crypto';
import type { AdminState, ModeChange, StateStore, StoredBan } from './state-store.js';
import type { RuleMode } from '../events/schema.js';

export class RedisStateStore implements StateStore {
  readonly kind = 'redis' as const;
  private readonly redis: Redis;
  private readonly bansKey: string;
  private readonly modesKey: string;
  /** Rule-mode changes are published here so every node applies them at once (bans travel with BanList). */
  private readonly channel: string;
  private readonly origin = randomUUID();
  private sub: Redis | null = null;

  constructor(url: RedisConnection, prefix = 'portcullis:admin:', private readonly now: () => number = Date.now) {
    this.redis = connectRedis(url, { maxRetriesPerRequest: 2 });
    this.redis.on('error', () => { /* surfaced as failed API calls */ });
    this.bansKey = `${prefix}bans`;
    this.modesKey = `${prefix}modes`;
    this.channel = `${prefix}changes`;
  }

  async load(): Promise<AdminState> {
    const [bans, modes] = await Promise.all([this.redis.hgetall(this.bansKey), this.redis.hgetall(this.modesKey)]);
    const text = JSON.stringify({
      bans: Object.fromEntries(Object.entries(bans).map(([k, v]) => [k, safeJson(v)])),
      modes,
    });
    return pruneExpired(parseState(text, `redis ${this.bansKey}/${this.modesKey}`), this.now());
  }

  async putBan(key: string, ban: StoredBan): Promise<void> { await this.redis.hset(this.bansKey, key, JSON.stringify(ban)); }
  async deleteBan(key: string): Promise<void> { await this.redis.hdel(this.bansKey, key); }
  async putMode(rule: string, mode: RuleMode): Promise<void> {
    await this.redis.hset(this.modesKey, rule, mode);
    await this.publish({ rule, mode });
  }

  async deleteMode(rule: string): Promise<void> {
    await this.redis.hdel(this.modesKey, rule);
    await this.publish({ rule, mode: null });
  }

  watch(fn: (change: ModeChange) => void): void {
    if (this.sub !== null) return;
    const sub = this.redis.duplicate();
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
    // The hash is written already: a failed publish only delays the other nodes to their next reload.
    await this.redis.publish(this.channel, JSON.stringify({ origin: this.origin, ...change })).catch(() => undefined);
  }
}

function safeJson(v: string): unknown { try { return JSON.parse(v); } catch { return null; } }
