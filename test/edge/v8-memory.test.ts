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
import { applyRuntimeV8Flags, edgeNodeArgs, RUNTIME_V8_FLAGS, SEMI_SPACE_FLAG } from '../../edge/main/v8-memory.js';

test('bin/portcullis execs node with the young-generation cap of edge/main/v8-memory.ts', () => {
  const launcher = readFileSync('bin/portcullis', 'utf8');
  assert.match(launcher, /^#!\/bin\/sh\n/);
  assert.ok(launcher.split('\n')[1].includes(`exec node ${SEMI_SPACE_FLAG} "$0" "$@"`), launcher.split('\n')[1]);
});

test('a supervised child gets the cap unless the parent was started with one; the parent\'s node flags follow', () => {
  assert.deepEqual(edgeNodeArgs([]), [SEMI_SPACE_FLAG]);
  assert.deepEqual(edgeNodeArgs(['--cpu-prof']), [SEMI_SPACE_FLAG, '--cpu-prof']);
  assert.deepEqual(edgeNodeArgs([SEMI_SPACE_FLAG, '--cpu-prof']), [SEMI_SPACE_FLAG, '--cpu-prof']);
  assert.deepEqual(edgeNodeArgs(['--max-semi-space-size=16']), ['--max-semi-space-size=16'], 'an operator\'s own value wins');
});

test('the runtime flags are page promotion off and a 50 % old-generation growth step, each handed to V8', () => {
  const set: string[] = [];
  applyRuntimeV8Flags((f) => set.push(f));
  assert.deepEqual(set, ['--no-page-promotion', '--heap-growing-percent=50']);
  assert.deepEqual(set, [...RUNTIME_V8_FLAGS]);
});

test('./bin/portcullis run: the edge process itself runs node with the cap (its /proc cmdline)', { skip: process.platform !== 'linux' }, async (t) => {
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
  assert.ok(argv.includes(SEMI_SPACE_FLAG), argv.join(' '));
  assert.match(argv[0], /node$/);
});
