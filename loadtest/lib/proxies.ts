// Starts Portcullis, HAProxy or nginx with a generated config, waits until it serves, and reports
// its CPU time and memory (summed over its process tree).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { randomBytes } from 'node:crypto';
import { startProcess, stopProcess, killProcess, type Managed } from './procs.js';
import { treeUsage, type TreeUsage } from './procstat.js';
import { spawnSync } from 'node:child_process';
import { portcullisConfig, haproxyConfig, nginxConfig, priorityRules, schemaKeys, unsupportedKeys, ADMIN_TOKEN_ENV, type PortcullisKeys } from './config-gen.js';
import { portcullisBin } from './paths.js';
import { sleep } from './util.js';
import type { ProxyKind, ProxySpec } from './proxy-spec.js';

export interface RunningProxy {
  kind: ProxyKind;
  /** Label used in tables ("portcullis", "portcullis-node2", "haproxy" …). */
  label: string;
  spec: ProxySpec;
  proc: Managed;
  pid: number;
  url: string;
  configFile: string;
  adminToken: string;
  /** Keys the scenario wanted but this Portcullis build does not know (left out of its config). */
  unsupported: string[];
}

/** Status of a GET (or -1 on connection failure / timeout). https:// accepts the run's self-signed certificate. */
export function httpStatus(url: string, headers: Record<string, string> = {}, timeoutMs = 1000): Promise<number> {
  return new Promise((resolve) => {
    const send = url.startsWith('https:') ? httpsRequest : request;
    const req = send(url, { method: 'GET', headers, agent: false, timeout: timeoutMs, rejectUnauthorized: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? -1));
      res.on('error', () => resolve(-1));
    });
    req.on('timeout', () => { req.destroy(); resolve(-1); });
    req.on('error', () => resolve(-1));
    req.end();
  });
}

let cachedKeys: PortcullisKeys | undefined;
/** Keys the installed Portcullis build accepts (from `portcullis schema`). */
export function portcullisKeys(): PortcullisKeys {
  if (cachedKeys !== undefined) return cachedKeys;
  let problem = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = spawnSync(portcullisBin, ['schema'], { encoding: 'utf8', timeout: 30_000 });
    try {
      if (r.status === 0) { cachedKeys = schemaKeys(JSON.parse(r.stdout)); return cachedKeys; }
      problem = `exit ${r.status}: ${(r.stderr || r.stdout || '').slice(0, 500)}`;
    } catch (e) { problem = `unreadable output: ${(e as Error).message}`; }
    spawnSync('sleep', ['1']); // e.g. dist/ being rebuilt right now
  }
  throw new Error(`\`${portcullisBin} schema\` failed (${problem}); the harness needs it to know which config keys this build accepts`);
}

export function writeProxyConfig(kind: ProxyKind, spec: ProxySpec, label: string): { file: string; spec: ProxySpec } {
  mkdirSync(spec.dir, { recursive: true });
  const runAsRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (kind === 'portcullis' && spec.priorityPathPrefix) {
    const rules = join(spec.dir, 'priority.rules');
    writeFileSync(rules, priorityRules(spec.priorityPathPrefix));
    spec = { ...spec, rulesFiles: [...spec.rulesFiles, rules] };
  }
  const [name, text] = kind === 'portcullis' ? [`${label}.yaml`, portcullisConfig(spec, portcullisKeys())]
    : kind === 'haproxy' ? [`${label}.cfg`, haproxyConfig(spec)]
      : [`${label}.conf`, nginxConfig(spec, runAsRoot)];
  if (kind === 'nginx') for (const sub of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(spec.dir, sub), { recursive: true });
  const file = join(spec.dir, name);
  writeFileSync(file, text);
  return { file, spec };
}

/**
 * The node flags bin/portcullis starts the edge with (its `exec node … "$0"` line: V8 heap sizing,
 * edge/main/v8-memory.ts), so that a run with extra node flags measures the same edge.
 */
export function launcherFlags(launcherText: string): string[] {
  const m = /^[^\n]*exec node ((?:--\S+ )*)"\$0"/m.exec(launcherText);
  return m === null ? [] : m[1].trim().split(/\s+/).filter(Boolean);
}

function commandFor(kind: ProxyKind, file: string, dir: string, nodeFlags: readonly string[]): [string, string[]] {
  // Node flags (e.g. --cpu-prof) need node itself in front of the bin script, after the launcher's own.
  if (kind === 'portcullis') return nodeFlags.length ? [process.execPath, [...launcherFlags(readFileSync(portcullisBin, 'utf8')), ...nodeFlags, portcullisBin, 'run', '--config', file]] : [portcullisBin, ['run', '--config', file]];
  if (kind === 'haproxy') return ['haproxy', ['-db', '-f', file]];
  return ['nginx', ['-p', dir, '-c', file]];
}

/**
 * Starts one proxy; `cpu` pins it (and every thread/child) with taskset. `nodeFlags` (Portcullis
 * only) go to node before the bin script, e.g. `--cpu-prof --cpu-prof-dir DIR`.
 */
export async function startProxy(kind: ProxyKind, spec: ProxySpec, opts: { cpu?: string; label?: string; readyTimeoutMs?: number; nodeFlags?: readonly string[] } = {}): Promise<RunningProxy> {
  const label = opts.label ?? kind;
  const written = writeProxyConfig(kind, spec, label);
  const file = written.file;
  const [cmd, args] = commandFor(kind, file, spec.dir, kind === 'portcullis' ? opts.nodeFlags ?? [] : []);
  const adminToken = randomBytes(16).toString('hex');
  const env = { ...process.env, [ADMIN_TOKEN_ENV]: adminToken };
  const full: [string, string[]] = opts.cpu ? ['taskset', ['-c', opts.cpu, cmd, ...args]] : [cmd, args];
  const proc = startProcess(label, full[0], full[1], { env, cwd: spec.dir });
  const url = `${spec.tls ? 'https' : 'http'}://127.0.0.1:${spec.listenPort}`;
  const readyUrl = kind === 'portcullis' ? `http://127.0.0.1:${spec.adminPort}/healthz` : `${url}/health`;
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 15_000);
  for (;;) {
    if (proc.exited) throw new Error(`${label} exited during start-up (config ${file}):\n${proc.tail.join('\n')}`);
    if (await httpStatus(readyUrl, {}, 500) === 200) break;
    // Until the admin API answers, a request proxied through to the origin's /health proves it serves.
    if (kind === 'portcullis' && await httpStatus(`${url}/health`, {}, 500) === 200) break;
    if (Date.now() > deadline) {
      await stopProcess(proc);
      throw new Error(`${label} did not answer 200 on ${readyUrl} within ${(opts.readyTimeoutMs ?? 15_000) / 1000}s (config ${file}):\n${proc.tail.join('\n')}`);
    }
    await sleep(100);
  }
  const unsupported = kind === 'portcullis' ? unsupportedKeys(written.spec, portcullisKeys()) : [];
  return { kind, label, spec, proc, pid: proc.child.pid as number, url, configFile: file, adminToken, unsupported };
}

export function proxyUsage(p: RunningProxy): TreeUsage { return treeUsage(p.pid); }

export async function stopProxy(p: RunningProxy): Promise<void> { await stopProcess(p.proc, 5000); }
export async function crashProxy(p: RunningProxy): Promise<void> { await killProcess(p.proc); }
