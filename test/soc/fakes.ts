// In-memory AdminTargets for the SOC tests (never used by the edge itself). They behave like the
// real parts where the admin API can observe it: a reload resets rule modes to the file's modes
// and emits a `reload` event, bans expire, setState/setWeight change what servers() reports.
import type { AcquireRequest, AcquireResult, AcquireTicket, AcquireWaiter, BackendPool, LeasedServer, ServerInfo, ServerState } from '../../edge/backend/types.js';
import type { EventBus } from '../../edge/observe/events/bus.js';
import { reloadEvent } from '../../edge/observe/events/build.js';
import type { RuleMode } from '../../edge/observe/events/schema.js';
import type { AdminTargets, BanControl, BanEntry, RuleControl, RuleInfo, TableControl, TableEntry, TableInfo, ReloadResult } from '../../edge/admin/targets.js';

export const TOKEN = 'test-admin-token-0123456789';

export class FakePool implements BackendPool {
  private readonly infos: ServerInfo[];
  queued = 0;
  constructor(readonly name: string, servers: string[]) {
    this.infos = servers.map((s, i) => ({
      backend: name, name: s, url: `http://127.0.0.1:${8081 + i}`, state: 'up', weight: 1, effectiveWeight: 1,
      backup: false, site: null, active: 0, maxconn: 0, queued: 0, total: 0, checkStatus: 'L7OK', activeLocal: 0, backendQueued: 0, lastChange: null,
    }));
  }
  acquire(_req: AcquireRequest, cb: (r: AcquireResult) => void): AcquireTicket {
    cb({ error: 'no_server', server: null, setCookie: null, queuedMs: 0 });
    return { cancel: () => undefined };
  }
  acquireFor(_req: AcquireRequest, waiter: AcquireWaiter): AcquireTicket {
    waiter.refused('no_server', 0);
    return { cancel: () => undefined };
  }
  release(_s: LeasedServer): void { /* nothing leased */ }
  servers(): ServerInfo[] { return this.infos.map((s) => ({ ...s, backendQueued: this.queued })); }
  queueLength(): number { return this.queued; }
  setState(server: string, state: ServerState): boolean {
    const s = this.infos.find((x) => x.name === server);
    if (!s) return false;
    s.state = state;
    return true;
  }
  setWeight(server: string, weight: number): boolean {
    const s = this.infos.find((x) => x.name === server);
    if (!s) return false;
    s.weight = weight; s.effectiveWeight = weight;
    return true;
  }
  setActive(server: string, active: number): void { const s = this.infos.find((x) => x.name === server); if (s) s.active = active; }
  start(): void { /* no checks */ }
  stop(): void { /* no timers */ }
}

export class FakeBans implements BanControl {
  readonly map = new Map<string, BanEntry>();
  readonly calls: string[] = [];
  list(): BanEntry[] {
    const now = Date.now();
    for (const [k, b] of this.map) if (b.expiresAt !== null && b.expiresAt <= now) this.map.delete(k);
    return [...this.map.values()];
  }
  add(key: string, ttlMs: number | null, reason: string, source: string): void {
    this.calls.push(`add ${key}`);
    this.map.set(key, { key, reason, expiresAt: ttlMs === null ? null : Date.now() + ttlMs, source });
  }
  remove(key: string): boolean { this.calls.push(`remove ${key}`); return this.map.delete(key); }
  isBanned(key: string): boolean { this.list(); return this.map.has(key); }
}

export class FakeTables implements TableControl {
  readonly data = new Map<string, Map<string, TableEntry>>([['clients', new Map()]]);
  tables(): TableInfo[] { return [...this.data].map(([name, m]) => ({ name, size: m.size, capacity: 100000 })); }
  lookup(table: string, key: string): TableEntry | null { return this.data.get(table)?.get(key) ?? null; }
  clear(table: string, key: string): boolean { return this.data.get(table)?.delete(key) ?? false; }
  top(table: string, by: string, n: number): { key: string; values: TableEntry }[] | null {
    const t = this.data.get(table);
    if (!t) return null;
    if (!['http_req_rate', 'conn_rate', 'conn_cur', 'http_err_rate'].includes(by)) throw new Error(`unknown counter "${by}" (http_req_rate, conn_rate, conn_cur, http_err_rate)`);
    return [...t].map(([key, values]) => ({ key, values })).sort((a, b) => (b.values[by] ?? 0) - (a.values[by] ?? 0)).slice(0, n);
  }
}

export class FakeRules implements RuleControl {
  /** Modes as written in the rule file; reload() restores them (like a real recompile). */
  fileModes: Record<string, RuleMode> = { 'php-probe': 'log_only', 'scraper-rate': 'enforce', 'bad-asn': 'enforce' };
  private modes: Record<string, RuleMode> = { ...this.fileModes };
  reloads = 0;
  constructor(private readonly bus: EventBus) {}
  list(): RuleInfo[] { return Object.entries(this.modes).map(([id, mode]) => ({ id, mode, action: 'deny' })); }
  async reload(): Promise<ReloadResult> {
    this.reloads++;
    this.modes = { ...this.fileModes };
    const res = { ok: true, errors: [], hash: `h${this.reloads}` };
    this.bus.emit(reloadEvent(res));
    return res;
  }
  setMode(id: string, mode: RuleMode | null): boolean {
    if (this.modes[id] === undefined) return false;
    this.modes[id] = mode ?? this.fileModes[id];
    return true;
  }
  mode(id: string): RuleMode | undefined { return this.modes[id]; }
}

export interface Fakes { targets: AdminTargets; pool: FakePool; bans: FakeBans; tables: FakeTables; rules: FakeRules; setReady(v: boolean): void }

export function fakeTargets(bus: EventBus): Fakes {
  const pool = new FakePool('app', ['s1', 's2']);
  const bans = new FakeBans();
  const tables = new FakeTables();
  const rules = new FakeRules(bus);
  let ready = true;
  const targets: AdminTargets = {
    pools: () => [pool], bans, tables, rules,
    stats: () => ({ configHash: 'abc123' }),
    health: () => (ready ? { ready: true, status: 'ready', reasons: [] }
      : { ready: false, status: 'starting', reasons: [{ code: 'starting', message: 'listeners are not open yet', blocking: true }] }),
    redisState: () => 'off',
  };
  return { targets, pool, bans, tables, rules, setReady: (v) => { ready = v; } };
}

export async function call(base: string, method: string, path: string, opts: { token?: string | null; body?: unknown } = {}): Promise<{ status: number; json: unknown; text: string; headers: Headers }> {
  const headers: Record<string, string> = {};
  const token = opts.token === undefined ? TOKEN : opts.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (opts.body !== undefined) { headers['content-type'] = 'application/json'; body = JSON.stringify(opts.body); }
  const r = await fetch(base + path, { method, headers, body });
  const text = await r.text();
  let json: unknown = null;
  try { json = JSON.parse(text); } catch { json = null; }
  return { status: r.status, json, text, headers: r.headers };
}

export { waitFor } from '../harness/wait.js';
