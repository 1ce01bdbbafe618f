// `portcullis run --supervise`: a small parent process that runs the edge as a child and starts a
// new one when it dies (a native abort inside uWS, an OOM kill, a worker thread taking the process
// down). Signals are passed on; SIGTERM/SIGINT stop the child gracefully and then the parent.
// Restarts back off (0.5 s doubling to 30 s) and the back-off resets after 60 s of uptime.
import { spawn, type ChildProcess } from 'node:child_process';
import { edgeNodeArgs } from './v8-memory.js';

const FORWARDED: NodeJS.Signals[] = ['SIGHUP', 'SIGUSR1', 'SIGUSR2'];

function log(level: number, msg: string, extra: Record<string, unknown> = {}): void {
  process.stderr.write(`${JSON.stringify({ level, time: new Date().toISOString(), msg, supervisor: process.pid, ...extra })}\n`);
}

export function runSupervised(entry: string, args: string[]): Promise<number> {
  let child: ChildProcess | null = null;
  let stopping = false;
  let backoff = 500;
  let startedAt = 0;
  return new Promise((resolve) => {
    const start = (): void => {
      startedAt = Date.now();
      // The child gets the launcher's V8 heap flags (edge/main/v8-memory.ts) even when this parent was
      // started by `node bin/portcullis` without them.
      child = spawn(process.execPath, [...edgeNodeArgs(process.execArgv), entry, ...args], { stdio: 'inherit', env: { ...process.env, PORTCULLIS_SUPERVISED: '1' } });
      log(30, 'supervisor: started the edge', { child: child.pid });
      child.once('exit', (code, signal) => {
        child = null;
        if (stopping) { resolve(code ?? 0); return; }
        if (Date.now() - startedAt > 60_000) backoff = 500;
        log(50, `supervisor: the edge exited (${signal ?? `code ${code}`}); restarting in ${backoff} ms`, { code, signal });
        setTimeout(start, backoff);
        backoff = Math.min(backoff * 2, 30_000);
      });
    };
    for (const sig of ['SIGTERM', 'SIGINT'] as NodeJS.Signals[]) {
      process.on(sig, () => {
        stopping = true;
        if (child === null) resolve(0); else child.kill(sig);
      });
    }
    for (const sig of FORWARDED) process.on(sig, () => { child?.kill(sig); });
    start();
  });
}
