// How the edge process sizes V8's heap: the young generation is capped and the old generation grows
// in smaller steps than V8's defaults, so that 1,000 client connections fit in ≤ 100 MB of RSS
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
// Where: the semi-space cap is read once, when V8 creates the heap, so it can only be given on the
// command line: bin/portcullis execs node with SEMI_SPACE_FLAG (and `run --supervise` starts its
// child with it). The other two are read at every GC and are set here, by the edge itself, at start
// (also when node runs bin/portcullis without the launcher's flag).
import v8 from 'node:v8';

/** Young generation cap, MB per semi-space (V8's default on 64-bit: 16). The launcher's flag. */
export const SEMI_SPACE_MB = 8;
export const SEMI_SPACE_FLAG = `--max-semi-space-size=${SEMI_SPACE_MB}`;

/** V8 flags the edge sets at start (read by V8 at every GC, so they apply to a running heap). */
export const RUNTIME_V8_FLAGS: readonly string[] = ['--no-page-promotion', '--heap-growing-percent=50'];

/** Applies RUNTIME_V8_FLAGS (once per process; `set` is replaceable for tests). */
export function applyRuntimeV8Flags(set: (flag: string) => void = (f) => v8.setFlagsFromString(f)): void {
  for (const f of RUNTIME_V8_FLAGS) set(f);
}

/** The node arguments a child edge process is started with: ours (unless already given) and the parent's. */
export function edgeNodeArgs(execArgv: readonly string[]): string[] {
  return execArgv.some((a) => a.startsWith('--max-semi-space-size')) ? [...execArgv] : [SEMI_SPACE_FLAG, ...execArgv];
}
