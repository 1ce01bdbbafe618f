// The admin API's routes. Each handler validates its input (400 with the field named), acts through
// AdminTargets, persists runtime edits (bans, rule modes) in the state store and emits one audit
// event (who, what, before → after).
import type { IncomingMessage } from 'node:http';
import type { EventBus } from '../observe/events/bus.js';
import { adminEvent, eventClient } from '../observe/events/build.js';
import { RULE_MODES } from '../observe/events/schema.js';
import type { RuleMode } from '../observe/events/schema.js';
import type { EventFeed } from '../observe/events/ws-feed.js';
import { parseFilter } from '../observe/events/ws-feed.js';
import type { BlockStats } from '../observe/events/stats.js';
import type { Metrics } from '../observe/metrics.js';
import type { RateSampler } from './sampler.js';
import { parseDuration } from '../config/units.js';
import type { RuntimeServer, StateStore, StoredBan } from './state-store.js';
import type { AdminTargets } from './targets.js';
import { historyCsv, capacityCsv } from '../history/query.js';

export class HttpError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

export interface Call {
  method: string;
  params: Record<string, string>;
  query: URLSearchParams;
  /** Name of the token used. */
  who: string;
  ip: string;
  body(): Promise<Record<string, unknown>>;
}

export interface Reply { status: number; body: unknown; type?: string }

type Handler = (c: Call) => Promise<Reply> | Reply;

interface Route { method: string; parts: string[]; handler: Handler }

/** Every authenticated route (also used by tests to enumerate them). */
export const ADMIN_ROUTES: readonly string[] = [
  'GET /metrics',
  'GET /api/stats',
  'GET /api/servers',
  'POST /api/servers/:backend/:server/drain',
  'POST /api/servers/:backend/:server/maint',
  'POST /api/servers/:backend/:server/ready',
  'PUT /api/servers/:backend/:server/weight',
  'GET /api/tables',
  'GET /api/tables/:table/keys/:key',
  'DELETE /api/tables/:table/keys/:key',
  'GET /api/tables/:table/top',
  'GET /api/bans',
  'POST /api/bans',
  'DELETE /api/bans/:key',
  'GET /api/rules',
  'POST /api/rules/reload',
  'PUT /api/rules/:id/mode',
  'DELETE /api/rules/:id/mode',
  'GET /api/events/recent',
  'GET /api/events/ws',
  'POST /api/drain',
  'GET /api/history',
  'GET /api/capacity',
];

const SERVER_OPS: Record<string, 'drain' | 'maint' | 'up'> = { drain: 'drain', maint: 'maint', ready: 'up' };

export interface ApiDeps {
  targets: AdminTargets;
  bus: EventBus;
  metrics: Metrics;
  store: StateStore;
  feed: EventFeed;
  blocks: BlockStats;
  sampler: RateSampler;
  startedAt: number;
}

export class AdminApi {
  private readonly routes: Route[] = [];

  constructor(private readonly d: ApiDeps) {
    const r = (spec: string, h: Handler): void => {
      const [method, path] = spec.split(' ');
      this.routes.push({ method, parts: path.split('/').filter((p) => p !== ''), handler: h });
    };
    r('GET /metrics', () => this.metricsText());
    r('GET /api/stats', async () => ({ status: 200, body: await this.stats() }));
    r('GET /api/servers', () => ({ status: 200, body: this.servers() }));
    r('POST /api/servers/:backend/:server/:op', (c) => this.serverOp(c));
    r('PUT /api/servers/:backend/:server/weight', (c) => this.serverWeight(c));
    r('POST /api/servers/:backend', (c) => this.serverAdd(c));
    r('DELETE /api/servers/:backend/:server', (c) => this.serverRemove(c));
    r('GET /api/tables', () => ({ status: 200, body: this.d.targets.tables.tables() }));
    r('GET /api/tables/:table/keys/:key', (c) => this.tableLookup(c));
    r('DELETE /api/tables/:table/keys/:key', (c) => this.tableClear(c));
    r('GET /api/tables/:table/top', (c) => this.tableTop(c));
    r('GET /api/bans', () => this.banList());
    r('POST /api/bans', (c) => this.banAdd(c));
    r('DELETE /api/bans/:key', (c) => this.banRemove(c));
    r('GET /api/rules', () => ({ status: 200, body: this.d.targets.rules?.list() ?? [] }));
    r('POST /api/rules/reload', (c) => this.rulesReload(c));
    r('POST /api/config/reload', (c) => this.configReload(c));
    r('PUT /api/rules/:id/mode', (c) => this.ruleMode(c));
    r('DELETE /api/rules/:id/mode', (c) => this.ruleModeReset(c));
    r('GET /api/events/recent', (c) => this.recent(c));
    r('POST /api/drain', (c) => this.drain(c));
    r('GET /api/history', (c) => this.history(c));
    r('GET /api/capacity', (c) => this.capacity(c));
  }

