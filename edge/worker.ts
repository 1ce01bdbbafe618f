// Worker-thread entry for `workers: N`: each worker runs its own uWS app on the same port
// (SO_REUSEPORT; the kernel spreads connections) with its own pipeline and upstream pools.
import { parentPort, workerData } from 'node:worker_threads';
import { loadConfigFile } from './config/load.js';
import { startEdge } from './edge.js';

export interface WorkerInit {
  configFile: string;
  index: number;
  /** Shared memory created by the main thread (per-client guard counters, server active counts). */
  shared: Record<string, unknown>;
}

async function run(): Promise<void> {
  const init = workerData as WorkerInit;
  const cfg = loadConfigFile(init.configFile);
  const edge = await startEdge(cfg, { exclusivePort: false, shared: init.shared, workerIndex: init.index });
  parentPort?.on('message', (msg: { type: string }) => {
    if (msg.type === 'stop') void edge.stop().then(() => process.exit(0));
  });
  parentPort?.postMessage({ type: 'ready', index: init.index, ports: edge.listeners.map((l) => l.port) });
}

run().catch((err) => {
  parentPort?.postMessage({ type: 'failed', error: String((err as Error)?.message ?? err) });
  process.exit(1);
});
