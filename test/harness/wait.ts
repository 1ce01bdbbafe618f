// One way to wait in tests. waitFor() polls a condition and, when it does not come true in time,
// throws an error that names what it waited for (never a silent give-up, never a false or -1 to check).
// sleep() is for a deliberate pause only: real time that must pass (a rate window, a timer under test),
// never to let something "probably" happen — await an event or waitFor() that instead.
import { setTimeout as sleepFor } from 'node:timers/promises';

/** Resolves after `ms` of real time. */
export function sleep(ms: number): Promise<void> {
  return sleepFor(ms);
}

/**
 * Polls `fn` every `everyMs` until it returns a truthy value, and returns that value. After
 * `timeoutMs` it throws "timed out after N ms waiting for <what>".
 */
export async function waitFor<T>(what: string, fn: () => T | null | undefined | false | Promise<T | null | undefined | false>, timeoutMs = 10_000, everyMs = 20): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleepFor(everyMs);
  }
}
