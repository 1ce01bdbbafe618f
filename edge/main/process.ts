// A running edge process: the edge itself (plus N-1 worker threads with `workers: N`), the admin
// listener, signals (SIGTERM/SIGINT graceful stop) and the last line of defence against a crash
// from one bad request. The main thread supervises its workers and restarts one that dies.
import { Worker } from 'node:worker_threads';
import { networkInterfaces } from 'node:os';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { startEdge, createSharedMemory, type RunningEdge } from './edge.js';
import type { EdgeConfig } from '../config/normalize.js';
import type { EventsSection } from '../config/sections.js';
import { redisConnectionOf, type SharedConfig } from '../shield/stick/config.js';
import { EventBus } from '../observe/events/bus.js';
import { Metrics } from '../observe/metrics.js';
import { startEventSinks } from '../observe/events/index.js';
import { startAdminServer, type AdminServer } from '../admin/server.js';
import { adminTargetsFor } from './admin-targets.js';
import { bindMetricSources, MetricsObserver } from './metrics-observer.js';
import { WorkerFanout } from './worker-commands.js';
import type { WorkerInit, WorkerReport } from './worker.js';
import { lifecycleEvent, reloadEvent } from '../observe/events/build.js';
import type { HaSection } from './ha.js';
import { installFaultGuard } from './fault-guard.js';
import { loadConfigFile, ConfigLoadError, formatConfigError } from '../config/load.js';
import { createSharedActiveCounts } from '../backend/index.js';
import type { ReloadResult } from './reconfigure.js';
import type { AdminTargets } from '../admin/targets.js';
import type { BackendConfig, ServerConfig } from '../backend/types.js';
import type { RuntimeServer } from '../admin/state-store.js';
import type { HistorySection } from '../history/config.js';
import { HistoryService } from '../history/service.js';

const WORKER_ENTRY = fileURLToPath(new URL('./worker.js', import.meta.url));

function logLine(level: number, msg: string, extra: Record<string, unknown> = {}): void {
  process.stderr.write(`${JSON.stringify({ level, time: new Date().toISOString(), msg, ...extra })}\n`);
}

export interface EdgeProcess {
  edge: RunningEdge;
  /** Traffic history and capacity view (null with history.enabled: false). */
  history: HistoryService | null;
  admin: AdminServer | null;
  metrics: Metrics;
  workers: () => number;
  stop(): Promise<void>;
}