  private historyService(): NonNullable<AdminTargets['history']> {
    const h = this.d.targets.history;
    if (!h) throw new HttpError(404, 'no traffic history on this edge (history.enabled: false)');
    return h;
  }

  /** GET /api/history?range=1h|24h|7d|30d|1y[&kind=&backend=&server=&node=][&format=csv] */
  private history(c: Call): Reply {
    const h = this.historyService();
    const range = c.query.get('range') ?? '1h';
    const kind = c.query.get('kind');
    if (kind !== null && !['server', 'backend', 'rule', 'class'].includes(kind)) throw new HttpError(400, `kind must be server, backend, rule or class, got "${kind}"`);
    let answer;
    try {
      answer = h.history(range, { kind: kind as 'server' | null, backend: c.query.get('backend'), server: c.query.get('server'), node: c.query.get('node') });
    } catch (e) { throw new HttpError(400, (e as Error).message); }
    const format = c.query.get('format') ?? 'json';
    if (format === 'csv') return { status: 200, body: historyCsv(answer), type: 'text/csv; charset=utf-8' };
    if (format !== 'json') throw new HttpError(400, `format must be json or csv, got "${format}"`);
    return { status: 200, body: { ...answer, store: h.status() } };
  }

  /** GET /api/capacity?days=30&target=0.7&growth=10&lose=backend/server[&format=csv] */
  private capacity(c: Call): Reply {
    const h = this.historyService();
    const num = (name: string, lo: number, hi: number): number | undefined => {
      const v = c.query.get(name);
      if (v === null || v === '') return undefined;
      const n = Number(v);
      if (!Number.isFinite(n) || n < lo || n > hi) throw new HttpError(400, `${name} must be a number ${lo}..${hi}, got "${v}"`);
      return n;
    };
    const lose = c.query.get('lose') || null;
    const view = h.capacity({ days: num('days', 1, 400), target: num('target', 0.01, 1), growthPct: num('growth', -100, 1000), lose });
    if (lose !== null && !view.rows.some((r) => r.key === lose && r.kind === 'server')) throw new HttpError(400, `lose: no server "${lose}" in the history (backend/server)`);
    const format = c.query.get('format') ?? 'json';
    if (format === 'csv') return { status: 200, body: capacityCsv(view), type: 'text/csv; charset=utf-8' };
    if (format !== 'json') throw new HttpError(400, `format must be json or csv, got "${format}"`);
    return { status: 200, body: view };
  }

  /** Find the route; `null` → 404. Throws 405 when the path exists for another method. */
  match(method: string, path: string): { handler: Handler; params: Record<string, string> } | null {
    const parts = path.split('/').filter((p) => p !== '');
    let otherMethod = false;
    for (const route of this.routes) {
      if (route.parts.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length && ok; i++) {
        const rp = route.parts[i];
        if (rp.startsWith(':')) {
          try { params[rp.slice(1)] = decodeURIComponent(parts[i]); } catch { throw new HttpError(400, `bad percent-encoding in ${rp.slice(1)}`); }
        } else if (rp !== parts[i]) ok = false;
      }
      if (!ok) continue;
      if (route.method !== method) { otherMethod = true; continue; }
      return { handler: route.handler, params };
    }
    if (otherMethod) throw new HttpError(405, `${method} not allowed on ${path}`);
    return null;
  }

  private audit(c: Call, what: string, target: string | null, before: unknown, after: unknown): void {
    this.d.bus.emit(adminEvent({ who: c.who, what, target, before, after, client: eventClient(c.ip) }));
  }

  private async metricsText(): Promise<Reply> {
    const { body, contentType } = await this.d.metrics.exposition();
    return { status: 200, body, type: contentType };
  }

  /** Runtime server changes in force (persisted; re-applied at start and after reloads). */
  private runtime: Record<string, RuntimeServer> = {};

