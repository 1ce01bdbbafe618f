// `history:` — the traffic history and capacity view (docs/history.md).
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { JsonSchema } from '../config/schema.js';
import { duration, size } from '../config/schema.js';

export interface HistorySection {
  enabled: boolean;
  /** Directory of the history file; null: memory only (`dir: off`). */
  dir: string | null;
  retentionMs: [number, number, number];
  maxMemory: number;
  maxDisk: number;
  sampleMs: number;
  syncMs: number;
  redisMaxLen: number;
  target: number;
  /** "backend/server" or "backend" → requests per second it can take. */
  capacityRps: Record<string, number>;
}

export const historySchema: JsonSchema = {
  type: 'object', additionalProperties: false,
  description: 'Traffic history (per-minute aggregates rolled up to 5 min and 1 h) and capacity view (docs/history.md)',
  properties: {
    enabled: { type: 'boolean', default: true },
    dir: { type: 'string', default: 'portcullis.history', description: 'Directory of the history file, relative to the config; "off": memory only (also the default for a config given as text, without a file)' },
    retention: {
      type: 'object', additionalProperties: false,
      properties: {
        minute: duration('Keep 1-minute aggregates this long', '48h'),
        five_minute: duration('Keep 5-minute aggregates this long', '30d'),
        hour: duration('Keep 1-hour aggregates this long', '400d'),
      },
    },
    max_memory: size('Bound of the records held in memory; beyond it the oldest buckets go first', '128mb'),
    max_disk: size('Bound of the history file (rewritten compacted before it passes this)', '512mb'),
    sample_interval: duration('Period of the concurrency and queue-length samples', '1s'),
    sync_interval: duration('Period of the exchange with other nodes through shared.redis', '5s'),
    redis_maxlen: { type: 'integer', minimum: 100, default: 20000, description: 'Entries kept per node in its Redis history stream (one per sync round with news)' },
    target: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 0.7, description: 'Target utilisation band of the capacity view (0.7 = 70 %)' },
    capacity: {
      type: 'object', additionalProperties: { type: 'number', exclusiveMinimum: 0 },
      description: 'Requests per second a server ("backend/server") or a backend ("backend") can take: utilisation by rate',
    },
  },
};

/**
 * `configFile`: the config's path; when no such file exists (a config given as text, e.g. by a test)
 * and `dir` is not set, the history stays in memory rather than landing in the working directory.
 */
export function normalizeHistory(raw: unknown, baseDir: string, configFile?: string): HistorySection {
  const r = (raw ?? {}) as {
    enabled?: boolean; dir?: string; retention?: { minute?: number; five_minute?: number; hour?: number };
    max_memory?: number; max_disk?: number; sample_interval?: number; sync_interval?: number; redis_maxlen?: number; target?: number; capacity?: Record<string, number>;
  };
  const ret = r.retention ?? {};
  return {
    enabled: r.enabled !== false,
    dir: r.dir === 'off' || (r.dir === undefined && configFile !== undefined && !existsSync(configFile)) ? null : resolve(baseDir, r.dir ?? 'portcullis.history'),
    retentionMs: [ret.minute ?? 48 * 3_600_000, ret.five_minute ?? 30 * 86_400_000, ret.hour ?? 400 * 86_400_000],
    maxMemory: r.max_memory ?? 128 * 1024 * 1024,
    maxDisk: r.max_disk ?? 512 * 1024 * 1024,
    sampleMs: Math.max(100, r.sample_interval ?? 1000),
    syncMs: Math.max(200, r.sync_interval ?? 5000),
    redisMaxLen: r.redis_maxlen ?? 20000,
    target: r.target ?? 0.7,
    capacityRps: { ...(r.capacity ?? {}) },
  };
}