export async function runEdgeProcess(cfg: EdgeConfig, opts: { handleSignals?: boolean; bus?: EventBus } = {}): Promise<EdgeProcess> {
  const shared: Record<string, unknown> = cfg.workers > 1 ? createSharedMemory(cfg) : {};
  const bus = opts.bus ?? new EventBus({ node: cfg.nodeId });
  // An exception escaping one request's handling, or a rejection nobody awaited, must not take every
  // other request down: logged, counted, reported as an `error` event (edge/main/fault-guard.ts).
  const unguard = installFaultGuard(bus);
  const metrics = new Metrics();
  const eventsCfg = cfg.sections.events as EventsSection;
  const sharedCfg = (cfg.sections.shared as SharedConfig | null) ?? null;
  // shared.redis is normalised to a target ({kind: 'url', url} | sentinel | cluster). The event stream
  // and the admin state store follow a URL or the master behind Sentinel; with a Cluster they stay
  // local (said at start).
  const redisUrl = sharedCfg !== null ? redisConnectionOf(sharedCfg.redis) ?? undefined : undefined;
  if (sharedCfg !== null && redisUrl === undefined) {
    logLine(40, `shared.redis is a ${sharedCfg.redis.kind}: the event stream and admin state use the local node only (state file)`);
  }
  const sinks = await startEventSinks(bus, {
    log: eventsCfg.log,
    redis: redisUrl !== undefined ? { url: redisUrl, stream: eventsCfg.redisStream, maxLen: eventsCfg.streamMaxLen } : null,
    capacity: eventsCfg.capacity,
  }, metrics);
  const historyCfg = cfg.sections.history as HistorySection;
  // Pools are read through the edge (a reload replaces them), once it exists.
  let edgeRef: RunningEdge | null = null;
  const history = historyCfg.enabled ? new HistoryService(historyCfg, {
    node: cfg.nodeId, bus,
    pools: () => edgeRef === null ? [] : edgeRef.pools.values(),
    redis: sharedCfg !== null && redisUrl !== undefined ? { url: redisUrl, prefix: sharedCfg.prefix, commandTimeoutMs: sharedCfg.commandTimeoutMs } : null,
  }) : null;
  await history?.start();
  let edge: RunningEdge;
  try {
    edge = await startEdge(cfg, { exclusivePort: cfg.workers === 1, shared, workerIndex: 0, bus, observer: new MetricsObserver(metrics, history?.recorder ?? null), metrics });
  } catch (err) {
    await history?.stop().catch(() => undefined);
    throw err;
  }
  edgeRef = edge;
  bindMetricSources(metrics, edge, history?.recorder ?? null);
  if (history !== null) metrics.bind({ history: () => history });
  // Admin changes reach every worker thread (worker-commands.ts WorkerFanout); their events and counters come back.
  const fanout = cfg.workers > 1 ? new WorkerFanout() : null;
  const forwarded = { name: 'workers', accepted: 0, dropped: 0, written: 0, pending: 0 };
  if (fanout !== null) metrics.addSinkSource(() => [forwarded]);
  const haCfg = cfg.sections.ha as HaSection;
  // Live reconfiguration (SIGHUP, POST /api/config/reload): re-read, validate, apply or refuse.
  let reloading: Promise<ReloadResult> | null = null;
  const reloadConfig = (why: string): Promise<ReloadResult> => {
    // One at a time: a second request while one runs gets the same answer.
    reloading ??= reloadConfigFile(edge, fanout, why, (next) => { if (admin !== null) applyRuntimeOverlay(next, admin.runtimeServers()); }).finally(() => { reloading = null; });
    return reloading;
  };
  // POST /api/config/reload does what SIGHUP does (README, docs/reload.md): the rule files, the
  // certificates and the geo data are re-read with the config. The rule files go first: a rule file
  // with errors refuses the whole reload with its file:line errors (422) and nothing of the config
  // is applied — before, the config reload answered `ok: true` while the broken rules were ignored.
  const reloadFromAdmin = async (): Promise<ReloadResult> => {
    const rules = edge.rules;
    if (rules !== null) {
      const r = await rules.reload('admin');
      if (!r.ok) return { ok: false, errors: r.errors, changes: [], restartRequired: [] };
      fanout?.send({ type: 'rules-reload' });
    }
    for (const l of edge.listeners) l.reloadTls?.();
    void edge.geo?.reload();
    return reloadConfig('admin API');
  };
  let admin: AdminServer | null = null;
  if (cfg.admin !== null) {
    admin = await startAdminServer({
      address: `${cfg.admin.host.includes(':') ? `[${cfg.admin.host}]` : cfg.admin.host}:${cfg.admin.port}`,
      token: cfg.admin.token,
      tokens: cfg.admin.tokens,
      stateFile: cfg.admin.stateFile ?? join(dirname(cfg.file), 'portcullis.state.json'),
      redisUrl,
      loginThrottle: cfg.admin.loginThrottle,
    }, { ...adminTargetsFor(edge, fanout, reloadFromAdmin), history, runtimeServers: runtimeServersOf(edge, fanout), drain: (graceMs: number, who: string) => drain(graceMs, who), drainGraceMs: haCfg.drainGraceMs }, bus, metrics);
  }

  let stopping = false;
  const workers = new Map<number, Worker>();
  const spawnWorker = (index: number): Promise<void> => new Promise((resolve, reject) => {
    const w = new Worker(WORKER_ENTRY, { workerData: { config: cfg, index, shared } satisfies WorkerInit });
    workers.set(index, w);
    // Attached before it is ready: the worker reads the replayed admin state before serving traffic.
    fanout?.attach(w);
    let ready = false;
    w.on('message', (m: { type: string; error?: string } | WorkerReport) => {
      if (m.type === 'events') {
        const r = m as Extract<WorkerReport, { type: 'events' }>;
        forwarded.accepted += r.events.length;
        forwarded.written += r.events.length;
        forwarded.dropped += r.dropped;
        for (const ev of r.events) edge.bus.emit(ev);
        return;
      }
      if (m.type === 'metrics') { metrics.addDelta((m as Extract<WorkerReport, { type: 'metrics' }>).delta); return; }
      if (m.type === 'history') { history?.addWorkerRecords((m as Extract<WorkerReport, { type: 'history' }>).records); return; }
      if (m.type === 'ready') { ready = true; resolve(); }
      if (m.type === 'failed') reject(new Error(`worker ${index}: ${(m as { error?: string }).error}`));
    });
    w.on('error', (err) => logLine(50, `worker ${index} crashed`, { err: String(err.stack ?? err) }));
    w.on('exit', (code) => {
      workers.delete(index);
      fanout?.detach(w);
      if (stopping) return;
      if (!ready) { reject(new Error(`worker ${index} exited with ${code} before it was ready`)); return; }
      // A worker whose JavaScript failed is replaced; its connections are lost, others are not. (A native
      // abort or a uWS thread teardown takes the whole process down: `portcullis run --supervise` or
      // systemd restarts the process.)
      logLine(40, `worker ${index} exited with ${code}; restarting it`);
      edge.bus.emit(lifecycleEvent('worker_restart', `worker ${index} exited with code ${code}`));
      setTimeout(() => { if (!stopping) spawnWorker(index).catch((e) => logLine(50, String(e))); }, 200);
    });
  });
  for (let i = 1; i < cfg.workers; i++) await spawnWorker(i);

  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    // Workers answer 'stopped' once their in-flight requests are done; the process exit ends them
    // (ending a uWS worker thread on its own aborts the process, see worker.ts).
    const exits = [...workers.values()].map((w) => new Promise<void>((r) => {
      const onMsg = (m: { type?: string }) => { if (m?.type === 'stopped') { w.off('message', onMsg); r(); } };
      w.on('message', onMsg);
      w.once('exit', () => r());
      w.postMessage({ type: 'stop' });
    }));
    await Promise.all([edge.stop(), ...exits]);
    await history?.stop();
    await admin?.close();
    await sinks.stop();
    unguard();
  };
  /**
   * Planned hand-over: /healthz answers 503 at once while the listeners keep serving, so keepalived
   * moves the virtual address to the peer within the grace; then in-flight requests finish
   * (timeouts.graceful_stop) and the process exits. False when a drain or stop is already under way.
   */
  const drain = (graceMs: number, who: string): boolean => {
    if (stopping || edge.draining !== null) return false;
    edge.draining = { sinceMs: Date.now(), graceMs };
    edge.bus.emit(lifecycleEvent('draining', `by ${who}: not ready now; stopping in ${graceMs} ms (in flight: ${edge.pipeline.inFlight})`));
    process.stderr.write(`portcullis: draining (by ${who}): /healthz 503; stopping in ${graceMs} ms\n`);
    const finish = (): void => {
      clearInterval(watch);
      clearTimeout(timer);
      void stop().then(() => { if (opts.handleSignals !== false) exitNow(0, workers.size > 0); });
    };
    const timer = setTimeout(finish, graceMs);
    // With ha.keepalived.virtual_ip the grace ends as soon as the address has left this node
    // (keepalived moved it, or this node never held it): nothing new can arrive here after that.
    const vips = (haCfg.keepalived?.virtualIps ?? []).map((v) => v.slice(0, v.lastIndexOf('/')));
    const watch = setInterval(() => { if (vips.length > 0 && !holdsAny(vips)) finish(); }, 100);
    return true;
  };
  if (opts.handleSignals !== false) {
    const onSignal = async (signal: string) => {
      process.stderr.write(`portcullis: ${signal}: stopping (in-flight ${edge.pipeline.inFlight}, up to ${cfg.timeouts.gracefulStopMs} ms)\n`);
      await stop();
      exitNow(0, workers.size > 0);
    };
    process.once('SIGTERM', () => void onSignal('SIGTERM'));
    process.once('SIGINT', () => void onSignal('SIGINT'));
    // SIGHUP: re-read the whole config (backends, servers, limits, timeouts …), certificates and geo
    // databases (rule files reload on SIGHUP through RuleManager.watch()).
    process.on('SIGHUP', () => {
      void reloadConfig('SIGHUP');
      for (const l of edge.listeners) l.reloadTls?.();
      void edge.geo?.reload();
      // With `rules.watch: false` the rule manager does not listen for SIGHUP itself: SIGHUP still
      // reloads the rule files (as the README promises), and the workers follow an ok reload.
      const rules = edge.rules;
      if (rules !== null && !rules.isWatching) {
        void rules.reload('signal').then((r) => { if (r.ok) fanout?.send({ type: 'rules-reload' }); });
      }
    });
  }
  process.stderr.write(`portcullis: listening on ${edge.listeners.map((l) => `${cfg.listen.find((c) => c.name === l.name)?.host}:${l.port}`).join(', ')}` +
    `${cfg.workers > 1 ? ` (${cfg.workers} workers)` : ''} [pid ${process.pid}]\n`);
  return { edge, admin, metrics, history, workers: () => workers.size + 1, stop };
}

