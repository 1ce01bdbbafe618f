// How the edge process sizes V8's heap: the young generation is capped, the old generation grows
// in smaller steps than V8's defaults and node's V8 thread pool is halved, so that 1,000 client connections fit in ≤ 100 MB of RSS
// (issue 12; measured with bench/memory/rss.mjs, numbers in bench/README.md).
//
// Why: under any sustained load V8 doubles its two semi-spaces up to 16 MB each (32 MB resident,
// a third of the budget), and lets the old generation grow to up to 4× its live size between full
// GCs on a machine with a large heap limit. With a smaller young generation a request in flight is
// more often alive at a scavenge; page promotion would then move whole pages of in-flight requests
// to the old generation (measured: old space 54–70 MB instead of 24 MB at --max-semi-space-size=8),
// so it is turned off (a live object is copied, a dead one is not promoted) and the old generation
// may grow by half its live size before a full GC.
//
// Node's pool of V8 platform threads (GC helpers, concurrent compilation) is 2 instead of 4: each of
// those threads keeps its own malloc arena, ≈ 1.5 MB resident each under load (measured: other
// anonymous memory 14–15 MB instead of 17 MB). The edge runs JavaScript on one thread; with
// `workers: N` on a large machine, `node --v8-pool-size=4 bin/…` (or NODE_OPTIONS) gives them back.
//
// Where: the semi-space cap is read once, when V8 creates the heap, and the pool size when node
// starts, so both can only be given on the command line: bin/portcullis execs node with
// LAUNCHER_FLAGS (and `run --supervise` starts its child with them). The other two are read at every
// GC and are set here, by the edge itself, at start (also when node runs bin/portcullis without the
// launcher's flags).
import v8 from 'node:v8';

/** Young generation cap, MB per semi-space (V8's default on 64-bit: 16). The launcher's flag. */
export const SEMI_SPACE_MB = 8;
export const SEMI_SPACE_FLAG = `--max-semi-space-size=${SEMI_SPACE_MB}`;

/** Node's V8 platform thread pool (default 4). */
export const POOL_FLAG = '--v8-pool-size=2';
/** What bin/portcullis gives node, in this order (its `exec node …` line; test/edge/v8-memory.test.ts keeps them equal). */
export const LAUNCHER_FLAGS: readonly string[] = [SEMI_SPACE_FLAG, POOL_FLAG];

/** V8 flags the edge sets at start (read by V8 at every GC, so they apply to a running heap). */
export const RUNTIME_V8_FLAGS: readonly string[] = ['--no-page-promotion', '--heap-growing-percent=50'];

/** Applies RUNTIME_V8_FLAGS (once per process; `set` is replaceable for tests). */
export function applyRuntimeV8Flags(set: (flag: string) => void = (f) => v8.setFlagsFromString(f)): void {
  for (const f of RUNTIME_V8_FLAGS) set(f);
}

/** The node arguments a child edge process is started with: the launcher's (each unless already given) and the parent's. */
export function edgeNodeArgs(execArgv: readonly string[]): string[] {
  const name = (f: string): string => f.split('=')[0];
  return [...LAUNCHER_FLAGS.filter((f) => !execArgv.some((a) => name(a) === name(f))), ...execArgv];
}
