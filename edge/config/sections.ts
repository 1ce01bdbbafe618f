// Config sections owned by other modules: each contributes a JSON-Schema fragment and a normaliser.
// Adding a section = one entry here; the loader and `portcullis schema` pick it up.
import type { JsonSchema, SchemaFragments } from './schema.js';
import type { EdgeConfig } from './normalize.js';
import { connectionLimitsSchema, normalizeConnectionLimits } from '../shield/firewall/config.js';
import { clientLimitsSchema, normalizeClientLimits, globalLimitsSchema, normalizeGlobalLimits, tablesSchema, normalizeTables, sharedSchema, normalizeShared } from '../shield/stick/config.js';
import { trustedProxiesSchema, normalizeTrustedProxies } from '../pipeline/identity.js';
import { geoConfigSchema, normalizeGeoConfig } from '../../geo/config.js';
import { resolve } from 'node:path';
import { duration } from './schema.js';
import { haSchema, normalizeHa } from '../main/ha.js';
import { historySchema, normalizeHistory } from '../history/config.js';

/** `rules:` — rule files for the rule language (docs/rules.md). */
export interface RulesSection { files: string[]; watch: boolean; runTests: boolean }
const rulesSchema: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['files'],
  description: 'Rule files (docs/rules.md), evaluated in order; reloaded on change, SIGHUP or POST /api/rules/reload',
  properties: {
    files: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 }, description: 'Paths relative to the config file' },
    watch: { type: 'boolean', default: true, description: 'Reload when a rule or list file changes' },
    run_tests: { type: 'boolean', default: true, description: 'Run the files\' inline tests before a reload takes effect' },
  },
};

/** `events:` — where security events go besides the admin WebSocket feed. */
export interface EventsSection { log: string | null; redisStream: string; streamMaxLen: number; capacity: number }
const eventsSchema: JsonSchema = {
  type: 'object', additionalProperties: false,
  properties: {
    log: { type: 'string', default: 'stdout', description: '"stdout", "stderr", "off" or a file path: one JSON line per event (for a SIEM)' },
    redis_stream: { type: 'string', default: 'portcullis:events', description: 'Redis Stream shared by every node (when shared.redis is set)' },
    stream_maxlen: { type: 'integer', minimum: 100, default: 100000 },
    capacity: { type: 'integer', minimum: 64, default: 16384, description: 'Events buffered per sink before dropping (never blocks requests)' },
  },
};
void duration;

interface Section {
  /** Where the fragment goes: a top-level key or a key under `limits`. */
  at: 'top' | 'limits';
  key: string;
  schema: JsonSchema;
  /** Returns the normalised value stored in cfg.sections[name]. */
  normalize?: (raw: unknown, cfg: EdgeConfig) => unknown;
  name: string;
}

const SECTIONS: Section[] = [
  { at: 'limits', key: 'client', name: 'client', schema: clientLimitsSchema, normalize: (raw) => normalizeClientLimits(raw) },
  { at: 'limits', key: 'global', name: 'global', schema: globalLimitsSchema, normalize: (raw) => normalizeGlobalLimits(raw) },
  { at: 'limits', key: 'connection', name: 'connection', schema: connectionLimitsSchema as unknown as JsonSchema, normalize: (raw) => normalizeConnectionLimits(raw) },
  { at: 'top', key: 'trusted_proxies', name: 'trusted_proxies', schema: trustedProxiesSchema as unknown as JsonSchema, normalize: (raw) => normalizeTrustedProxies(raw) },
  { at: 'top', key: 'tables', name: 'tables', schema: tablesSchema, normalize: (raw) => normalizeTables(raw) },
  { at: 'top', key: 'shared', name: 'shared', schema: sharedSchema, normalize: (raw, cfg) => normalizeShared(raw, cfg.nodeId) },
  { at: 'top', key: 'geo', name: 'geo', schema: geoConfigSchema as unknown as JsonSchema, normalize: (raw, cfg) => normalizeGeoConfig(raw, cfg.baseDir) },
  {
    at: 'top', key: 'rules', name: 'rules', schema: rulesSchema,
    normalize: (raw, cfg): RulesSection | null => {
      if (raw === undefined || raw === null) return null;
      const r = raw as { files: string[]; watch?: boolean; run_tests?: boolean };
      return { files: r.files.map((f) => resolve(cfg.baseDir, f)), watch: r.watch !== false, runTests: r.run_tests !== false };
    },
  },
  { at: 'top', key: 'ha', name: 'ha', schema: haSchema, normalize: (raw) => normalizeHa(raw) },
  { at: 'top', key: 'history', name: 'history', schema: historySchema, normalize: (raw, cfg) => normalizeHistory(raw, cfg.baseDir, cfg.file) },
  {
    at: 'top', key: 'events', name: 'events', schema: eventsSchema,
    normalize: (raw): EventsSection => {
      const r = (raw ?? {}) as { log?: string; redis_stream?: string; stream_maxlen?: number; capacity?: number };
      return { log: r.log === 'off' ? null : r.log ?? 'stdout', redisStream: r.redis_stream ?? 'portcullis:events', streamMaxLen: r.stream_maxlen ?? 100000, capacity: r.capacity ?? 16384 };
    },
  },
];

export function sectionFragments(): SchemaFragments {
  const f: SchemaFragments = { top: {}, limits: {} };
  for (const s of SECTIONS) f[s.at][s.key] = s.schema;
  return f;
}

export function normalizeSections(raw: Record<string, unknown>, cfg: EdgeConfig): void {
  const limits = (raw.limits ?? {}) as Record<string, unknown>;
  for (const s of SECTIONS) {
    if (!s.normalize) continue;
    const value = s.at === 'top' ? raw[s.key] : limits[s.key];
    cfg.sections[s.name] = s.normalize(value, cfg);
  }
  // Derived: the IPv6 client prefix is shared by the in-app guard, identity and the firewall.
  cfg.sections.ipv6_prefix = (cfg.sections.client as { ipv6Prefix?: number } | undefined)?.ipv6Prefix ?? 64;
}
