// The `geo:` section of the Portcullis config.
//
//   geo:
//     country_db: default          # default (bundled, no licence key) | off | path/to/GeoLite2-Country.mmdb
//     asn_db: default              # default (bundled @ip-location-db/asn) | off | path/to/GeoLite2-ASN.mmdb
//     cache_size: 10000            # LRU entries; 0 disables
// Relative paths are resolved against the config file's directory.

import { isAbsolute, resolve } from 'node:path';

/** Geo results cached per address by default. Defined here, not in lookup.ts: reading the config must not load maxmind. */
export const DEFAULT_GEO_CACHE_SIZE = 10_000;

export const MAX_GEO_CACHE_SIZE = 10_000_000;

/** What the `geo:` section says: the part of openGeo's options (lookup.ts GeoOptions) a config sets. */
export interface GeoSettings {
  /** Path to a country .mmdb; omitted or 'default' = bundled database; false or 'off' = no country. */
  countryDb?: string | false;
  /** Path to an ASN .mmdb; omitted or 'default' = the bundled @ip-location-db/asn data (when installed); false or 'off' = no ASN data. */
  asnDb?: string | false;
  /** Results cached (LRU, by address text). Default 10,000; 0 disables the cache. */
  cacheSize?: number;
}

export const geoConfigSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    country_db: {
      type: 'string',
      minLength: 1,
      default: 'default',
      description: "Country .mmdb path, 'default' for the bundled CC0 database, or 'off'.",
    },
    asn_db: {
      type: 'string',
      minLength: 1,
      default: 'default',
      description: "ASN .mmdb path (GeoLite2-ASN format), 'default' for the bundled @ip-location-db/asn data (CC BY 4.0), or 'off'.",
    },
    cache_size: {
      type: 'integer',
      minimum: 0,
      maximum: MAX_GEO_CACHE_SIZE,
      default: DEFAULT_GEO_CACHE_SIZE,
      description: 'Entries in the lookup LRU cache; 0 disables it.',
    },
  },
} as const;

export class GeoConfigError extends Error {
  constructor(readonly key: string, message: string) {
    super(`geo.${key}: ${message}`);
  }
}

function dbPath(key: string, v: unknown, baseDir: string): string | false | undefined {
  if (v === undefined || v === null) return undefined;
  if (v === false || v === 'off') return false;
  if (typeof v !== 'string' || v.length === 0) throw new GeoConfigError(key, `expected a file path, 'default' or 'off', got ${JSON.stringify(v)}`);
  if (v === 'default') {
    return 'default';
  }
  return isAbsolute(v) ? v : resolve(baseDir, v);
}

/**
 * Validates a raw `geo:` section (already parsed from YAML/JSON) and turns it into openGeo's settings.
 * Throws GeoConfigError naming the key on bad input. `baseDir` resolves relative paths.
 */
export function normalizeGeoConfig(raw: unknown, baseDir: string = process.cwd()): GeoSettings {
  if (raw === undefined || raw === null) return { cacheSize: DEFAULT_GEO_CACHE_SIZE };
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new GeoConfigError('', 'the geo section must be a mapping');
  const r = raw as Record<string, unknown>;
  for (const k of Object.keys(r)) {
    if (!(k in geoConfigSchema.properties)) {
      throw new GeoConfigError(k, `unknown key; expected one of ${Object.keys(geoConfigSchema.properties).join(', ')}`);
    }
  }
  const cache = r['cache_size'] ?? DEFAULT_GEO_CACHE_SIZE;
  if (typeof cache !== 'number' || !Number.isInteger(cache) || cache < 0 || cache > MAX_GEO_CACHE_SIZE) {
    throw new GeoConfigError('cache_size', `expected an integer from 0 to ${MAX_GEO_CACHE_SIZE}, got ${JSON.stringify(cache)}`);
  }
  const out: GeoSettings = { cacheSize: cache };
  const country = dbPath('country_db', r['country_db'], baseDir);
  const asn = dbPath('asn_db', r['asn_db'], baseDir);
  if (country !== undefined) out.countryDb = country;
  if (asn !== undefined) out.asnDb = asn;
  return out;
}
