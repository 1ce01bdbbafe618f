// Public surface of the backend pool for the pipeline and the admin API.
export type * from './types.js';
export { createBackendPool, DEFAULT_PASSIVE_COOLDOWN_MS, HOUSEKEEPING_MS, type PoolDeps, type HealthEventCheck } from './pool.js';
export { extractCookie, stickyValue } from './sticky.js';
export { createSharedActiveCounts, type SharedActiveCounts } from './shared.js';
export { PRIORITY_CLASSES, DEFAULT_PRIORITY } from './queue.js';
export { validateBackendConfig } from './validate.js';
