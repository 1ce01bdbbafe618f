// Benchmark for rule lists and safe regex (not a timed test).
//   npx tsc -p tsconfig.json && node dist/bench/lists.js [count]
// Generates `count` (default 1,000,000) random IPv4 CIDRs into a temp file, loads them with
// loadList() and reports load time and median lookup time (targets: <= 2 s, <= 1 µs).
// Also times the Cloudflare 2019 regex on 100 KB through rules/safe-regex (target: well under 50 ms).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadList, loadMap, parseIp } from '../rules/lists.js';
import { compileSafeRegex } from '../rules/safe-regex.js';

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
}

/** Realistic-ish prefix mix: mostly /24 and /32 with some shorter blocks. */
function randomPrefix(r: () => number): number {
  const k = r() % 100;
  if (k < 45) return 32;
  if (k < 80) return 24;
  if (k < 90) return 16 + (r() % 8);
  if (r() % 1000 < 997) return 25 + (r() % 7);
  return 12 + (r() % 4);
}

function cidrText(ip: number, prefix: number): string {
  const masked = prefix === 0 ? 0 : (ip & (0xffffffff << (32 - prefix))) >>> 0;
  return `${masked >>> 24}.${(masked >>> 16) & 255}.${(masked >>> 8) & 255}.${masked & 255}/${prefix}`;
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

const count = Number(process.argv[2] ?? 1_000_000);
const dir = mkdtempSync(join(tmpdir(), 'portcullis-lists-bench-'));
try {
  const r = rng(12345);
  const lines: string[] = ['# generated blocklist'];
  for (let i = 0; i < count; i++) lines.push(cidrText(r(), randomPrefix(r)));
  writeFileSync(join(dir, 'block.txt'), lines.join('\n') + '\n');
  // Map keys must be unique (a duplicate key is a load error), so skip repeats.
  const mapLines: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; mapLines.length < count; i++) {
    const key = cidrText(r(), randomPrefix(r));
    if (seen.has(key)) continue;
    seen.add(key);
    mapLines.push(`${key} v${i}`);
  }
  seen.clear();
  writeFileSync(join(dir, 'map.txt'), mapLines.join('\n') + '\n');

  // Wall time plus CPU time of this process: on a shared, oversubscribed machine the wall time
  // includes waiting for a core, the CPU time does not.
  const cpuMs = (c: NodeJS.CpuUsage): number => (c.user + c.system) / 1000;
  const loadTimes: number[] = [];
  const loadCpu: number[] = [];
  let list = null;
  for (let run = 0; run < 3; run++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const res = loadList('block.txt', 'ip', { configDir: dir });
    if (!res.ok) throw new Error(JSON.stringify(res.diagnostics.slice(0, 3)));
    res.list.hasIpBytes!(Uint8Array.of(1, 2, 3, 4)); // the table is built on first lookup; include it
    loadTimes.push(Number(process.hrtime.bigint() - t0) / 1e6);
    loadCpu.push(cpuMs(process.cpuUsage(c0)));
    list = res.list;
  }
  console.log(`list: ${count} CIDRs (${list!.size} distinct) load+build: runs ${loadTimes.map((x) => x.toFixed(0)).join(", ")} ms, median ${median(loadTimes).toFixed(0)} ms; CPU median ${median(loadCpu).toFixed(0)} ms (target <= 2000 ms)`);

  const c1 = process.cpuUsage();
  const t1 = process.hrtime.bigint();
  const mres = loadMap('map.txt', 'ip', { configDir: dir });
  if (!mres.ok) throw new Error(JSON.stringify(mres.diagnostics.slice(0, 3)));
  mres.map.get('1.2.3.4');
  console.log(`map:  ${count} CIDR->value load+build: ${(Number(process.hrtime.bigint() - t1) / 1e6).toFixed(0)} ms wall, ${cpuMs(process.cpuUsage(c1)).toFixed(0)} ms CPU`);

  // Lookup: batches of 1000 random pre-parsed addresses; median per-lookup time over batches.
  const probes: Uint8Array[] = [];
  for (let i = 0; i < 1000; i++) { const v = r(); probes.push(Uint8Array.of(v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255)); }
  const perLookup: number[] = [];
  let hits = 0;
  for (let batch = 0; batch < 2000; batch++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < probes.length; i++) if (list!.hasIpBytes!(probes[i]!)) hits++;
    perLookup.push(Number(process.hrtime.bigint() - t) / probes.length);
  }
  console.log(`list lookup (parsed bytes): median ${median(perLookup).toFixed(0)} ns per lookup (target <= 1000 ns), hit rate ${(hits / (2000 * probes.length) * 100).toFixed(1)}%`);

  const texts = probes.map((b) => `${b[0]}.${b[1]}.${b[2]}.${b[3]}`);
  const perText: number[] = [];
  for (let batch = 0; batch < 500; batch++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < texts.length; i++) if (list!.has(texts[i]!)) hits++;
    perText.push(Number(process.hrtime.bigint() - t) / texts.length);
  }
  console.log(`list lookup (from text, incl. parseIp): median ${median(perText).toFixed(0)} ns per lookup`);
  const perMap: number[] = [];
  for (let batch = 0; batch < 500; batch++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < probes.length; i++) if (mres.map.getIpBytes!(probes[i]!) !== undefined) hits++;
    perMap.push(Number(process.hrtime.bigint() - t) / probes.length);
  }
  console.log(`map lookup (parsed bytes, longest prefix): median ${median(perMap).toFixed(0)} ns per lookup`);
  void parseIp;
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// Safe regex: the Cloudflare 2019 pattern on 100 KB without '=' (worst case for backtracking).
const CF2019 = String.raw`(?:(?:\"|'|\]|\}|\\|\d|(?:nan|infinity|true|false|null|undefined|symbol|math)|\`|\-|\+)+[)]*;?((?:\s|-|~|!|{}|\|\||\+)*.*(?:.*=.*)))`;
const input = '"' + 'x'.repeat(100 * 1024);
const full = compileSafeRegex(CF2019, { maxInputLength: 1 << 20 });
if (!full.ok) throw new Error(full.error);
const times: number[] = [];
for (let i = 0; i < 20; i++) {
  const fresh = compileSafeRegex(CF2019, { maxInputLength: 1 << 20 });
  if (!fresh.ok) throw new Error(fresh.error);
  const t = process.hrtime.bigint();
  fresh.re.test(input);
  times.push(Number(process.hrtime.bigint() - t) / 1e6);
}
console.log(`safe regex: CF 2019 pattern on ${input.length} chars (whole input, fresh DFA each run): first ${times[0]!.toFixed(2)} ms, median ${median(times).toFixed(2)} ms, max ${Math.max(...times).toFixed(2)} ms (target well under 50 ms)`);
const capped = compileSafeRegex(CF2019);
if (!capped.ok) throw new Error(capped.error);
const t2 = process.hrtime.bigint();
capped.re.test(input);
console.log(`safe regex: same with the default 64 KiB input cap: ${(Number(process.hrtime.bigint() - t2) / 1e6).toFixed(2)} ms`);
