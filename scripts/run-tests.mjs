#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with node's built-in runner.
// Node 20's `node --test` takes explicit files, not globs, so we collect them here.
// A filter argument keeps only files whose path contains it: `npm test -- stick`.
// --fast leaves out the files tagged `// @slow` in their first line (real processes, real time,
// external tools), --slow runs only those: `npm test -- --fast`.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function collect(dir) {
  let out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(collect(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}
const args = process.argv.slice(2);
const speed = args.includes('--fast') ? 'fast' : args.includes('--slow') ? 'slow' : 'all';
const filters = args.filter((a) => a !== '--fast' && a !== '--slow');
const isSlow = (f) => readFileSync(f, 'utf8').slice(0, 200).startsWith('// @slow');
const files = collect('dist/test')
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .filter((f) => speed === 'all' || (speed === 'slow') === isSlow(f))
  .sort();
if (files.length === 0) { console.error('no test files found'); process.exit(1); }
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--test-reporter=spec', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
