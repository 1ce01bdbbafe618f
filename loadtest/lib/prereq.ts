// Prerequisite checks: every external tool the harness starts, with the command that installs it.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';

export interface Tool { name: string; install: string }

export const TOOLS: Record<string, Tool> = {
  wrk: { name: 'wrk', install: 'apt-get install -y wrk' },
  haproxy: { name: 'haproxy', install: 'apt-get install -y haproxy' },
  nginx: { name: 'nginx', install: 'apt-get install -y nginx-light' },
  taskset: { name: 'taskset', install: 'apt-get install -y util-linux' },
  'redis-server': { name: 'redis-server', install: 'apt-get install -y redis-server' },
  openssl: { name: 'openssl', install: 'apt-get install -y openssl' },
};

/** Absolute path of an executable on PATH (plus sbin dirs, where Debian puts haproxy/nginx), or null. */
export function which(name: string): string | null {
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin', '/usr/local/sbin']);
  for (const dir of dirs) {
    if (!dir) continue;
    const p = `${dir}/${name}`;
    try { accessSync(p, constants.X_OK); return p; } catch { /* try next */ }
  }
  return null;
}

export interface PrereqResult { ok: boolean; missing: string[]; message: string }

/** Checks the named tools; the message says exactly what to install. */
export function checkTools(names: readonly string[]): PrereqResult {
  const missing = names.filter((n) => which(n) === null);
  if (missing.length === 0) return { ok: true, missing, message: '' };
  const debs = missing.map((n) => TOOLS[n]?.install.replace('apt-get install -y ', '') ?? n);
  const message = `missing prerequisite(s): ${missing.join(', ')}\n` +
    `install them with:  apt-get install -y ${debs.join(' ')}\n` +
    `(the full set for every scenario: apt-get install -y haproxy nginx-light wrk redis-server)`;
  return { ok: false, missing, message };
}

/** Checks that bin/portcullis exists and is executable; message says how to get it. */
export function checkPortcullis(bin: string): PrereqResult {
  try { accessSync(bin, constants.X_OK); } catch {
    return { ok: false, missing: ['portcullis'], message: `${bin} is missing or not executable: run \`npm ci\` (or \`npm run build\`) in the repository first` };
  }
  return { ok: true, missing: [], message: '' };
}

/** First line of a command's version output (stdout or stderr), or "unavailable". */
export function versionOf(cmd: string, args: readonly string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5000 });
  const text = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  return r.error || !text ? 'unavailable' : text.split('\n')[0].trim();
}
