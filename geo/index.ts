// Public entry of geo/: MaxMind lookups, the config section, and the mmdb writer.
export { openGeo, bundledCountryDbPath } from './lookup.js';
export type { GeoLookup, GeoOptions, GeoResult, GeoReloadEvent } from './lookup.js';
export { geoConfigSchema, normalizeGeoConfig, GeoConfigError, MAX_GEO_CACHE_SIZE, DEFAULT_GEO_CACHE_SIZE } from './config.js';
export type { GeoSettings } from './config.js';
export { MmdbWriter, MmdbUint } from './mmdb-writer.js';
export type { MmdbValue, MmdbWriterOptions } from './mmdb-writer.js';
export { LruCache } from './lru.js';
