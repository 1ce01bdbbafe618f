// What the admin API acts on. The edge (edge/main wiring) implements these narrow interfaces over
// its pools, stick tables, guard and rule manager; the admin server never reaches into them
// otherwise. Methods may return a value or a promise (Redis-backed tables are asynchronous).
import type { BackendPool } from '../backend/types.js';
import type { RuleMode } from '../observe/events/schema.js';
import type { Readiness } from '../main/readiness.js';
import type { HistoryService } from '../history/service.js';

export type MaybePromise<T> = T | Promise<T>;

export interface BanEntry {
  key: string;
  reason: string;
  /** Wall-clock ms when the ban ends; null = until removed. */
  expiresAt: number | null;
  /** Who or what set it: a rule id, "admin", a token name. */
  source?: string | null;
}

export interface BanControl {
  list(): MaybePromise<BanEntry[]>;
  /** ttlMs null = until removed. Replaces an existing ban of the same key. */
  add(key: string, ttlMs: number | null, reason: string, source: string): MaybePromise<void>;
  /** False when the key was not banned. */
  remove(key: string): MaybePromise<boolean>;
}

export interface TableInfo { name: string; size: number; capacity?: number | null }

/** A stick-table entry: counter name (http_req_rate, conn_cur …) → value. */
export type TableEntry = Record<string, number>;

export interface TableControl {
  tables(): TableInfo[];
  /** null when the table or the key does not exist. */
  lookup(table: string, key: string): MaybePromise<TableEntry | null>;
  /** False when the table or the key does not exist. */
  clear(table: string, key: string): MaybePromise<boolean>;
  /** Top n keys by one stored counter; throws (→ 400) for an unknown counter. null: unknown table. */
  top(table: string, by: string, n: number): MaybePromise<{ key: string; values: TableEntry }[] | null>;
}

export interface RuleInfo {
  id: string;
  mode: RuleMode;
  action?: string;
  /** Where it is declared, e.g. "rules/shop.rules:12". */
  source?: string;
  description?: string;
}

export interface ReloadResult { ok: boolean; errors: string[]; hash: string | null }

export interface RuleControl {
  list(): RuleInfo[];
  /** Re-read and compile the rule files; on errors the running ruleset stays. */
  reload(): Promise<ReloadResult>;
  /** False when no rule has this id. null drops the runtime override: the rule file's mode applies again. */
  setMode(id: string, mode: RuleMode | null): boolean;
}

/** Extra numbers the edge reports in /api/stats. */
export interface EdgeStats {
  /** Ruleset / config generation hash in force. */
  configHash?: string | null;
  /** Anything else worth showing (name → number or text). */
  [key: string]: unknown;
}

export interface AdminTargets {
  pools(): BackendPool[];
  bans: BanControl;
  tables: TableControl;
  /** null when no rule files are configured. */
  rules: RuleControl | null;
  stats(): EdgeStats;
  /** May this node take traffic (edge/main/readiness.ts): /healthz answers 200 or 503 with the reasons. */
  health(): Readiness;
  /** Planned hand-over (POST /api/drain): report not ready, wait `graceMs` for the virtual address to
   *  move, finish in-flight requests, stop the process. Absent where the process cannot be stopped
   *  from here (tests' in-process edges). Returns false when a drain is already under way. */
  drain?(graceMs: number, who: string): boolean;
  /** Default grace of a drain (ha.drain_grace). */
  drainGraceMs?: number;
  redisState(): 'ok' | 'degraded' | 'off';
  /**
   * Adds / removes / re-weights a server at runtime (a live reconfiguration of its backend, so that
   * the config in force holds it and a file reload keeps it); null: not available.
   */
  runtimeServers?: {
    add(backend: string, server: { name: string; url: string; weight: number; maxconn: number; backup: boolean }): Promise<{ ok: boolean; errors: string[] }>;
    remove(backend: string, server: string): Promise<{ ok: boolean; errors: string[] }>;
    /** Absent: the weight is set on the pool only (BackendPool.setWeight). */
    weight?(backend: string, server: string, weight: number): Promise<{ ok: boolean; errors: string[] }>;
  } | null;
  /** Re-reads and applies the config file (null: not available, e.g. an edge without a file). */
  reloadConfig?: (() => Promise<{ ok: boolean; errors: string[]; changes: string[]; restartRequired: string[] }>) | null;
  /** Traffic history and capacity view (GET /api/history, /api/capacity); null or absent: not kept. */
  history?: HistoryService | null;
  /** Why Redis is degraded ('NOAUTH: …'); null while ok or off. */
  redisReason?(): string | null;
}
