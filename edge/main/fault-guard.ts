// The last line of defence: an exception escaping one request's handling, or a promise rejection
// nobody awaited (a Redis reply error surfacing outside the code that expected it …), must not take
// every other shop's traffic down. The process logs it, counts it (portcullis_unhandled_errors_total
// and an `error` event) and keeps running: a dependency fault degrades the edge, it never kills it.
// Any such line in a test's output is a bug (test/harness/process.ts fails the test on it).
import type { EventBus } from '../observe/events/bus.js';
import { errorEvent } from '../observe/events/build.js';

export type UnhandledKind = 'exception' | 'rejection';

/** Counts since the process started (the guard is process-wide). */
export const unhandledCounts: Record<UnhandledKind, number> = { exception: 0, rejection: 0 };

/** The text tests look for in an edge's output. */
export const UNHANDLED_MARK = 'unhandled error (process kept alive)';

const buses = new Set<EventBus>();
let installed = false;

function describe(err: unknown): string {
  const e = err as { stack?: unknown; message?: unknown } | null;
  return String(e?.stack ?? e?.message ?? err);
}

function onUnhandled(kind: UnhandledKind, err: unknown): void {
  unhandledCounts[kind]++;
  const text = describe(err);
  process.stderr.write(`${JSON.stringify({ level: 50, time: new Date().toISOString(), msg: UNHANDLED_MARK, kind, err: text })}\n`);
  const first = text.split('\n')[0].slice(0, 300);
  for (const bus of buses) {
    try { bus.emit(errorEvent(`unhandled ${kind} (process kept alive): ${first}`)); } catch { /* never throw from here */ }
  }
}

/**
 * Installs the process-wide handlers once; each call adds a bus that gets an `error` event per
 * unhandled error. Returns a function that removes that bus again.
 */
export function installFaultGuard(bus?: EventBus): () => void {
  if (!installed) {
    installed = true;
    process.on('uncaughtException', (err) => onUnhandled('exception', err));
    process.on('unhandledRejection', (err) => onUnhandled('rejection', err));
  }
  if (bus !== undefined) buses.add(bus);
  return () => { if (bus !== undefined) buses.delete(bus); };
}
