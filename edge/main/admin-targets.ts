// The admin API's targets (edge/admin/targets.ts) and the /healthz snapshot, read from a RunningEdge:
// this file only translates between the admin server's interfaces and the edge's parts (with worker
// threads, each admin change also goes to every worker: worker-commands.ts).
import type { RunningEdge } from './edge.js';
import type { AdminTargets, BanEntry, TableEntry } from '../admin/targets.js';
import type { RuleMode } from '../observe/events/schema.js';
import { readiness, type NodeSnapshot } from './readiness.js';
import { fanoutPool, type WorkerFanout } from './worker-commands.js';

/** A ban without an end: the admin API's "until removed" (100 years). */
const FOREVER_MS = 100 * 365 * 24 * 3600 * 1000;

export function adminTargetsFor(edge: RunningEdge, fanout: WorkerFanout | null = null, reloadConfig: AdminTargets['reloadConfig'] = null): AdminTargets {
  const table = edge.guard.table;
  // With worker threads every admin change made here is also sent to each worker (fanout). The pools
  // in force are read on every call: a config reload replaces them.
  return {
    pools: () => (fanout === null ? [...edge.pools.values()] : [...edge.pools.values()].map((p) => fanoutPool(p, fanout))),
    reloadConfig,
    bans: {
      list: (): BanEntry[] => edge.bans.list().map((b) => ({
        key: b.key, reason: b.reason, expiresAt: b.until - Date.now() > FOREVER_MS / 2 ? null : b.until, source: b.by,
      })),
      add: (key, ttlMs, reason, source) => { edge.bans.add(key, ttlMs ?? FOREVER_MS, { reason, by: source }); },
      remove: (key) => edge.bans.remove(key, 'admin'),
    },
    tables: {
      tables: () => [{ name: 'client', size: table.count, capacity: table.size }],
      lookup: (name, key) => (name === 'client' ? table.entry(key, Date.now()) : null),
      clear: (name, key) => {
        if (name !== 'client') return false;
        fanout?.send({ type: 'table-clear', key });
        return table.delete(key);
      },
      top: (name, by, n) => {
        if (name !== 'client') return null;
        const now = Date.now();
        const rows: { key: string; values: TableEntry }[] = [];
        for (const key of table.storedKeys()) {
          const values = table.entry(key, now);
          if (values === null) continue;
          if (!(by in values)) throw new Error(`unknown counter "${by}" (have: ${Object.keys(values).join(', ')})`);
          rows.push({ key, values });
        }
        rows.sort((a, b) => (b.values[by] ?? 0) - (a.values[by] ?? 0));
        return rows.slice(0, n);
      },
    },
    rules: edge.rules === null ? null : {
      list: () => edge.rules!.current().rulesInfo().map((r) => ({ id: r.id, mode: r.mode as RuleMode, action: r.actions, source: `${r.file}:${r.line}` })),
      reload: async () => {
        const r = await edge.rules!.reload('admin');
        if (r.ok) fanout?.send({ type: 'rules-reload' });
        return { ok: r.ok, errors: r.errors, hash: r.hash };
      },
      setMode: (id, mode) => {
        const ok = edge.rules!.setMode(id, mode);
        if (ok) fanout?.send({ type: 'rule-mode', id, mode });
        return ok;
      },
    },
    stats: () => ({
      configHash: edge.rules?.current().hash ?? null,
      in_flight: edge.pipeline.inFlight,
      guard_rejected: Array.from(edge.guard.rejected),
      bans: edge.bans.size,
      stick_entries: table.count,
    }),
    health: () => readiness(nodeSnapshot(edge)),
    redisState: () => (edge.share === null ? 'off' : edge.share.state),
    redisReason: () => edge.share?.reason ?? null,
  };
}

/** What /healthz judges (edge/main/readiness.ts), read from the running edge. */
export function nodeSnapshot(edge: RunningEdge): NodeSnapshot {
  const open = edge.stopping ? 0 : edge.listeners.length;
  return {
    started: edge.ready || edge.stopping,
    stopping: edge.stopping,
    draining: edge.draining,
    listeners: { total: edge.listeners.length, open },
    backends: [...edge.pools.values()].map((p) => {
      // With active checks a server counts while its latest check passed: a node (re)started in
      // front of dead servers must not claim the virtual address before its checks find out (a
      // single failed check is absorbed by keepalived's `fall`).
      const h = edge.cfg.backends.find((b) => b.name === p.name)?.health ?? null;
      const checked = h !== null && h.intervalMs > 0 && h.path !== '';
      const servers = p.servers();
      let up = 0;
      for (const s of servers) if (s.state === 'up' && (!checked || (s.checkStatus?.startsWith('L7OK') ?? false))) up++;
      return { name: p.name, up, servers: servers.length };
    }),
    redis: edge.share === null ? { state: 'off', reason: null } : { state: edge.share.state, reason: edge.share.reason ?? null },
  };
}
