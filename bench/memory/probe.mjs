// Preloaded into the edge by rss.mjs (node --import): every 250 ms one JSON line to $RSS_PROBE_OUT with
// process.memoryUsage(), V8's heap spaces (MB committed, MB used), GC counts and pause sums (minor =
// scavenges), and process.cpuUsage(). Not part of Portcullis.
import { appendFileSync } from 'node:fs';
import v8 from 'node:v8';
import { PerformanceObserver, constants } from 'node:perf_hooks';

const out = process.env.RSS_PROBE_OUT;
const gc = { minor: 0, minorMs: 0, major: 0, majorMs: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) { gc.minor++; gc.minorMs += e.duration; } else { gc.major++; gc.majorMs += e.duration; }
  }
}).observe({ entryTypes: ['gc'] });
const mb = (n) => Math.round((n / 1048576) * 10) / 10;
const tick = () => {
  const m = process.memoryUsage();
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().filter((s) => s.space_size > 0).map((s) => [s.space_name.replace('_space', ''), [mb(s.space_size), mb(s.space_used_size)]]));
  appendFileSync(out, `${JSON.stringify({ rss: mb(m.rss), heapTotal: mb(m.heapTotal), heapUsed: mb(m.heapUsed), arrayBuffers: mb(m.arrayBuffers), spaces, gc: { ...gc }, cpu: process.cpuUsage() })}\n`);
};
if (out) setInterval(tick, 250).unref();