  private servers(): unknown[] {
    const out: unknown[] = [];
    for (const p of this.d.targets.pools()) {
      for (const s of p.servers()) {
        const rt = this.runtime[`${p.name}/${s.name}`];
        // What the config file does not hold, for the dashboard: added, weight, drain / maint.
        const runtime: string[] = [];
        if (rt?.added) runtime.push('added');
        if (rt?.weight !== undefined) runtime.push('weight');
        if (rt?.state !== undefined) runtime.push(rt.state);
        out.push(runtime.length > 0 ? { ...s, runtime } : s);
      }
    }
    return out;
  }

  /** Runtime server changes in force (a config file reload applies them with the file: process.ts). */
  runtimeChanges(): Readonly<Record<string, RuntimeServer>> { return this.runtime; }

  /**
   * Records a runtime server change in memory first — a file reload that runs while the change is
   * being applied then applies it too — then applies it (`apply`; on failure the record is undone)
   * and persists it.
   */
  private async changeServer(key: string, change: (cur: RuntimeServer) => RuntimeServer | null, apply: () => Promise<{ ok: boolean; errors: string[] }> | { ok: boolean; errors: string[] }): Promise<void> {
    const before = this.runtime[key];
    const changed = change({ ...(before ?? {}) });
    const next = changed === null ? null : Object.fromEntries(Object.entries(changed).filter(([, v]) => v !== undefined)) as RuntimeServer;
    const empty = next === null || Object.keys(next).length === 0;
    const set = (v: RuntimeServer | undefined): void => { if (v === undefined) delete this.runtime[key]; else this.runtime[key] = v; };
    set(empty ? undefined : next as RuntimeServer);
    let r: { ok: boolean; errors: string[] };
    try { r = await apply(); } catch (err) { r = { ok: false, errors: [(err as Error).message] }; }
    if (!r.ok) { set(before); throw new HttpError(422, r.errors.join('; ')); }
    await this.d.store.putServer(key, empty ? null : next);
  }

  private async persistServer(key: string, change: (cur: RuntimeServer) => RuntimeServer | null): Promise<void> {
    await this.changeServer(key, change, () => ({ ok: true, errors: [] }));
  }

  private runtimeServers(): NonNullable<AdminTargets['runtimeServers']> {
    const rs = this.d.targets.runtimeServers;
    if (!rs) throw new HttpError(404, 'servers cannot be added or removed at runtime on this edge');
    return rs;
  }

