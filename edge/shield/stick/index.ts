// Public surface of the stick-table area (see each module for details).
export * from './config.js';
export { StickTable } from './table.js';
export type { StickTableOptions, StandardRate } from './table.js';
export { RateColumn, SLICES } from './rate.js';
export { SyncPool, HOT_ROUNDS } from './sync-pool.js';
export { RedisShare, createRedis } from './redis.js';
export type { RedisClient, RedisShareOptions } from './redis.js';
export { BanList } from './bans.js';
export type { BanInfo, BanMeta, BanListOptions } from './bans.js';
export { StickCounterStore } from './counter-store.js';
export type { StickCounterStoreOptions } from './counter-store.js';
export { GuardCounters, createGuardMemory } from './shared-memory.js';
export type { GuardMemory } from './shared-memory.js';
export { fnv1a, rehash, boundKey } from './keys.js';
