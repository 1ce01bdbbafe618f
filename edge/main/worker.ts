// Worker-thread entry for `workers: N`: each worker runs its own uWS app on the same port
// (SO_REUSEPORT; the kernel spreads connections) with its own pipeline and upstream pools.
// The admin listener, the event sinks and /metrics live in the main thread (process.ts), so a worker
//  - applies the admin changes the main thread sends it (WorkerCommand, see worker-commands.ts),
//  - forwards its security events to the main thread in batches (never blocking: beyond
//    MAX_PENDING_EVENTS unsent events it drops and counts, like every sink),
//  - reports its request counters to the main thread as increments every METRICS_MS.
import { parentPort, workerData } from 'node:worker_threads';
import { startEdge } from './edge.js';
import type { EdgeConfig } from '../config/normalize.js';
import type { EdgeEvent } from '../observe/events/bus.js';
import { EventBus } from '../observe/events/bus.js';
import { Metrics } from '../observe/metrics.js';
import { MetricsObserver } from './metrics-observer.js';
import { applyWorkerCommand, isWorkerCommand } from './worker-commands.js';
import { isRemoteBanEvent } from '../observe/events/build.js';
import type { HistorySection } from '../history/config.js';
import { HistoryRecorder, configuredKeys } from '../history/recorder.js';
import { encodeRecord } from '../history/record.js';

export interface WorkerInit {
  /**
   * The main thread's config (plain data, structured-cloned). A worker does not read the file
   * itself: every thread runs the same config (a random default sticky secret included, so a
   * cookie set by one thread is honoured by the others), and the YAML parser and schema validator
   * are not loaded again in every thread.
   */
  config: EdgeConfig;
  index: number;
  /** Shared memory created by the main thread (per-client guard counters, server active counts). */
  shared: Record<string, unknown>;
}

/** Worker → main messages besides ready/failed. */
export type WorkerReport =
  | { type: 'events'; events: EdgeEvent[]; dropped: number }
  | { type: 'metrics'; delta: NonNullable<ReturnType<Metrics['takeDelta']>> }
  /** History records of the minute this worker just closed (edge/history/record.ts encoding). */
  | { type: 'history'; records: Uint8Array[] };

const EVENT_BATCH_MS = 20;
const MAX_PENDING_EVENTS = 16384;
const METRICS_MS = 250;

async function run(): Promise<void> {
  const init = workerData as WorkerInit;
  const port = parentPort;
  if (port === null) throw new Error('edge/main/worker.js must run as a worker thread');
  const cfg = init.config;
  const bus = new EventBus({ node: cfg.nodeId });
  const metrics = new Metrics();

  // --- events → main thread, batched
  let pending: EdgeEvent[] = [];
  let dropped = 0;
  let timer: NodeJS.Timeout | null = null;
  // Reloads the main thread asked for: their events are the main thread's own reload, already reported.
  let fanoutReloads = 0;
  const flushEvents = (): void => {
    timer = null;
    if (pending.length === 0 && dropped === 0) return;
    const batch = pending;
    pending = [];
    port.postMessage({ type: 'events', events: batch, dropped } satisfies WorkerReport);
    dropped = 0;
  };
  bus.subscribe((ev) => {
    if (ev.type === 'reload' && fanoutReloads > 0) { fanoutReloads--; return; }
    // A ban set on another node reaches every thread of this one; the main thread reports it once.
    if (isRemoteBanEvent(ev)) return;
    if (pending.length >= MAX_PENDING_EVENTS) { dropped++; return; }
    pending.push(ev);
    if (timer === null) { timer = setTimeout(flushEvents, EVENT_BATCH_MS); timer.unref(); }
  });

  // History: this thread's requests and queue lengths; the in-flight counts are shared by every
  // thread (SharedArrayBuffer), so the main thread samples them for the node.
  const historyCfg = cfg.sections.history as HistorySection;
  const history = historyCfg.enabled ? new HistoryRecorder(false) : null;
  const edge = await startEdge(cfg, { exclusivePort: false, shared: init.shared, workerIndex: init.index, bus, observer: new MetricsObserver(metrics, history), metrics });
  let openMinute = Math.floor(Date.now() / 60_000) * 60_000;
  let lastSample = Date.now();
  const sendHistory = (): void => {
    if (history === null) return;
    const recs = history.close(openMinute, cfg.nodeId);
    // Servers and backends removed by a reload or the admin API: their cells go (history.prune).
    history.prune(configuredKeys(edge.pools.values()));
    openMinute = Math.floor(Date.now() / 60_000) * 60_000;
    if (recs.length > 0) port.postMessage({ type: 'history', records: recs.map((r) => encodeRecord(r)) } satisfies WorkerReport);
  };
  const historyTimer = history === null ? null : setInterval(() => {
    const now = Date.now();
    history.sample(edge.pools.values(), Math.min(now - lastSample, 10 * historyCfg.sampleMs));
    lastSample = now;
    if (Math.floor(now / 60_000) * 60_000 > openMinute) sendHistory();
  }, historyCfg.sampleMs);
  historyTimer?.unref();

  // --- counters → main thread
  const sendMetrics = (): void => {
    const delta = metrics.takeDelta();
    if (delta !== null) port.postMessage({ type: 'metrics', delta } satisfies WorkerReport);
  };
  const metricsTimer = setInterval(sendMetrics, METRICS_MS);
  metricsTimer.unref();

  port.on('message', (msg: unknown) => {
    if ((msg as { type?: string })?.type === 'stop') {
      void edge.stop().then(() => {
        clearInterval(metricsTimer);
        if (historyTimer !== null) clearInterval(historyTimer);
        sendMetrics();
        sendHistory();
        flushEvents();
        // Never end the thread itself: a worker whose loop still holds uWS's poll handle aborts the
        // whole process in uv_loop_close (measured). The main thread exits the process instead.
        // Keep this loop alive until the process exits: a worker loop that runs dry closes with
        // uWS's poll handle still open, and Node aborts the whole process (measured).
        setInterval(() => {}, 60_000);
        port.postMessage({ type: 'stopped', index: init.index });
      });
      return;
    }
    if (isWorkerCommand(msg)) {
      if (msg.type === 'rules-reload') fanoutReloads++;
      applyWorkerCommand(edge, msg).catch((err: unknown) => {
        process.stderr.write(`${JSON.stringify({ level: 50, msg: `worker ${init.index}: admin command ${msg.type} failed`, err: String(err) })}\n`);
      });
    }
  });
  port.postMessage({ type: 'ready', index: init.index, ports: edge.listeners.map((l) => l.port) });
}

run().catch((err) => {
  parentPort?.postMessage({ type: 'failed', error: String((err as Error)?.message ?? err) });
  process.exit(1);
});
