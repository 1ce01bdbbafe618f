// Cross-worker in-flight counts. With `workers: N` each worker thread runs its own pool; without
// this, maxconn and queue.max are per worker (N × maxconn could reach a server). The main thread
// allocates one SharedActiveCounts per backend and passes it to every worker (workerData; a
// SharedArrayBuffer is shared, not copied). Each server has one Int32 slot, taken with
// Atomics.compareExchange, so the sum over all workers never exceeds maxconn.
// Limits: queue.max stays per worker, and a worker that dies while holding slots leaks them
// (restart the process, or reallocate on worker restart).
import type { BackendConfig } from './types.js';

export interface SharedActiveCounts {
  readonly backend: string;
  /** Server names in slot order (config order); the pool checks they match its config. */
  readonly servers: readonly string[];
  readonly buffer: SharedArrayBuffer;
}

export function createSharedActiveCounts(cfg: BackendConfig): SharedActiveCounts {
  return {
    backend: cfg.name,
    servers: cfg.servers.map((s) => s.name),
    buffer: new SharedArrayBuffer(Math.max(1, cfg.servers.length) * Int32Array.BYTES_PER_ELEMENT),
  };
}

/** Int32 view over the slots, after checking the counts belong to this backend's config. */
export function sharedView(cfg: BackendConfig, shared: SharedActiveCounts): Int32Array {
  const names = cfg.servers.map((s) => s.name);
  if (shared.backend !== cfg.name || shared.servers.length !== names.length || shared.servers.some((n, i) => n !== names[i])) {
    throw new Error(`PCL_E_SHARED_COUNTS: backend "${cfg.name}": shared active counts were allocated for backend "${shared.backend}" with servers [${shared.servers.join(', ')}], config has [${names.join(', ')}]`);
  }
  return new Int32Array(shared.buffer, 0, Math.max(1, names.length));
}
