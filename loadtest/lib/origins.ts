// Starts origin servers as child processes, reads their counters, kills and restarts them.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { adoptProcess, killProcess, stopProcess, type Managed } from './procs.js';
import { originMain } from './paths.js';
import { pin } from './procstat.js';
import type { OriginOptions, OriginStats, OriginChaos } from './origin.js';

export interface OriginHandle {
  name: string;
  port: number;
  options: OriginOptions;
  proc: Managed;
}

type Reply = { type: 'ready'; port: number } | { type: 'error'; message: string } | { type: 'stats'; id: number; stats: OriginStats };

let nextId = 1;

export async function startOrigin(options: OriginOptions, cpuList?: string): Promise<OriginHandle> {
  const child = fork(originMain, [JSON.stringify(options)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const proc = adoptProcess(`origin ${options.name}`, child);
  const [msg] = (await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(() => [{ type: 'error', message: 'origin exited during start-up' }]),
  ])) as [Reply];
  if (msg.type !== 'ready') {
    await stopProcess(proc);
    throw new Error(`origin ${options.name} on port ${options.port}: ${msg.type === 'error' ? msg.message : 'unexpected reply'}`);
  }
  if (cpuList && child.pid) pin(child.pid, cpuList);
  return { name: options.name, port: msg.port, options: { ...options, port: msg.port }, proc };
}

/** Makes an origin misbehave (garbage, body cut short, reset) on a share of its answers; 'none' stops it. */
export function setOriginChaos(h: OriginHandle, mode: OriginChaos, rate = 1): Promise<OriginStats | null> { return ask(h, 'chaos', { mode, rate }); }

function ask(h: OriginHandle, type: 'stats' | 'reset' | 'chaos', extra: Record<string, unknown> = {}): Promise<OriginStats | null> {
  if (h.proc.exited || !h.proc.child.connected) return Promise.resolve(null);
  const id = nextId++;
  return new Promise((resolve) => {
    const onMsg = (m: Reply) => {
      if (m.type === 'stats' && m.id === id) { cleanup(); resolve(m.stats); }
    };
    const onExit = () => { cleanup(); resolve(null); };
    const timer = setTimeout(() => { cleanup(); resolve(null); }, 2000);
    const cleanup = () => { clearTimeout(timer); h.proc.child.off('message', onMsg); h.proc.child.off('exit', onExit); };
    h.proc.child.on('message', onMsg);
    h.proc.child.once('exit', onExit);
    h.proc.child.send({ type, id, ...extra });
  });
}

export const originStats = (h: OriginHandle) => ask(h, 'stats');
export const resetOrigin = (h: OriginHandle) => ask(h, 'reset');

/** SIGKILL: the server vanishes mid-request, like a crashed machine. */
export async function crashOrigin(h: OriginHandle): Promise<void> { await killProcess(h.proc); }

/** Starts the same origin again on the same port (after a crash). */
export async function restartOrigin(h: OriginHandle, cpuList?: string): Promise<void> {
  const fresh = await startOrigin(h.options, cpuList);
  h.proc = fresh.proc;
}

export async function stopOrigins(list: readonly OriginHandle[]): Promise<void> {
  await Promise.all(list.map((h) => stopProcess(h.proc, 1000)));
}
