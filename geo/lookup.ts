// Country and ASN lookups from MaxMind DB (.mmdb) files, for the rule fields `ip.geo.country` and
// `ip.geo.asnum` (names decided by the rule language).
//
// Sources:
//   - country: a configured GeoLite2-Country / GeoIP2-Country (or City) file, else the bundled
//     default `@ip-location-db/geo-whois-asn-country-mmdb` (no licence key; package licence CC0-1.0,
//     its data includes NRO statistics under CC BY 4.0, which asks for attribution to nro.net).
//   - ASN: a configured GeoLite2-ASN / GeoIP2-ISP style file, else the bundled default
//     `@ip-location-db/asn` (RouteViews + DB-IP, CC BY 4.0; geo/asn-bundled.ts), so geo.asn works
//     out of the box; `asn_db: off` turns ASN lookups off.
// Records understood: GeoLite2 `{country: {iso_code}}` or ip-location-db `{country_code}`;
// `{autonomous_system_number, autonomous_system_organization}`.
// Files are re-read when they change on disk (also via rename-replace, as geoipupdate does); a
// file that fails to load keeps the previous database and reports through onReload.

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import maxmind from 'maxmind';
import { parseIp, formatIp } from '../lib/ip.js';
import { watchFiles } from '../lib/watch-files.js';
import { LruCache } from './lru.js';
import { BUNDLED_ASN_PACKAGE, BUNDLED_ASN_SOURCE, bundledAsnFiles, loadBundledAsn } from './asn-bundled.js';
import { DEFAULT_GEO_CACHE_SIZE, type GeoSettings } from './config.js';

export interface GeoResult {
  readonly country: string | null;
  readonly asn: number | null;
  readonly asOrg: string | null;
}

export interface GeoReloadEvent {
  source: 'country' | 'asn';
  file: string;
  ok: boolean;
  error?: string;
}

/** openGeo's options: what the config sets (config.ts GeoSettings) and what the running edge adds. */
export interface GeoOptions extends GeoSettings {
  /** Watch configured files and reload on change. Default true. */
  watch?: boolean;
  /** Called after every reload attempt triggered by a file change or reload(). */
  onReload?: (event: GeoReloadEvent) => void;
  /**
   * The edge's shared-memory record (edge.ts): the bundled ASN table parsed by the main thread is
   * taken from it, or put into it for the worker threads started afterwards (one copy per process).
   */
  shared?: Record<string, unknown>;
}

export interface GeoLookup {
  lookup(ip: string): GeoResult;
  close(): void;
  readonly sources: { country: string | null; asn: string | null };
  /** Re-reads both files now (e.g. on SIGHUP); keeps the old data for a file that fails. */
  reload(): Promise<void>;
}

const BUNDLED_COUNTRY_DB = '@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb';

const NO_RESULT: GeoResult = Object.freeze({ country: null, asn: null, asOrg: null });

type Reader = maxmind.Reader<maxmind.Response>;
/** What a lookup needs of a database: an mmdb Reader, or the bundled ASN table. */
type Db = { get(ip: string): unknown };

/** Path of the bundled country database, or null when the package is not installed. */
export function bundledCountryDbPath(): string | null {
  try {
    return createRequire(import.meta.url).resolve(BUNDLED_COUNTRY_DB);
  } catch {
    return null;
  }
}

async function openReader(file: string, kind: 'country' | 'asn'): Promise<Reader> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (e) {
    throw new Error(`geo ${kind} database ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (e as Error).message}`);
  }
  try {
    return new maxmind.Reader<maxmind.Response>(buf);
  } catch (e) {
    throw new Error(`geo ${kind} database ${file} is not a valid MaxMind DB file: ${(e as Error).message}`);
  }
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null;
}

function countryOf(rec: unknown): string | null {
  if (!isRecord(rec)) return null;
  const c = rec['country'];
  if (isRecord(c) && typeof c['iso_code'] === 'string') return c['iso_code'].toUpperCase();
  if (typeof rec['country_code'] === 'string') return rec['country_code'].toUpperCase();
  return null;
}

function asnOf(rec: unknown): { asn: number | null; asOrg: string | null } {
  if (!isRecord(rec)) return { asn: null, asOrg: null };
  const n = rec['autonomous_system_number'];
  const o = rec['autonomous_system_organization'];
  return { asn: typeof n === 'number' ? n : null, asOrg: typeof o === 'string' ? o : null };
}

