// Why: the edge sizes V8's heap itself (edge/main/v8-memory.ts) so that 1,000 connections fit in
// 100 MB of RSS: the young-generation cap only works from node's command line, so bin/portcullis
// must exec node with it, `run --supervise` must start its child with it, and the flags V8 reads at
// every GC are set by `portcullis run` at start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { freePort } from '../harness/ports.js';
import { launcherFlags } from '../../loadtest/lib/proxies.js';
import { applyRuntimeV8Flags, edgeNodeArgs, LAUNCHER_FLAGS, POOL_FLAG, RUNTIME_V8_FLAGS, SEMI_SPACE_FLAG } from '../../edge/main/v8-memory.js';

test('bin/portcullis execs node with the launcher flags of edge/main/v8-memory.ts', () => {
  const launcher = readFileSync('bin/portcullis', 'utf8');
  assert.match(launcher, /^#!\/bin\/sh\n/);
  assert.deepEqual(LAUNCHER_FLAGS, [SEMI_SPACE_FLAG, POOL_FLAG]);
  assert.ok(launcher.split('\n')[1].includes(`exec node ${LAUNCHER_FLAGS.join(' ')} "$0" "$@"`), launcher.split('\n')[1]);
});

test('the load-test harness and bench/memory/rss.mjs read the same flags off the launcher (runs with extra node flags keep them)', () => {
  assert.deepEqual(launcherFlags(readFileSync('bin/portcullis', 'utf8')), [...LAUNCHER_FLAGS]);
  assert.deepEqual(launcherFlags('#!/usr/bin/env node\nconst entry = 1;\n'), [], 'a build without a launcher line: none');
});

test('a supervised child gets the launcher flags unless the parent was started with one; the parent\'s node flags follow', () => {
  assert.deepEqual(edgeNodeArgs([]), [SEMI_SPACE_FLAG, POOL_FLAG]);
  assert.deepEqual(edgeNodeArgs(['--cpu-prof']), [SEMI_SPACE_FLAG, POOL_FLAG, '--cpu-prof']);
  assert.deepEqual(edgeNodeArgs([SEMI_SPACE_FLAG, POOL_FLAG, '--cpu-prof']), [SEMI_SPACE_FLAG, POOL_FLAG, '--cpu-prof']);
  assert.deepEqual(edgeNodeArgs(['--max-semi-space-size=16', '--v8-pool-size=4']), ['--max-semi-space-size=16', '--v8-pool-size=4'], 'an operator\'s own values win');
});

test('the runtime flags are page promotion off and a 50 % old-generation growth step, each handed to V8', () => {
  const set: string[] = [];
  applyRuntimeV8Flags((f) => set.push(f));
  assert.deepEqual(set, ['--no-page-promotion', '--heap-growing-percent=50']);
  assert.deepEqual(set, [...RUNTIME_V8_FLAGS]);
});

test('./bin/portcullis run: the edge process itself runs node with the launcher flags (its /proc cmdline)', { skip: process.platform !== 'linux' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-v8mem-'));
  const file = join(dir, 'edge.yaml');
  writeFileSync(file, [
    `listen: [{ address: "127.0.0.1:${await freePort()}" }]`,
    'access_log: { path: "off" }',
    'events: { log: "off" }',
    'history: { enabled: false }',
    'backends: { shop: { servers: [{ name: a, url: "http://127.0.0.1:9" }] } }',
  ].join('\n') + '\n');
  const child = spawn('./bin/portcullis', ['run', '--config', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.after(() => { child.kill('SIGKILL'); });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); if (err.includes('listening on')) resolve(); });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${err}`)));
  });
  // exec: the pid sh had is node's now.
  const argv = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
  for (const f of LAUNCHER_FLAGS) assert.ok(argv.includes(f), argv.join(' '));
  assert.match(argv[0], /node$/);
});
