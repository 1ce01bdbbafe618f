// Every process the harness starts is registered here and stopped on the way out — on success, on
// error and on Ctrl-C — so a run never leaves a proxy or an origin behind.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';

export interface Managed {
  name: string;
  child: ChildProcess;
  /** Last lines of stderr/stdout, for error messages. */
  tail: string[];
  exited: boolean;
}

const running = new Set<Managed>();
let hooksInstalled = false;

function killSync(m: Managed, signal: NodeJS.Signals): void {
  if (m.exited || m.child.pid === undefined) return;
  try { m.child.kill(signal); } catch { /* already gone */ }
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  // 'exit' handlers must be synchronous: send SIGKILL to whatever is still alive.
  process.on('exit', () => { for (const m of running) killSync(m, 'SIGKILL'); });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\n${sig}: stopping ${running.size} process(es) the harness started\n`);
      void stopAll().finally(() => process.exit(130));
    });
  }
}

/** Spawns a process and registers it for clean-up. Output is kept (last 40 lines) for diagnostics. */
export function startProcess(name: string, cmd: string, args: readonly string[], opts: SpawnOptions = {}): Managed {
  installHooks();
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  const m: Managed = { name, child, tail: [], exited: false };
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line) continue;
      m.tail.push(line.length > 300 ? `${line.slice(0, 300)}…` : line);
      if (m.tail.length > 40) m.tail.shift();
    }
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('exit', () => { m.exited = true; running.delete(m); });
  child.on('error', (err) => { m.tail.push(`spawn error: ${err.message}`); m.exited = true; running.delete(m); });
  running.add(m);
  return m;
}

/** Registers a child started elsewhere (e.g. with fork) for clean-up. */
export function adoptProcess(name: string, child: ChildProcess): Managed {
  installHooks();
  const m: Managed = { name, child, tail: [], exited: false };
  child.on('exit', () => { m.exited = true; running.delete(m); });
  running.add(m);
  return m;
}

/** SIGTERM, then SIGKILL after graceMs. Resolves once the process has exited. */
export async function stopProcess(m: Managed, graceMs = 3000): Promise<void> {
  if (m.exited || m.child.exitCode !== null || m.child.signalCode !== null) { running.delete(m); return; }
  const exited = once(m.child, 'exit');
  killSync(m, 'SIGTERM');
  const timer = setTimeout(() => killSync(m, 'SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
  running.delete(m);
}

/** Kills at once (SIGKILL): used to simulate a crash. */
export async function killProcess(m: Managed): Promise<void> {
  if (m.exited) return;
  const exited = once(m.child, 'exit');
  killSync(m, 'SIGKILL');
  await exited;
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((m) => stopProcess(m, 2000)));
}

export function runningCount(): number { return running.size; }