/** Some interface of this host (network namespace) carries one of these addresses. */
function holdsAny(addresses: readonly string[]): boolean {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (addresses.includes(a.address)) return true;
  }
  return false;
}

/**
 * Config changes of one process run one after another: each starts from the config in force when
 * it runs (a file reload and an admin API change never overwrite each other).
 */
const configQueue = new WeakMap<RunningEdge, Promise<unknown>>();
function serially<T>(edge: RunningEdge, fn: () => Promise<T>): Promise<T> {
  const p = (configQueue.get(edge) ?? Promise.resolve()).then(fn, fn);
  configQueue.set(edge, p.catch(() => undefined));
  return p;
}

/** Applies `next` (a copy of the running config with a change) to the edge and every worker thread. */
async function applyRuntimeConfig(edge: RunningEdge, fanout: WorkerFanout | null, next: EdgeConfig): Promise<ReloadResult> {
  const shared: Record<string, unknown> = {};
  if (fanout !== null) {
    for (const b of next.backends) {
      const was = edge.cfg.backends.find((x) => x.name === b.name);
      if (was === undefined || JSON.stringify(was) !== JSON.stringify(b)) shared[`backend:${b.name}`] = createSharedActiveCounts(b);
    }
  }
  const r = await edge.reconfigure(next, shared);
  if (r.ok) fanout?.send({ type: 'config-apply', config: next, shared });
  return r;
}

