// Runs `bin/portcullis run` as a child process (for memory, signals and multi-node tests).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './edge.js';
import { UNHANDLED_MARK } from '../../edge/main/fault-guard.js';

export interface EdgeProcess {
  child: ChildProcess;
  port: number;
  url: string;
  adminPort: number;
  configFile: string;
  output(): string;
  rssKb(): number;
  peakRssKb(): number;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export const ADMIN_TOKEN = 'test-admin-token-0123456789';

/** `yaml` may use {{PORT}} and {{ADMIN_PORT}}; the process is ready when it prints "listening". */
export async function spawnEdge(yaml: string, env: NodeJS.ProcessEnv = {}): Promise<EdgeProcess> {
  const port = await freePort();
  // freePort closes its probe socket, so two calls can return the same port: the admin API would
  // then fail to bind and the edge exit at start-up.
  let adminPort = await freePort();
  while (adminPort === port) adminPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'pc-edge-'));
  const configFile = join(dir, 'edge.yaml');
  writeFileSync(configFile, yaml.replaceAll('{{PORT}}', String(port)).replaceAll('{{ADMIN_PORT}}', String(adminPort)));
  const child = spawn(process.execPath, ['bin/portcullis', 'run', '--config', configFile], {
    env: { ...process.env, PORTCULLIS_ADMIN_TOKEN: ADMIN_TOKEN, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`edge did not start in 15 s:\n${out}`)), 15_000);
    const check = () => {
      if (out.includes('portcullis: listening on')) { clearTimeout(timer); resolve(); return; }
      if (child.exitCode !== null) { clearTimeout(timer); reject(new Error(`edge exited ${child.exitCode}:\n${out}`)); return; }
      setTimeout(check, 50);
    };
    check();
  });
  const status = (key: string): number => {
    try {
      const m = new RegExp(`${key}:\\s+(\\d+)`).exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      return m ? Number(m[1]) : 0;
    } catch { return 0; }
  };
  return {
    child, port, adminPort, configFile, url: `http://127.0.0.1:${port}`,
    output: () => out,
    rssKb: () => status('VmRSS'),
    peakRssKb: () => status('VmHWM'),
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(t);
      // The process guard kept the edge alive through an unhandled error: still a bug, fail the test.
      if (out.includes(UNHANDLED_MARK)) throw new Error(`the edge logged an unhandled error:\n${out.split('\n').filter((l) => l.includes(UNHANDLED_MARK)).join('\n')}`);
      return code;
    },
  };
}
