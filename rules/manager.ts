// Hot reload with last-known-good. On a file change (rule or list file), SIGHUP or an admin call:
// parse, check, load lists, compile and run the files' own tests (yielding to the event loop
// between tests, so the request path keeps running), then swap the active ruleset in one
// assignment. Any error or failing test keeps the previous ruleset and is reported through
// onEvent/onReload. Requests already evaluating keep the Ruleset object they started with.
// Runtime mode overrides (setMode) are re-applied to every new ruleset.
import type { CounterStore } from './counters.js';
import { type Diagnostic, formatDiagnostic } from './diagnostics.js';
import { watchFiles } from '../lib/watch-files.js';
import { loadRulesetFromFiles, type LoadOptions } from './load.js';
import type { Ruleset } from './ruleset.js';
import { MODES, type RuleMode } from './scheme.js';
import { runRuleTestsAsync, type TestReport } from './test-runner.js';

export type ReloadReason = 'initial' | 'file' | 'signal' | 'admin';

export interface ReloadResult {
  ok: boolean;
  reason: ReloadReason;
  /** Hash of the ruleset active after this reload (the old one when the reload failed), or null. */
  hash: string | null;
  previousHash: string | null;
  diagnostics: Diagnostic[];
  tests: TestReport | null;
  /** Human-readable errors (formatted diagnostics and failing tests); empty when ok. */
  errors: string[];
}

export interface RuleEvent {
  type: 'reload';
  ok: boolean;
  reason: ReloadReason;
  hash: string | null;
  previousHash: string | null;
  errors: string[];
  warnings: number;
  testsPassed: number;
  testsFailed: number;
  [field: string]: unknown;
}

export interface RuleManagerOptions extends LoadOptions {
  files: string[];
  /** Counter store factory for test runs during reload (default: in-memory, virtual clock). */
  counters?: () => CounterStore;
  /** Run the files' inline tests before swapping (default true). */
  runTests?: boolean;
  /** Warnings fail the reload (default false). */
  strict?: boolean;
  onEvent?: (ev: RuleEvent) => void;
  onReload?: (r: ReloadResult) => void;
  /** Debounce for file watching (default 100 ms). */
  debounceMs?: number;
}

export class RuleManager {
  private active: Ruleset | null = null;
  private readonly overrides = new Map<string, RuleMode>();
  private chain: Promise<ReloadResult> | null = null;
  private pending: { reason: ReloadReason; promise: Promise<ReloadResult> } | null = null;
  private unwatch: (() => void) | null = null;
  private watching = false;
  private deps: string[] = [];
  private readonly onHup = () => { void this.reload('signal'); };

  constructor(private readonly opts: RuleManagerOptions) {}

  /** The active ruleset. Throws before the first successful load. */
  current(): Ruleset {
    if (!this.active) throw new Error('no ruleset loaded yet (call reload() first)');
    return this.active;
  }
  get loaded(): boolean { return this.active !== null; }
  /** True between watch() and close(): file changes and SIGHUP reload the rules. */
  get isWatching(): boolean { return this.watching; }

  /**
   * Reload now. Reloads are serialised; a reload requested while one runs is coalesced into
   * a single follow-up run.
   */
  reload(reason: ReloadReason = this.active ? 'admin' : 'initial'): Promise<ReloadResult> {
    if (!this.chain) {
      this.chain = this.doReload(reason).finally(() => { this.chain = null; });
      return this.chain;
    }
    if (this.pending) return this.pending.promise;
    const running = this.chain;
    const promise = running.catch(() => undefined).then(() => {
      this.pending = null;
      return this.reload(reason);
    });
    this.pending = { reason, promise };
    return promise;
  }

  private async doReload(reason: ReloadReason): Promise<ReloadResult> {
    const previousHash = this.active?.hash ?? null;
    const res = loadRulesetFromFiles(this.opts.files, this.opts);
    const diagnostics = res.diagnostics;
    const errors = diagnostics.filter((d) => d.severity === 'error' || this.opts.strict).map((d) => formatDiagnostic(d));
    let tests: TestReport | null = null;
    const next = res.ruleset;
    if (next && errors.length === 0 && this.opts.runTests !== false) {
      try {
        tests = await runRuleTestsAsync(next, this.opts.counters ? { counters: this.opts.counters } : {});
        for (const t of tests.results) if (!t.passed) errors.push(`test "${t.name}" failed: ${t.failures.join('; ')}`);
      } catch (e) {
        errors.push(`running tests failed: ${(e as Error).message}`);
      }
    }
    const ok = next !== null && errors.length === 0;
    if (ok) {
      for (const [id, mode] of this.overrides) next.setMode(id, mode);
      this.active = next; // the atomic swap
      this.deps = res.dependencies;
    }
    if (this.watching) this.rewatch(res.dependencies);
    const result: ReloadResult = { ok, reason, hash: this.active?.hash ?? null, previousHash, diagnostics, tests, errors };
    const warnings = diagnostics.filter((d) => d.severity === 'warning').length;
    this.emit({ type: 'reload', ok, reason, hash: result.hash, previousHash, errors, warnings, testsPassed: tests?.passed ?? 0, testsFailed: tests?.failed ?? 0 });
    try { this.opts.onReload?.(result); } catch { /* a broken callback must not break reloads */ }
    return result;
  }

  private emit(ev: RuleEvent): void {
    try { this.opts.onEvent?.(ev); } catch { /* same */ }
  }

  /** Reload on rule/list file changes and on SIGHUP until close(). */
  watch(): void {
    if (this.watching) return;
    this.watching = true;
    process.on('SIGHUP', this.onHup);
    this.rewatch(this.deps);
  }

  private rewatch(extra: string[]): void {
    this.unwatch?.();
    const files = [...new Set([...this.opts.files, ...this.deps, ...extra])];
    this.unwatch = watchFiles(files, () => { void this.reload('file'); }, { debounceMs: this.opts.debounceMs ?? 100 });
  }

  close(): void {
    this.watching = false;
    process.off('SIGHUP', this.onHup);
    this.unwatch?.();
    this.unwatch = null;
  }

  /**
   * Switch a rule's mode at runtime (null removes the override). The override is kept across
   * reloads. Returns false when the active ruleset has no such rule or the mode is unknown.
   */
  setMode(ruleId: string, mode: RuleMode | null): boolean {
    if (mode !== null && !MODES.includes(mode)) return false;
    if (!this.active || !this.active.hasRule(ruleId)) return false;
    if (mode === null) this.overrides.delete(ruleId); else this.overrides.set(ruleId, mode);
    return this.active.setMode(ruleId, mode);
  }

  /** Current runtime overrides. */
  modeOverrides(): Record<string, RuleMode> { return Object.fromEntries(this.overrides); }
}