  /** POST /api/servers/:backend {name, url, weight?, maxconn?, backup?}: a new server, live, persisted. */
  private async serverAdd(c: Call): Promise<Reply> {
    const rs = this.runtimeServers();
    const backend = c.params.backend;
    const pool = this.d.targets.pools().find((p) => p.name === backend);
    if (!pool) throw new HttpError(404, `no backend "${backend}"`);
    const b = await c.body();
    if (typeof b.name !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(b.name)) throw new HttpError(400, 'body.name must be 1–64 of A-Z a-z 0-9 _ . -');
    if (typeof b.url !== 'string' || !/^https?:\/\/[^/\s]+:\d{1,5}$/.test(b.url)) throw new HttpError(400, 'body.url must be http://host:port');
    const weight = b.weight === undefined ? 1 : b.weight;
    const maxconn = b.maxconn === undefined ? 0 : b.maxconn;
    const backup = b.backup === undefined ? false : b.backup;
    if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 0 || weight > 256) throw new HttpError(400, 'body.weight must be an integer 0..256');
    if (typeof maxconn !== 'number' || !Number.isInteger(maxconn) || maxconn < 0) throw new HttpError(400, 'body.maxconn must be an integer ≥ 0');
    if (typeof backup !== 'boolean') throw new HttpError(400, 'body.backup must be true or false');
    if (pool.servers().some((s) => s.name === b.name)) throw new HttpError(409, `backend ${backend} already has a server "${b.name}"`);
    const spec = { name: b.name, url: b.url, weight, maxconn, backup };
    await this.changeServer(`${backend}/${b.name}`, (cur) => ({ ...cur, removed: undefined, added: { url: spec.url, weight, maxconn, backup } }), () => rs.add(backend, spec));
    this.audit(c, 'server.add', `${backend}/${b.name}`, null, spec);
    const info = this.d.targets.pools().find((p) => p.name === backend)?.servers().find((s) => s.name === b.name);
    return { status: 201, body: info ?? spec };
  }

  /** DELETE /api/servers/:backend/:server: no new requests from now on, requests in flight finish. */
  private async serverRemove(c: Call): Promise<Reply> {
    const rs = this.runtimeServers();
    const { pool, info } = this.findServer(c);
    const key = `${pool.name}/${info.name}`;
    // A server added at runtime simply goes; one from the file is remembered as removed.
    await this.changeServer(key, (cur) => (cur.added ? null : { removed: true }), () => rs.remove(pool.name, info.name));
    this.audit(c, 'server.remove', key, info, null);
    return { status: 200, body: { backend: pool.name, name: info.name, removed: true } };
  }

  private findServer(c: Call): { pool: ReturnType<AdminTargets['pools']>[number]; info: ReturnType<ReturnType<AdminTargets['pools']>[number]['servers']>[number] } {
    const pool = this.d.targets.pools().find((p) => p.name === c.params.backend);
    if (!pool) throw new HttpError(404, `no backend "${c.params.backend}"`);
    const info = pool.servers().find((s) => s.name === c.params.server);
    if (!info) throw new HttpError(404, `no server "${c.params.server}" in backend "${c.params.backend}"`);
    return { pool, info };
  }

  private async serverOp(c: Call): Promise<Reply> {
    const state = SERVER_OPS[c.params.op];
    if (state === undefined) throw new HttpError(404, `unknown server operation "${c.params.op}" (drain, maint, ready)`);
    const { pool, info } = this.findServer(c);
    const before = info.state;
    if (!pool.setState(info.name, state)) throw new HttpError(409, `server ${pool.name}/${info.name} refused state ${state}`);
    const after = pool.servers().find((s) => s.name === info.name) ?? info;
    await this.persistServer(`${pool.name}/${info.name}`, (cur) => ({ ...cur, state: state === 'up' ? undefined : state }));
    this.audit(c, `server.${c.params.op}`, `${pool.name}/${info.name}`, before, after.state);
    return { status: 200, body: after };
  }

  private async serverWeight(c: Call): Promise<Reply> {
    const body = await c.body();
    const w = body.weight;
    if (typeof w !== 'number' || !Number.isInteger(w) || w < 0 || w > 256) throw new HttpError(400, 'body.weight must be an integer 0..256');
    const { pool, info } = this.findServer(c);
    const before = info.weight;
    const rs = this.d.targets.runtimeServers;
    // Through the config in force where the edge offers it (a file reload then keeps the weight).
    if (rs?.weight === undefined && !pool.setWeight(info.name, w)) throw new HttpError(409, `server ${pool.name}/${info.name} refused weight ${w}`);
    await this.changeServer(`${pool.name}/${info.name}`, (cur) => (cur.added ? { ...cur, added: { ...cur.added, weight: w } } : { ...cur, weight: w }),
      () => (rs?.weight !== undefined ? rs.weight(pool.name, info.name, w) : { ok: true, errors: [] }));
    const after = this.d.targets.pools().find((p) => p.name === pool.name)?.servers().find((s) => s.name === info.name) ?? info;
    this.audit(c, 'server.weight', `${pool.name}/${info.name}`, before, after.weight);
    return { status: 200, body: after };
  }

  private async tableLookup(c: Call): Promise<Reply> {
    const e = await this.d.targets.tables.lookup(c.params.table, c.params.key);
    if (e === null) throw new HttpError(404, `no key "${c.params.key}" in table "${c.params.table}"`);
    return { status: 200, body: { table: c.params.table, key: c.params.key, values: e } };
  }

  private async tableClear(c: Call): Promise<Reply> {
    const before = await this.d.targets.tables.lookup(c.params.table, c.params.key);
    const ok = await this.d.targets.tables.clear(c.params.table, c.params.key);
    if (!ok) throw new HttpError(404, `no key "${c.params.key}" in table "${c.params.table}"`);
    this.audit(c, 'table.clear', `${c.params.table}/${c.params.key}`, before, null);
    return { status: 200, body: { cleared: true } };
  }

  private async tableTop(c: Call): Promise<Reply> {
    const by = c.query.get('by') ?? 'http_req_rate';
    const nText = c.query.get('n') ?? '20';
    const n = Number(nText);
    if (!Number.isInteger(n) || n < 1 || n > 1000) throw new HttpError(400, `n must be an integer 1..1000, got "${nText}"`);
    let rows;
    try { rows = await this.d.targets.tables.top(c.params.table, by, n); } catch (e) {
      throw new HttpError(400, (e as Error).message);
    }
    if (rows === null) throw new HttpError(404, `no table "${c.params.table}"`);
    return { status: 200, body: rows };
  }

  private async banList(): Promise<Reply> {
    const now = Date.now();
    const list = await this.d.targets.bans.list();
    return { status: 200, body: list.map((b) => ({ ...b, ttl: b.expiresAt === null ? null : Math.max(0, Math.ceil((b.expiresAt - now) / 1000)) })) };
  }

  private async banAdd(c: Call): Promise<Reply> {
    const body = await c.body();
    const key = body.key;
    if (typeof key !== 'string' || key === '' || key.length > 128) throw new HttpError(400, 'body.key must be a non-empty string (client address or key, ≤ 128 chars)');
    const ttlSec = parseTtl(body.ttl);
    const reason = body.reason === undefined ? 'admin' : body.reason;
    if (typeof reason !== 'string' || reason.length > 500) throw new HttpError(400, 'body.reason must be a string (≤ 500 chars)');
    const before = (await this.d.targets.bans.list()).find((b) => b.key === key) ?? null;
    const ttlMs = ttlSec === null ? null : ttlSec * 1000;
    await this.d.targets.bans.add(key, ttlMs, reason, c.who);
    const ban: StoredBan = { reason, expiresAt: ttlMs === null ? null : Date.now() + ttlMs, source: c.who };
    await this.d.store.putBan(key, ban);
    this.audit(c, 'ban.add', key, before, { key, ttl: ttlSec, reason });
    return { status: 201, body: { key, ...ban, ttl: ttlSec } };
  }

  private async banRemove(c: Call): Promise<Reply> {
    const key = c.params.key;
    const before = (await this.d.targets.bans.list()).find((b) => b.key === key) ?? null;
    const removed = await this.d.targets.bans.remove(key);
    // Remove from the store even if the live ban had already expired, so it is not re-applied.
    const stored = (await this.d.store.load()).bans[key] !== undefined;
    if (stored) await this.d.store.deleteBan(key);
    if (!removed && !stored) throw new HttpError(404, `"${key}" is not banned`);
    this.audit(c, 'ban.remove', key, before, null);
    return { status: 200, body: { key, removed: true } };
  }

  private rules(): NonNullable<AdminTargets['rules']> {
    const r = this.d.targets.rules;
    if (r === null) throw new HttpError(404, 'no rule files are configured');
    return r;
  }

  /** The whole config file again (as SIGHUP): 200 with what changed, or 422 with the errors (nothing changed). */
  private async configReload(c: Call): Promise<Reply> {
    const reload = this.d.targets.reloadConfig;
    if (!reload) throw new HttpError(404, 'this edge has no config file to reload');
    const res = await reload();
    if (res.ok) await this.reapply();
    this.audit(c, 'config.reload', null, null, res);
    return { status: res.ok ? 200 : 422, body: res };
  }

  private async rulesReload(c: Call): Promise<Reply> {
    const rules = this.rules();
    const before = rules.list().length;
    const res = await rules.reload();
    if (res.ok) await this.reapply();
    this.audit(c, 'rules.reload', null, { rules: before }, { ok: res.ok, errors: res.errors, hash: res.hash, rules: rules.list().length });
    return { status: res.ok ? 200 : 422, body: res };
  }

  private async ruleMode(c: Call): Promise<Reply> {
    const rules = this.rules();
    const body = await c.body();
    const mode = body.mode as RuleMode;
    if (!RULE_MODES.includes(mode)) throw new HttpError(400, `body.mode must be one of ${RULE_MODES.join(', ')}`);
    const id = c.params.id;
    const rule = rules.list().find((x) => x.id === id);
    if (!rule) throw new HttpError(404, `no rule "${id}"`);
    if (!rules.setMode(id, mode)) throw new HttpError(404, `no rule "${id}"`);
    await this.d.store.putMode(id, mode);
    this.audit(c, 'rule.mode', id, rule.mode, mode);
    return { status: 200, body: { id, mode, persisted: this.d.store.kind } };
  }

  private async ruleModeReset(c: Call): Promise<Reply> {
    const id = c.params.id;
    const state = await this.d.store.load();
    if (state.modes[id] === undefined) throw new HttpError(404, `rule "${id}" has no runtime mode override`);
    await this.d.store.deleteMode(id);
    // The rule manager keeps its overrides across reloads too: drop it there (and in every worker),
    // so the file's mode applies now, after a reload and after a restart. A rule that is no longer in
    // the ruleset has nothing to restore.
    const rules = this.d.targets.rules;
    if (rules !== null) rules.setMode(id, null);
    const mode = rules?.list().find((r) => r.id === id)?.mode ?? null;
    this.audit(c, 'rule.mode_reset', id, state.modes[id], mode);
    return { status: 200, body: { id, override: null, mode, note: 'the mode from the rule file applies' } };
  }

  /** Planned hand-over: not ready now, the process stops after the grace (docs/ha.md). */
  private async drain(c: Call): Promise<Reply> {
    const { targets } = this.d;
    if (targets.drain === undefined) throw new HttpError(501, 'this edge cannot be drained from the admin API (not a `portcullis run` process)');
    const body = await c.body();
    let graceMs = targets.drainGraceMs ?? 10_000;
    if (body.grace !== undefined) {
      const g = typeof body.grace === 'number' ? body.grace * 1000 : typeof body.grace === 'string' ? parseDuration(body.grace) : null;
      if (g === null || !Number.isFinite(g) || g < 0 || g > 3_600_000) throw new HttpError(400, 'body.grace must be seconds (number) or a duration like "5s", at most 1h');
      graceMs = Math.round(g);
    }
    const before = targets.health().status;
    if (!targets.drain(graceMs, c.who)) throw new HttpError(409, 'a drain or stop is already under way');
    this.audit(c, 'node.drain', this.d.bus.node, before, 'draining');
    return { status: 202, body: { status: 'draining', node: this.d.bus.node, grace_ms: graceMs, note: '/healthz answers 503 now; in-flight requests finish after the grace, then the process stops' } };
  }

  private recent(c: Call): Reply {
    const f = parseFilter({ type: c.query.get('type') ?? undefined, rule: c.query.get('rule') ?? undefined, client: c.query.get('client') ?? undefined, node: c.query.get('node') ?? undefined });
    const limitText = c.query.get('limit') ?? '200';
    const limit = Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new HttpError(400, `limit must be an integer 1..500, got "${limitText}"`);
    return { status: 200, body: this.d.feed.recentEvents(f, limit) };
  }

  /**
   * Re-apply persisted bans and rule modes (at start and after every rules reload). Returns what
   * could not be applied (a rule id that no longer exists) so that start-up can log it.
   */
  async reapply(): Promise<{ bans: number; modes: number; missingRules: string[] }> {
    const state = await this.d.store.load();
    const now = Date.now();
    let bans = 0;
    // A ban still running (a reload does not touch bans) is left alone: re-adding it would only
    // emit a second `ban` event for the same ban.
    const live = new Set((await this.d.targets.bans.list()).map((b) => b.key));
    for (const [key, b] of Object.entries(state.bans)) {
      const ttl = b.expiresAt === null ? null : b.expiresAt - now;
      if (ttl !== null && ttl <= 0) continue;
      bans++;
      if (live.has(key)) continue;
      await this.d.targets.bans.add(key, ttl, b.reason, b.source);
    }
    // Runtime server changes: removed, added, then weight and drain/maint (re-applied after every reload).
    this.runtime = { ...state.servers };
    const rs = this.d.targets.runtimeServers;
    for (const [key, ch] of Object.entries(state.servers)) {
      const i = key.indexOf('/');
      const backend = key.slice(0, i), name = key.slice(i + 1);
      const pool = () => this.d.targets.pools().find((p) => p.name === backend);
      const has = (): boolean => pool()?.servers().some((s) => s.name === name) ?? false;
      if (ch.removed && has() && rs) await rs.remove(backend, name);
      if (ch.added && !has() && rs) await rs.add(backend, { name, ...ch.added });
      const p = pool();
      if (p === undefined || !has()) continue;
      if (ch.weight !== undefined && p.servers().find((s) => s.name === name)?.weight !== ch.weight) {
        if (rs?.weight !== undefined) await rs.weight(backend, name, ch.weight); else p.setWeight(name, ch.weight);
      }
      if (ch.state !== undefined && p.servers().find((s) => s.name === name)?.state !== ch.state) p.setState(name, ch.state);
    }
    let modes = 0;
    const missingRules: string[] = [];
    const rules = this.d.targets.rules;
    if (rules) {
      const known = new Set(rules.list().map((r) => r.id));
      for (const [id, mode] of Object.entries(state.modes)) {
        if (known.has(id) && rules.setMode(id, mode)) modes++;
        else missingRules.push(id);
      }
    }
    return { bans, modes, missingRules };
  }

  async stats(): Promise<unknown> {
    const { targets, metrics, blocks, sampler, feed } = this.d;
    const pools = targets.pools();
    const servers = this.servers();
    const hist = sampler.history;
    const last = hist.length > 0 ? hist[hist.length - 1] : null;
    const rules = targets.rules?.list() ?? [];
    const byMode: Record<string, number> = {};
    for (const r of rules) byMode[r.mode] = (byMode[r.mode] ?? 0) + 1;
    let bans = 0;
    let tables: unknown[] = [];
    try { tables = targets.tables.tables(); } catch { tables = []; }
    try { bans = (await targets.bans.list()).length; } catch { bans = -1; }
    return {
      node: this.d.bus.node,
      time: new Date().toISOString(),
      uptimeSec: Math.round((Date.now() - this.d.startedAt) / 1000),
      ready: targets.health().ready,
      redis: targets.redisState(),
      redisReason: targets.redisReason?.() ?? null,
      // For soak runs and leak hunting: this (main) thread's memory, in bytes.
      process: (() => { const m = process.memoryUsage(); return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external }; })(),
      requests: {
        total: metrics.requests,
        rate: last?.rps ?? 0,
        byClass: { '1xx': metrics.byClass[1], '2xx': metrics.byClass[2], '3xx': metrics.byClass[3], '4xx': metrics.byClass[4], '5xx': metrics.byClass[5] },
        // Over the last minute (sampler.latency()); since start only in /metrics' histogram.
        latency: sampler.latency(),
      },
      connections: metrics.activeNow,
      ruleHits: metrics.ruleHits,
      guardRejects: metrics.guardRejects,
      queueTimeouts: metrics.queueTimeouts,
      // Requests by protocol version since start ("1.0", "1.1", "2"), and the HTTP/2 defences that fired, by name.
      protocols: metrics.protocols(),
      http2Defences: metrics.http2DefenceCounts(),
      history: hist,
      blocks: blocks.snapshot(10),
      servers,
      queues: pools.map((p) => ({ backend: p.name, length: p.queueLength() })),
      tables,
      bans,
      rules: { count: rules.length, byMode, list: rules },
      events: { sinks: metrics.sinkStats(), wsClients: feed.clientCount, wsClientDrops: feed.clientDrops, busFailures: this.d.bus.failures },
      edge: targets.stats(),
    };
  }
}

