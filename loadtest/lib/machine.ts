// Records the machine and tool versions with every result, so numbers are never quoted without context.
import { readFileSync } from 'node:fs';
import { cpus, totalmem, release } from 'node:os';
import { execSync } from 'node:child_process';
import { versionOf, which } from './prereq.js';

export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  memoryMB: number;
  kernel: string;
  gitCommit: string;
  versions: Record<string, string>;
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1].trim();
  } catch { /* fall through */ }
  return cpus()[0]?.model ?? 'unknown';
}

function gitCommit(root: string): string {
  try { return execSync('git rev-parse --short HEAD', { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { return 'unknown'; }
}

export function machineInfo(root: string): MachineInfo {
  const versions: Record<string, string> = { node: process.version };
  if (which('haproxy')) versions.haproxy = versionOf('haproxy', ['-v']);
  if (which('nginx')) versions.nginx = versionOf('nginx', ['-v']);
  // wrk has no --version flag; `wrk -v` prints its version line (and usage) and exits non-zero.
  if (which('wrk')) versions.wrk = versionOf('wrk', ['-v']);
  if (which('redis-server')) versions.redis = versionOf('redis-server', ['--version']);
  return { nproc: cpus().length, cpuModel: cpuModel(), memoryMB: Math.round(totalmem() / 1048576), kernel: release(), gitCommit: gitCommit(root), versions };
}
