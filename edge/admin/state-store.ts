// Runtime changes an operator makes through the admin API (bans, rule modes) outlive a reload and
// a restart: they are written here and re-applied at start and after every rules reload.
// HAProxy's runtime API loses its edits on reload; ours does not.
// Two stores: a JSON file (default, next to the config; written atomically: temp file + rename)
// and Redis hashes (when Redis is configured: shared by every node, so a ban set on one node is
// re-applied by all of them on restart; RedisStateStore, in redis-state-store.ts so that ioredis is
// loaded only when it is used).
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { RULE_MODES } from '../observe/events/schema.js';
import type { RuleMode } from '../observe/events/schema.js';

export interface StoredBan { reason: string; expiresAt: number | null; source: string }

/**
 * A server change made through the admin API that the config file does not hold (key
 * `backend/server`): added at runtime, removed at runtime, re-weighted, drained or in maintenance.
 * Re-applied at start and after every reload, like bans and rule modes.
 */
export interface RuntimeServer {
  added?: { url: string; weight: number; maxconn: number; backup: boolean };
  removed?: boolean;
  weight?: number;
  state?: 'drain' | 'maint';
}

export interface AdminState {
  bans: Record<string, StoredBan>;
  modes: Record<string, RuleMode>;
  /** Runtime server changes (absent in state written before they existed). */
  servers: Record<string, RuntimeServer>;
}

export interface StateStore {
  readonly kind: 'file' | 'redis' | 'memory';
  /** Current state, expired bans left out. */
  load(): Promise<AdminState>;
  putBan(key: string, ban: StoredBan): Promise<void>;
  deleteBan(key: string): Promise<void>;
  putMode(rule: string, mode: RuleMode): Promise<void>;
  deleteMode(rule: string): Promise<void>;
  /** Sets (or with null clears) the runtime change of server `backend/server`. */
  putServer(key: string, change: RuntimeServer | null): Promise<void>;
  /** Shared stores: `fn` hears of rule-mode changes other nodes make (within milliseconds). */
  watch?(fn: (change: ModeChange) => void): void;
  close(): Promise<void>;
}

/** A rule mode set (`mode`) or its override removed (`mode: null`) on another node. */
export interface ModeChange { rule: string; mode: RuleMode | null }

function emptyState(): AdminState { return { bans: {}, modes: {}, servers: {} }; }

/** Checks one runtime server change read back from a file or Redis. */
export function parseRuntimeServer(v: unknown, where: string): RuntimeServer {
  const o = v as Record<string, unknown> | null;
  if (o === null || typeof o !== 'object') throw new Error(`${where}: must be an object`);
  const out: RuntimeServer = {};
  if (o.added !== undefined) {
    const a = o.added as Record<string, unknown> | null;
    if (a === null || typeof a !== 'object' || typeof a.url !== 'string' || typeof a.weight !== 'number' || typeof a.maxconn !== 'number' || typeof a.backup !== 'boolean') {
      throw new Error(`${where}.added must be {url, weight, maxconn, backup}`);
    }
    out.added = { url: a.url, weight: a.weight, maxconn: a.maxconn, backup: a.backup };
  }
  if (o.removed === true) out.removed = true;
  if (o.weight !== undefined) { if (typeof o.weight !== 'number') throw new Error(`${where}.weight must be a number`); out.weight = o.weight; }
  if (o.state !== undefined) { if (o.state !== 'drain' && o.state !== 'maint') throw new Error(`${where}.state must be drain or maint`); out.state = o.state; }
  return out;
}

export function pruneExpired(s: AdminState, now: number): AdminState {
  for (const [k, b] of Object.entries(s.bans)) if (b.expiresAt !== null && b.expiresAt <= now) delete s.bans[k];
  return s;
}

