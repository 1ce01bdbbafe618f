#!/usr/bin/env node
// `node dist/loadtest/profile-top.js FILE.cpuprofile [--top 25] [--from US --to US]`: the top
// self-time entries of a V8 CPU profile (e.g. one `npm run bench -- --profile` kept, or any
// `node --cpu-prof` output). --from/--to limit it to a window on the monotonic clock (µs).
import { formatProfile, readProfile, summarizeProfile } from './lib/cpuprofile.js';

function main(argv: string[]): number {
  const files: string[] = [];
  let top = 25;
  let from: number | null = null;
  let to: number | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--top') top = Number(argv[++i]);
    else if (a === '--from') from = Number(argv[++i]);
    else if (a === '--to') to = Number(argv[++i]);
    else if (a.startsWith('-')) { console.error(`unknown option ${a}`); return 2; } else files.push(a);
  }
  if (files.length === 0 || !Number.isInteger(top) || top < 1) {
    console.error('usage: node dist/loadtest/profile-top.js FILE.cpuprofile [--top 25] [--from US --to US]');
    return 2;
  }
  for (const f of files) {
    const p = readProfile(f);
    const windows = from !== null || to !== null ? [[from ?? p.startTime, to ?? p.endTime] as const] : undefined;
    const s = summarizeProfile(p, { windows, top });
    console.log(`${f}: ${s.samples} samples, ${s.totalMs} ms sampled; self time:`);
    for (const line of formatProfile(s)) console.log(line);
  }
  return 0;
}

process.exitCode = main(process.argv.slice(2));
