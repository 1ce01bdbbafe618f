// Why: `portcullis run` that cannot start (a rule file with an error, a port in use) must say why in
// one clear message — file:line for the rule, the address for the port — and exit 1, not print a
// JavaScript stack trace the operator has to read through.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { freePort } from '../harness/ports.js';

const TOKEN = 'test-admin-token-0123456789';

function configIn(dir: string, port: number, adminPort: number): string {
  const file = join(dir, 'edge.yaml');
  writeFileSync(file, [
    `listen: [{ address: "127.0.0.1:${port}" }]`,
    `admin: { address: "127.0.0.1:${adminPort}", token: "${TOKEN}", state_file: "${join(dir, 'state.json')}" }`,
    'access_log: { path: "off" }',
    'events: { log: "off" }',
    'backends: { shop: { servers: [{ name: a, url: "http://127.0.0.1:9" }] } }',
    'rules: { files: [edge.rules] }',
  ].join('\n') + '\n');
  return file;
}

const stackLines = (s: string): string[] => s.split('\n').filter((l) => /^\s+at /.test(l));

test('portcullis run with a rule file that has an error: exit 1, the error with file:line, no stack trace', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-run-err-'));
  writeFileSync(join(dir, 'edge.rules'), 'version 1\nrule "x" {\n  when http.pathh == "/x"\n  then deny(403)\n}\n');
  const file = configIn(dir, await freePort(), await freePort());
  const r = spawnSync('./bin/portcullis', ['run', '--config', file], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 1, r.stderr);
  assert.ok(r.stderr.includes(`${join(dir, 'edge.rules')}:3:8`) && r.stderr.includes('http.pathh'), r.stderr);
  assert.deepEqual(stackLines(r.stderr), [], r.stderr);
});

test('portcullis run on a port that is taken: exit 1, "cannot listen on" the address, no stack trace', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-run-port-'));
  writeFileSync(join(dir, 'edge.rules'), 'version 1\n');
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
  t.after(() => new Promise<void>((r) => taken.close(() => r())));
  const port = (taken.address() as { port: number }).port;
  const file = configIn(dir, port, await freePort());
  const r = spawnSync('./bin/portcullis', ['run', '--config', file], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}`));
  assert.deepEqual(stackLines(r.stderr), [], r.stderr);
});