/** Validate what was read so that a hand-edited or truncated file gives a clear error. */
export function parseState(text: string, where: string): AdminState {
  let raw: unknown;
  try { raw = JSON.parse(text); } catch (e) {
    throw new Error(`${where}: not valid JSON (${(e as Error).message})`);
  }
  if (raw === null || typeof raw !== 'object') throw new Error(`${where}: expected an object with "bans" and "modes"`);
  const o = raw as { bans?: unknown; modes?: unknown };
  const out = emptyState();
  if (o.bans !== undefined) {
    if (o.bans === null || typeof o.bans !== 'object') throw new Error(`${where}: "bans" must be an object`);
    for (const [k, v] of Object.entries(o.bans as Record<string, unknown>)) {
      const b = v as Partial<StoredBan> | null;
      if (b === null || typeof b !== 'object' || typeof b.reason !== 'string' || !(b.expiresAt === null || typeof b.expiresAt === 'number')) {
        throw new Error(`${where}: bans["${k}"] must be {reason: string, expiresAt: number|null, source: string}`);
      }
      out.bans[k] = { reason: b.reason, expiresAt: b.expiresAt, source: typeof b.source === 'string' ? b.source : 'admin' };
    }
  }
  if (o.modes !== undefined) {
    if (o.modes === null || typeof o.modes !== 'object') throw new Error(`${where}: "modes" must be an object`);
    for (const [k, v] of Object.entries(o.modes as Record<string, unknown>)) {
      if (!RULE_MODES.includes(v as RuleMode)) throw new Error(`${where}: modes["${k}"] must be one of ${RULE_MODES.join(', ')}, got ${JSON.stringify(v)}`);
      out.modes[k] = v as RuleMode;
    }
  }
  const srv = (raw as { servers?: unknown }).servers;
  if (srv !== undefined) {
    if (srv === null || typeof srv !== 'object') throw new Error(`${where}: "servers" must be an object`);
    for (const [k, v] of Object.entries(srv as Record<string, unknown>)) out.servers[k] = parseRuntimeServer(v, `${where}: servers["${k}"]`);
  }
  return out;
}

export class FileStateStore implements StateStore {
  readonly kind = 'file' as const;
  private state: AdminState | null = null;
  // Writes are chained so that two API calls never interleave their temp files.
  private writing: Promise<void> = Promise.resolve();

  constructor(readonly path: string, private readonly now: () => number = Date.now) {}

  async load(): Promise<AdminState> {
    let text: string;
    try { text = await readFile(this.path, 'utf8'); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') { this.state = emptyState(); return structuredClone(this.state); }
      throw new Error(`${this.path}: cannot read admin state (${(e as Error).message})`);
    }
    this.state = pruneExpired(parseState(text, this.path), this.now());
    return structuredClone(this.state);
  }

  private async mutate(fn: (s: AdminState) => void): Promise<void> {
    if (this.state === null) await this.load();
    fn(this.state as AdminState);
    pruneExpired(this.state as AdminState, this.now());
    const text = JSON.stringify(this.state, null, 2) + '\n';
    const next = this.writing.then(async () => {
      await mkdir(dirname(this.path), { recursive: true });
      const tmp = `${this.path}.${process.pid}.tmp`;
      await writeFile(tmp, text, 'utf8');
      await rename(tmp, this.path);
    });
    this.writing = next.catch(() => undefined);
    await next;
  }

  putBan(key: string, ban: StoredBan): Promise<void> { return this.mutate((s) => { s.bans[key] = ban; }); }
  deleteBan(key: string): Promise<void> { return this.mutate((s) => { delete s.bans[key]; }); }
  putMode(rule: string, mode: RuleMode): Promise<void> { return this.mutate((s) => { s.modes[rule] = mode; }); }
  deleteMode(rule: string): Promise<void> { return this.mutate((s) => { delete s.modes[rule]; }); }
  putServer(key: string, change: RuntimeServer | null): Promise<void> { return this.mutate((s) => { if (change === null) delete s.servers[key]; else s.servers[key] = change; }); }
  async close(): Promise<void> { await this.writing; }
}

/** Used only when neither a state file nor Redis is configured: edits survive reloads, not restarts. */
export class MemoryStateStore implements StateStore {
  readonly kind = 'memory' as const;
  private state = emptyState();
  async load(): Promise<AdminState> { return structuredClone(pruneExpired(this.state, Date.now())); }
  async putBan(key: string, ban: StoredBan): Promise<void> { this.state.bans[key] = ban; }
  async deleteBan(key: string): Promise<void> { delete this.state.bans[key]; }
  async putMode(rule: string, mode: RuleMode): Promise<void> { this.state.modes[rule] = mode; }
  async deleteMode(rule: string): Promise<void> { delete this.state.modes[rule]; }
  async putServer(key: string, change: RuntimeServer | null): Promise<void> { if (change === null) delete this.state.servers[key]; else this.state.servers[key] = change; }
  async close(): Promise<void> { /* nothing held */ }
}