/** ttl: seconds (number) or text with a unit (30s, 10m, 2h, 1d); null/absent = no expiry. */
export function parseTtl(v: unknown): number | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v <= 0 || v > 365 * 86400) throw new HttpError(400, 'body.ttl must be seconds > 0 (≤ 1 year), a duration like "10m", or null');
    return Math.round(v);
  }
  if (typeof v === 'string') {
    const m = /^(\d+)(s|m|h|d)?$/.exec(v.trim());
    if (!m) throw new HttpError(400, `body.ttl "${v}" is not a duration (e.g. 600, "30s", "10m", "2h", "1d")`);
    const mult = { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
    return parseTtl(Number(m[1]) * mult);
  }
  throw new HttpError(400, 'body.ttl must be a number of seconds, a duration string, or null');
}

/** Read a JSON body of at most `limit` bytes. */
export function readJson(req: IncomingMessage, limit = 64 * 1024): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) { reject(new HttpError(413, `body larger than ${limit} bytes`)); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => {
      if (size === 0) { resolve({}); return; }
      try {
        const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
        if (v === null || typeof v !== 'object' || Array.isArray(v)) { reject(new HttpError(400, 'body must be a JSON object')); return; }
        resolve(v as Record<string, unknown>);
      } catch (e) { reject(new HttpError(400, `body is not valid JSON: ${(e as Error).message}`)); }
    });
    req.on('error', reject);
  });
}
