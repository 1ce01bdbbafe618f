// Assembles one edge from an EdgeConfig: backend pools, upstream client, pipeline stages,
// listeners, access log and events; and stops it gracefully.
import { systemClock, type Clock } from './clock.js';
import { EventBus } from './events.js';
import type { EdgeConfig } from './config/normalize.js';
import { openListener, setAbortHook, type RunningListener } from './listener.js';
import { Pipeline, type GuardStage, type IdentityStage, type RulesStage, type RequestObserver } from './pipeline.js';
import { openAccessLog, type AccessLog } from './accesslog.js';
import { createBackendPool } from './backend/index.js';
import type { BackendPool } from './backend/types.js';
import type { UpstreamClient } from './upstream/types.js';
import { H1Pool } from './upstream/h1pool.js';
import { compileIdentity, resolveClient, type IdentityConfig } from './identity.js';
import type { Transaction } from './transaction.js';

export interface EdgeOptions {
  clock?: Clock;
  bus?: EventBus;
  /** Worker threads share the port (SO_REUSEPORT); a single process takes it exclusively. */
  exclusivePort?: boolean;
  guard?: GuardStage | null;
  rules?: RulesStage | null;
  observer?: RequestObserver | null;
  client?: UpstreamClient;
}

export interface RunningEdge {
  readonly cfg: EdgeConfig;
  readonly bus: EventBus;
  readonly pools: Map<string, BackendPool>;
  readonly listeners: RunningListener[];
  readonly pipeline: Pipeline;
  ready: boolean;
  /** Stop accepting, let in-flight requests finish up to the graceful deadline, then close. */
  stop(): Promise<void>;
}

/** Client identity stage over edge/identity.ts (trusted proxies, IPv4-mapped → IPv4, IPv6 prefixes). */
class IdentityAdapter implements IdentityStage {
  constructor(private readonly cfg: IdentityConfig) {}
  resolve(tx: Transaction): boolean {
    const id = resolveClient(tx.remote, tx.xff, this.cfg);
    if (id === null) return false;
    tx.clientIp = id.ip;
    tx.clientKey = id.key;
    tx.viaTrustedProxy = id.via === 'trusted-proxy';
    return true;
  }
}

export function createUpstreamClient(cfg: EdgeConfig): UpstreamClient {
  return new H1Pool({ maxConnectionsPerOrigin: cfg.upstream.connections });
}

export async function startEdge(cfg: EdgeConfig, opts: EdgeOptions = {}): Promise<RunningEdge> {
  const clock = opts.clock ?? systemClock;
  const bus = opts.bus ?? new EventBus();
  const pools = new Map<string, BackendPool>();
  for (const b of cfg.backends) pools.set(b.name, createBackendPool(b, { bus, clock }));
  const client = opts.client ?? createUpstreamClient(cfg);
  const log: AccessLog = openAccessLog(cfg.accessLog.path, cfg.nodeId);
  const trusted = (cfg.sections.trusted_proxies as string[] | undefined) ?? [];
  const v6prefix = (cfg.sections.client as { ipv6Prefix?: number } | undefined)?.ipv6Prefix ?? 64;
  const identity = new IdentityAdapter(compileIdentity({ trustedProxies: trusted, ipv6Prefix: v6prefix }));
  const pipeline = new Pipeline({
    cfg, clock, bus, log, pools, client, identity,
    guard: opts.guard ?? null,
    rules: opts.rules ?? null,
    observer: opts.observer ?? null,
  });
  setAbortHook((tx) => pipeline.clientAborted(tx));
  for (const p of pools.values()) p.start();
  const listeners: RunningListener[] = [];
  try {
    for (const l of cfg.listen) {
      listeners.push(await openListener({ host: l.host, port: l.port, name: l.name, limits: cfg.requestLimits, clock, exclusive: opts.exclusivePort ?? true }, pipeline));
    }
  } catch (err) {
    for (const l of listeners) l.stopAccepting();
    for (const p of pools.values()) p.stop();
    pipeline.close();
    await client.close();
    throw err;
  }
  let stopping: Promise<void> | null = null;
  const edge: RunningEdge = {
    cfg, bus, pools, listeners, pipeline, ready: true,
    stop(): Promise<void> {
      if (stopping) return stopping;
      edge.ready = false;
      stopping = (async () => {
        for (const l of listeners) l.stopAccepting();
        bus.emit({ type: 'lifecycle', state: 'stopping', in_flight: pipeline.inFlight });
        const deadline = new Promise<void>((r) => setTimeout(r, cfg.timeouts.gracefulStopMs).unref());
        await Promise.race([pipeline.whenIdle(), deadline]);
        for (const p of pools.values()) p.stop();
        pipeline.close();
        await client.close();
        await log.flush();
      })();
      return stopping;
    },
  };
  bus.emit({ type: 'lifecycle', state: 'ready', listen: listeners.map((l) => l.port) });
  return edge;
}