/** The server entry a runtime add puts into its backend (one shape: a reload compares configs). */
function runtimeServerConfig(name: string, s: { url: string; weight: number; maxconn: number; backup: boolean }): ServerConfig {
  return { name, url: s.url, weight: s.weight, maxconn: s.maxconn, slowstartMs: 0, backup: s.backup, sendProxy: null };
}

/**
 * Puts the admin API's runtime server changes (added, removed, weight: what the file does not hold)
 * into a config read from the file, so that a reload applies file and runtime state in one step: a
 * server added at runtime never leaves its backend, not even for a moment. Drain / maint carry over
 * with the server (edge/reconfigure.ts carryOver).
 */
export function applyRuntimeOverlay(next: EdgeConfig, changes: Readonly<Record<string, RuntimeServer>>): void {
  for (const [key, ch] of Object.entries(changes)) {
    const i = key.indexOf('/');
    const b = next.backends.find((x) => x.name === key.slice(0, i));
    if (b === undefined) continue;
    const name = key.slice(i + 1);
    const at = b.servers.findIndex((x) => x.name === name);
    if (ch.removed === true) {
      if (at >= 0 && b.servers.length > 1) b.servers.splice(at, 1);
      continue;
    }
    if (ch.added !== undefined && at < 0) b.servers.push(runtimeServerConfig(name, ch.added));
    else if (ch.weight !== undefined && at >= 0) b.servers[at].weight = ch.weight;
  }
}