function pickPath(v: string | false | undefined, fallback: string | null): string | null {
  if (v === false || v === 'off') return null;
  if (v === undefined || v === 'default') return fallback;
  return resolve(v);
}

class GeoReaders implements GeoLookup {
  private country: Reader | null;
  private asn: Db | null;
  private readonly cache: LruCache<string, GeoResult>;
  private stopWatching: (() => void) | null = null;

  constructor(
    readonly sources: { country: string | null; asn: string | null },
    country: Reader | null,
    asn: Db | null,
    cacheSize: number,
    private readonly onReload: ((e: GeoReloadEvent) => void) | undefined,
  ) {
    this.country = country;
    this.asn = asn;
    this.cache = new LruCache(cacheSize);
  }

  lookup(ip: string): GeoResult {
    const hit = this.cache.get(ip);
    if (hit !== undefined) return hit;
    const b = typeof ip === 'string' ? parseIp(ip) : null;
    if (b === null) return NO_RESULT;
    // Canonical text: IPv4-mapped IPv6 becomes dotted IPv4, which mmdb readers expect.
    const text = b.length === 4 && ip.indexOf(':') < 0 ? ip : formatIp(b);
    let country: string | null = null;
    let asn: number | null = null;
    let asOrg: string | null = null;
    if (this.country) country = countryOf(this.country.get(text));
    if (this.asn) ({ asn, asOrg } = asnOf(this.asn.get(text)));
    const result: GeoResult = country === null && asn === null && asOrg === null ? NO_RESULT : Object.freeze({ country, asn, asOrg });
    this.cache.set(ip, result);
    return result;
  }

  async reload(): Promise<void> {
    await Promise.all([this.reloadOne('country'), this.reloadOne('asn')]);
  }

  private async reloadOne(kind: 'country' | 'asn'): Promise<void> {
    const file = this.sources[kind];
    if (file === null || file === BUNDLED_ASN_SOURCE) return; // bundled data changes only with an upgrade
    try {
      const reader = await openReader(file, kind);
      if (kind === 'country') this.country = reader; else this.asn = reader;
      this.cache.clear();
      this.onReload?.({ source: kind, file, ok: true });
    } catch (e) {
      this.onReload?.({ source: kind, file, ok: false, error: (e as Error).message });
    }
  }

  watch(paths: string[]): void {
    if (paths.length === 0) return;
    this.stopWatching = watchFiles(paths, () => { void this.reload(); });
  }

  close(): void {
    this.stopWatching?.();
    this.stopWatching = null;
    this.cache.clear();
  }
}

/**
 * Opens the configured databases. Rejects with a message naming the file when a configured file is
 * missing or invalid (a typo in the config must not silently disable geo rules).
 */
export async function openGeo(opts: GeoOptions = {}): Promise<GeoLookup> {
  const bundled = bundledCountryDbPath();
  if ((opts.countryDb === undefined || opts.countryDb === 'default') && bundled === null) {
    throw new Error('the bundled country database (@ip-location-db/geo-whois-asn-country-mmdb) is not installed; set geo.country_db or country_db: off');
  }
  const countryPath = pickPath(opts.countryDb, bundled);
  const bundledAsn = opts.asnDb === undefined || opts.asnDb === 'default' ? bundledAsnFiles() : null;
  if (opts.asnDb === 'default' && bundledAsn === null) throw new Error(`the bundled ASN data (${BUNDLED_ASN_PACKAGE}) is not installed; set geo.asn_db to a GeoLite2-ASN file or off`);
  const asnPath = bundledAsn !== null ? BUNDLED_ASN_SOURCE : pickPath(opts.asnDb, null);
  const [country, asn] = await Promise.all([
    countryPath === null ? null : openReader(countryPath, 'country'),
    bundledAsn !== null ? loadBundledAsn(bundledAsn, opts.shared) : asnPath === null ? null : openReader(asnPath, 'asn'),
  ]);
  const cacheSize = opts.cacheSize ?? DEFAULT_GEO_CACHE_SIZE;
  const geo = new GeoReaders({ country: countryPath, asn: asnPath }, country, asn, cacheSize, opts.onReload);
  if (opts.watch !== false) {
    // The bundled file only changes with a package upgrade (and a restart); watch configured files.
    geo.watch([countryPath !== bundled ? countryPath : null, asnPath !== BUNDLED_ASN_SOURCE ? asnPath : null].filter((p): p is string => p !== null));
  }
  return geo;
}
