// Config sections owned by other modules: each contributes a JSON-Schema fragment and a normaliser.
// Adding a section = one entry here; the loader and `portcullis schema` pick it up.
import type { JsonSchema, SchemaFragments } from './schema.js';
import type { EdgeConfig } from './normalize.js';
import { connectionLimitsSchema, normalizeConnectionLimits } from '../firewall-config.js';
import { clientLimitsSchema, normalizeClientLimits, globalLimitsSchema, normalizeGlobalLimits, tablesSchema, normalizeTables, sharedSchema, normalizeShared } from '../stick/config.js';
import { trustedProxiesSchema, normalizeTrustedProxies } from '../identity.js';

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
