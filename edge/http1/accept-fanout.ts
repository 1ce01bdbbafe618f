// More accepts per event-loop iteration for a listening socket.
//
// Why: libuv (since 1.45; Node 20 ships 1.46) accepts ONE connection per listening handle per
// event-loop iteration. Under load an iteration of this process lasts 10–30 ms (it serves every
// ready connection), so a burst of new connections waits in the kernel's accept queue: measured with
// `wrk -c1000` against a busy edge, ~400 connections were still queued 1.5 s after they connected
// and were accepted at ~60 per second — wrk's p99 was 0.6–2.2 s, all of it before our first read.
// A client arriving at a busy edge waits the same way. More handles on the same socket give more
// accepts per iteration (the kernel wakes every handle; the ones that find the queue empty get
// EAGAIN, a few µs per new connection).
//
// How: Node has no dup(). A short-lived child process receives the listening socket over the IPC
// channel and sends it back `count` times: each transfer is an SCM_RIGHTS duplicate, i.e. a new
// descriptor of the same socket in this process. A connection the child happens to accept while it
// holds the socket is handed back over the same channel (never lost). The child exits at once.
import { spawn } from 'node:child_process';
import { Server, Socket } from 'node:net';

/** Extra handles per listener: up to 1 + this many accepts per event-loop iteration. */
export const EXTRA_ACCEPT_HANDLES = 31;

// The helper: sends the socket back \`count\` times, stops accepting once the last copy is written,
// and hangs up; Node delays the hang-up until every queued handle (a returned connection too) is
// acknowledged by the parent, so no connection it accepted is lost.
const CHILD = `
const count = Number(process.argv[1]);
process.on('message', (m, srv) => {
  if (m !== 'dup' || srv === undefined) return;
  let open = true;
  // Never read from a connection accepted here: its bytes belong to the parent.
  srv.pauseOnConnect = true;
  srv.on('connection', (s) => { if (open) process.send('conn', s); else s.destroy(); });
  const done = () => { open = false; srv.close(); process.disconnect(); };
  for (let i = 0; i < count; i++) process.send('fd', srv, { keepOpen: true }, i === count - 1 ? done : undefined);
});
process.on('disconnect', () => process.exit(0));
`;

export interface FanoutOptions {
  /** The listen() backlog to restore: every transferred handle is re-listened (Node's receiving side uses 511). */
  backlog: number;
  /** Give up after this long and keep what arrived (the primary handle always works). Long: a helper
   *  killed while it holds the socket loses the connections it accepted and has not handed back. */
  timeoutMs: number;
}

/**
 * Opens up to `count` extra handles on `primary`'s socket in the background. Each arrives as a
 * listening net.Server made by `make` (same options and 'connection' listener as the primary) and is
 * passed to `onServer`; until then (and if the helper cannot run at all) the primary handle alone
 * accepts, as before. Connections the helper accepted meanwhile are passed to `adopt`. Returns a
 * function that ends the helper if it still runs (call it when the listener stops); its promise
 * resolves when the helper has exited.
 */
export function fanOutAccepts(primary: Server, count: number, make: () => Server, onServer: (s: Server) => void, adopt: (sock: Socket) => void, opts: FanoutOptions): () => Promise<void> {
  const none = (): Promise<void> => Promise.resolve();
  if (count <= 0) return none;
  let child;
  try {
    // Not node's execArgv (--cpu-prof, --inspect …): the helper only passes descriptors.
    child = spawn(process.execPath, ['-e', CHILD, String(count)], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
  } catch {
    return none;
  }
  const helper = child;
  let settled = false;
  // Never disconnect the channel from this side: a handle message already read but not yet
  // emitted (Node emits on the next tick) is acknowledged through the channel, and an ACK on a
  // channel we closed is an ERR_INTERNAL_ASSERTION thrown from Node's child_process (seen when a
  // listener stopped right after it started). The helper hangs up itself, or dies of SIGKILL, and
  // Node closes the channel at its end, after every message read before it.
  const finish = (): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
  };
  const timer = setTimeout(() => { helper.kill('SIGKILL'); finish(); }, opts.timeoutMs);
  timer.unref();
  helper.on('error', finish);
  helper.on('exit', finish);
  helper.on('message', (msg: unknown, handle: unknown) => {
    if (msg === 'conn' && handle instanceof Socket) {
      // Made by Node's IPC layer, not by our server: give it our server's socket options. It
      // reads from the next loop turn on; the listener attaches its reader (or TLS) in this one.
      handle.pause();
      handle.allowHalfOpen = true;
      if (primary.listening) adopt(handle); else handle.destroy();
      return;
    }
    if (msg !== 'fd' || !(handle instanceof Server)) return;
    if (settled || !primary.listening) { handle.close(); return; }
    // Node's receiving side listened on the new descriptor with backlog 511 (a listen() on the
    // shared socket): our server takes the handle over (listen(server) is documented) and sets the
    // listener's backlog again. No connection is accepted in between (same tick).
    const s = make();
    s.listen(handle, opts.backlog);
    // The helper hangs up by itself once everything it sent was acknowledged: never cut it short
    // here (a connection it accepted may still be on its way).
    onServer(s);
  });
  // The helper must not keep the process alive (a stop during start-up).
  helper.unref();
  helper.channel?.unref();
  helper.send('dup', primary);
  // Stop: the helper must not keep a copy of the socket (the port would stay bound). The promise
  // resolves once the helper is gone, i.e. once no copy of the socket is left: a restart on the same
  // port right after a stop must not find it still bound (EADDRINUSE, seen in a test).
  const gone = new Promise<void>((resolve) => {
    if (helper.exitCode !== null || helper.signalCode !== null) resolve();
    else helper.once('exit', () => resolve());
  });
  // Waiting for the exit must keep the process alive (the helper is unref'd while it works).
  return () => {
    if (helper.exitCode === null && helper.signalCode === null) helper.ref();
    if (!settled) { helper.kill('SIGKILL'); finish(); }
    return gone;
  };
}
