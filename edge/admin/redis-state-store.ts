// Admin state (runtime bans and rule modes) in Redis hashes, shared by every node (see state-store.ts).
// A module of its own so that ioredis (~8 MB of RSS) is loaded only when the admin state lives in Redis.
import { Redis } from 'ioredis';
import { closeRedis } from '../events/redis-sink.js';
import { parseState, pruneExpired } from './state-store.js';
import type { AdminState, StateStore, StoredBan } from './state-store.js';
import type { RuleMode } from '../events/schema.js';

export class RedisStateStore implements StateStore {
  readonly kind = 'redis' as const;
  private readonly redis: Redis;
  private readonly bansKey: string;
  private readonly modesKey: string;

  constructor(url: string, prefix = 'portcullis:admin:', private readonly now: () => number = Date.now) {
    this.redis = new Redis(url, { maxRetriesPerRequest: 2 });
    this.redis.on('error', () => { /* surfaced as failed API calls */ });
    this.bansKey = `${prefix}bans`;
    this.modesKey = `${prefix}modes`;
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
  async putMode(rule: string, mode: RuleMode): Promise<void> { await this.redis.hset(this.modesKey, rule, mode); }
  async deleteMode(rule: string): Promise<void> { await this.redis.hdel(this.modesKey, rule); }
  async close(): Promise<void> { await closeRedis(this.redis); }
}

function safeJson(v: string): unknown { try { return JSON.parse(v); } catch { return null; } }
