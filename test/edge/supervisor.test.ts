// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// Why: an edge process can die in ways no JavaScript handler can catch (a native abort in uWS, a
// worker thread torn down, an OOM kill). `portcullis run --supervise` starts a new one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep, waitFor } from '../harness/wait.js';
import { startOrigin } from '../harness/origin.js';
import { CLIENT_LIMITS_OFF, edgeYaml, freePort } from '../harness/edge.js';
import { httpClient } from '../harness/client.js';

test('run --supervise: a killed edge (workers: 2) is restarted and serves again; SIGTERM stops both', async (t) => {
  const o = await startOrigin('web1');
  t.after(() => o.close());
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'pc-sup-'));
  const file = join(dir, 'edge.yaml');
  // spawnEdge cannot start `--supervise`: the config file is written here, with the port filled in.
  const yaml = edgeYaml({ eventLog: 'off', limits: CLIENT_LIMITS_OFF, servers: [{ name: 'web1', url: o.url }], more: 'workers: 2' });
  writeFileSync(file, yaml.replaceAll('{{PORT}}', String(port)));
  const sup = spawn(process.execPath, ['bin/portcullis', 'run', '--supervise', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  sup.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  sup.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((r) => sup.once('exit', (c) => r(c)));
  t.after(() => { if (sup.exitCode === null) sup.kill('SIGKILL'); });
  const pids = (): number[] => [...out.matchAll(/listening on .*\[pid (\d+)\]/g)].map((m) => Number(m[1]));
  await waitFor('the supervisor to start the edge', () => pids().length >= 1, 15_000, 50);
  const c = httpClient({ connections: 1 });
  assert.equal((await c.get(`http://127.0.0.1:${port}/before`)).status, 200);
  const first = pids()[0];
  process.kill(first, 'SIGKILL'); // as a native abort would
  await waitFor('the supervisor to start a new edge', () => pids().length >= 2, 15_000, 50);
  assert.equal(pids().length, 2, out);
  assert.notEqual(pids()[1], first);
  assert.match(out, /the edge exited \(SIGKILL\); restarting/);
  await c.close();
  const c2 = httpClient({ connections: 1 });
  assert.equal((await c2.get(`http://127.0.0.1:${port}/after`)).status, 200);
  await c2.close();
  sup.kill('SIGTERM');
  assert.equal(await exited, 0);
  assert.ok(o.seen.some((r) => r.url === '/after'));
});