/**
 * Admin API: add, remove or re-weight a server at runtime — the running config with that one
 * change, applied like a reload (new requests see it, requests in flight finish where they are).
 */
export function runtimeServersOf(edge: RunningEdge, fanout: WorkerFanout | null): NonNullable<AdminTargets['runtimeServers']> {
  const change = (backend: string, fn: (b: BackendConfig) => string | null): Promise<ReloadResult> => serially(edge, async () => {
    const next = structuredClone(edge.cfg);
    const b = next.backends.find((x) => x.name === backend);
    if (b === undefined) return { ok: false, errors: [`no backend "${backend}"`], changes: [], restartRequired: [] };
    const err = fn(b);
    if (err !== null) return { ok: false, errors: [err], changes: [], restartRequired: [] };
    return applyRuntimeConfig(edge, fanout, next);
  });
  return {
    add: (backend, s) => change(backend, (b) => {
      const had = b.servers.find((x) => x.name === s.name);
      // Already there with this address (a reload applied the runtime change first): nothing to do.
      if (had !== undefined) return had.url === s.url ? null : `backend ${backend} already has a server "${s.name}"`;
      b.servers.push(runtimeServerConfig(s.name, s));
      return null;
    }),
    remove: (backend, name) => change(backend, (b) => {
      const i = b.servers.findIndex((x) => x.name === name);
      // Already gone (a reload that ran meanwhile applied this removal): nothing to do.
      if (i < 0) return null;
      if (b.servers.length === 1) return `${backend}/${name} is the backend's last server: drain it, or add another first`;
      b.servers.splice(i, 1);
      return null;
    }),
    weight: (backend, name, weight) => change(backend, (b) => {
      const s = b.servers.find((x) => x.name === name);
      if (s === undefined) return `no server "${name}" in backend "${backend}"`;
      s.weight = weight;
      return null;
    }),
  };
}

/**
 * Reads the config file again and applies it to the edge (and, through `fanout`, to every worker);
 * a config that does not load is refused with its errors (a `reload` event, ok false) and the running
 * one stays. `overlay` adds what the admin API changed at runtime (applyRuntimeOverlay). Never throws.
 */
export function reloadConfigFile(edge: RunningEdge, fanout: WorkerFanout | null, why: string, overlay: (next: EdgeConfig) => void = () => {}): Promise<ReloadResult> {
  return serially(edge, async () => {
    const file = edge.cfg.file;
    const what = `config ${file} (${why})`;
    let next: EdgeConfig;
    try {
      next = loadConfigFile(file);
    } catch (err) {
      const errors = err instanceof ConfigLoadError ? err.errors.map(formatConfigError) : [String((err as Error)?.message ?? err)];
      edge.bus.emit(reloadEvent({ ok: false, errors, hash: null, what }));
      return { ok: false, errors, changes: [], restartRequired: [] };
    }
    overlay(next);
    // Worker threads share a changed backend's active counts (maxconn) with the main thread's pool.
    const r = await applyRuntimeConfig(edge, fanout, next);
    const detail = r.ok ? `${r.changes.length > 0 ? r.changes.join('; ') : 'no change'}${r.restartRequired.length > 0 ? `; needs a restart to apply: ${r.restartRequired.join(', ')}` : ''}` : '';
    edge.bus.emit(reloadEvent({ ok: r.ok, errors: r.errors, hash: null, what: r.ok ? `${what}: ${detail}` : what }));
    return r;
  });
}

/**
 * Exit the process. With uWS worker threads still alive, process.exit() tears each worker's loop down
 * and Node aborts in uv_loop_close (uWS keeps a poll handle open; measured): everything worth keeping
 * was flushed by stop(), so leave through the low-level exit that skips that teardown.
 */
function exitNow(code: number, workersAlive: boolean): never {
  const p = process as unknown as { reallyExit?: (code: number) => never };
  if (workersAlive && typeof p.reallyExit === 'function') p.reallyExit(code);
  process.exit(code);
}
