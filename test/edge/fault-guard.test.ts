// The process guard: an unhandled rejection or exception is logged, counted (metric + `error` event)
// and the process keeps serving. Run in a child process: this test runner treats one as a failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const guardModule = fileURLToPath(new URL('../../edge/main/fault-guard.js', import.meta.url));
const eventsModule = fileURLToPath(new URL('../../edge/observe/events/bus.js', import.meta.url));
const metricsModule = fileURLToPath(new URL('../../edge/observe/metrics.js', import.meta.url));

test('an unhandled rejection and an uncaught exception are logged, counted and reported; the process lives on', () => {
  const script = `
    const { installFaultGuard, unhandledCounts } = await import(${JSON.stringify(guardModule)});
    const { EventBus } = await import(${JSON.stringify(eventsModule)});
    const { Metrics } = await import(${JSON.stringify(metricsModule)});
    const bus = new EventBus({ node: 'n1' });
    const events = [];
    bus.subscribe((e) => events.push(e));
    installFaultGuard(bus);
    Promise.reject(new Error('NOAUTH HELLO must be called with the client already authenticated'));
    setTimeout(() => { throw new Error('boom from a timer'); }, 10);
    setTimeout(async () => {
      const text = await new Metrics().text();
      console.log(JSON.stringify({ counts: unhandledCounts, events: events.map((e) => [e.type, e.reason]), metric: text.split('\\n').filter((l) => l.startsWith('portcullis_unhandled_errors_total')) }));
    }, 100);
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() as string) as { counts: Record<string, number>; events: [string, string][]; metric: string[] };
  assert.deepEqual(out.counts, { exception: 1, rejection: 1 });
  assert.ok(out.events.some(([type, reason]) => type === 'error' && /^unhandled rejection \(process kept alive\): Error: NOAUTH/.test(reason)), JSON.stringify(out.events));
  assert.ok(out.events.some(([type, reason]) => type === 'error' && /^unhandled exception .*boom from a timer/.test(reason)), JSON.stringify(out.events));
  assert.deepEqual(out.metric.sort(), ['portcullis_unhandled_errors_total{kind="exception"} 1', 'portcullis_unhandled_errors_total{kind="rejection"} 1']);
  // The log line the test harness looks for (test/harness/process.ts fails a test on it).
  assert.equal(r.stderr.split('\n').filter((l) => l.includes('unhandled error (process kept alive)')).length, 2, r.stderr);
});
