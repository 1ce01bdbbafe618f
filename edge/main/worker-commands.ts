// The worker protocol (`workers: N`): the messages the main thread sends its worker threads, the
// fan-out that sends and journals them, and their application inside a worker.
// The admin API runs in the main thread only. Each change it makes to a server (drain, maint,
// ready, weight), a rule mode, the ruleset or a stick-table key is sent to every worker as one of
// these messages over the Worker's postMessage; bans travel on their own (BroadcastChannel or Redis).
import type { RunningEdge } from './edge.js';
import type { RuleMode } from '../observe/events/schema.js';
import type { BackendPool, ServerState } from '../backend/types.js';
import type { EdgeConfig } from '../config/normalize.js';

export type WorkerCommand =
  | { type: 'server-state'; backend: string; server: string; state: ServerState }
  | { type: 'server-weight'; backend: string; server: string; weight: number }
  | { type: 'rule-mode'; id: string; mode: RuleMode | null }
  | { type: 'rules-reload' }
  | { type: 'table-clear'; key: string }
  /** A reloaded config (validated by the main thread) and the active counts of its changed backends. */
  | { type: 'config-apply'; config: EdgeConfig; shared: Record<string, unknown> };

export interface CommandPort { postMessage(msg: unknown): void }

/**
 * Sends admin changes to every worker and remembers the latest of each (per server, per rule), so a
 * worker that starts or is restarted later gets the same state before it serves traffic.
 */
export class WorkerFanout {
  private readonly ports = new Set<CommandPort>();
  private readonly journal = new Map<string, WorkerCommand>();

  /** A new worker: replay the journal to it, then keep it informed. */
  attach(port: CommandPort): void {
    for (const cmd of this.journal.values()) port.postMessage(cmd);
    this.ports.add(port);
  }

  detach(port: CommandPort): void { this.ports.delete(port); }

  /** Commands in the journal (what a new worker is told). */
  get remembered(): number { return this.journal.size; }

  send(cmd: WorkerCommand): void {
    const key = cmd.type === 'server-state' || cmd.type === 'server-weight' ? `${cmd.type}:${cmd.backend}/${cmd.server}`
      : cmd.type === 'rule-mode' ? `rule-mode:${cmd.id}` : cmd.type === 'config-apply' ? 'config-apply' : null;
    // Re-inserted at the end: a restarted worker replays the latest config after what came before it.
    if (key !== null) { this.journal.delete(key); this.journal.set(key, cmd); }
    for (const p of this.ports) p.postMessage(cmd);
  }
}

/** A pool whose admin setters also reach every worker. Everything else is the pool itself. */
export function fanoutPool(pool: BackendPool, fanout: WorkerFanout): BackendPool {
  return {
    get name() { return pool.name; },
    acquire: (req, cb) => pool.acquire(req, cb),
    acquireFor: (req, waiter) => pool.acquireFor(req, waiter),
    release: (server, outcome) => pool.release(server, outcome),
    servers: () => pool.servers(),
    queueLength: () => pool.queueLength(),
    setState: (server, state) => {
      const ok = pool.setState(server, state);
      if (ok) fanout.send({ type: 'server-state', backend: pool.name, server, state });
      return ok;
    },
    setWeight: (server, weight) => {
      const ok = pool.setWeight(server, weight);
      if (ok) fanout.send({ type: 'server-weight', backend: pool.name, server, weight });
      return ok;
    },
    adoptState: (server, state, check) => pool.adoptState?.(server, state, check),
    linkPeers: (previous) => pool.linkPeers?.(previous),
    runtimeOf: (server) => pool.runtimeOf?.(server),
    start: () => pool.start(),
    stop: () => pool.stop(),
  };
}

/** Applies one command from the main thread inside a worker. Unknown targets are ignored (logged by the caller). */
export async function applyWorkerCommand(edge: RunningEdge, cmd: WorkerCommand): Promise<boolean> {
  switch (cmd.type) {
    case 'server-state': return edge.pools.get(cmd.backend)?.setState(cmd.server, cmd.state) ?? false;
    case 'server-weight': return edge.pools.get(cmd.backend)?.setWeight(cmd.server, cmd.weight) ?? false;
    case 'rule-mode': return edge.rules?.setMode(cmd.id, cmd.mode) ?? false;
    case 'rules-reload': return edge.rules !== null && (await edge.rules.reload('admin')).ok;
    case 'table-clear': return edge.guard.table.delete(cmd.key);
    case 'config-apply': {
      const r = await edge.reconfigure(cmd.config, cmd.shared);
      if (!r.ok) throw new Error(`config not applied: ${r.errors.join('; ')}`);
      return true;
    }
    default: return false;
  }
}

export function isWorkerCommand(m: unknown): m is WorkerCommand {
  const t = (m as { type?: unknown } | null)?.type;
  return t === 'server-state' || t === 'server-weight' || t === 'rule-mode' || t === 'rules-reload' || t === 'table-clear' || t === 'config-apply';
}
