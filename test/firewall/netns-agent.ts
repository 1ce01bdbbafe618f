// Helper process for the nftables namespace test (not a test file itself). Node cannot enter a
// network namespace, so the test starts this script with `ip netns exec NS node netns-agent.js`.
//   server mode: `netns-agent.js server PORT...` accepts TCP on [::] (dual stack), greets each
//                connection with "ok\n" and holds it until the client closes.
//   client mode: `netns-agent.js client` reads one JSON command per stdin line, answers one JSON
//                line per command: open connections from a chosen source address, close them.
import { createServer, connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';

interface OpenCommand {
  id: number;
  op: 'open';
  host: string;
  port: number;
  /** Source address to bind (one of the client namespace's addresses). */
  local: string;
  count: number;
  timeoutMs: number;
  /** Keep the connections open until `closeAll`; otherwise close once greeted. */
  hold: boolean;
}
interface CloseAllCommand { id: number; op: 'closeAll' }
type Command = OpenCommand | CloseAllCommand;

export interface OpenResult { ok: number; refused: number; timeout: number; other: number }

type Outcome = 'ok' | 'refused' | 'timeout' | 'other';

const held: Socket[] = [];

function attempt(c: OpenCommand): Promise<Outcome> {
  return new Promise((resolve) => {
    const s = connect({ host: c.host, port: c.port, localAddress: c.local });
    let done = false;
    const finish = (o: Outcome): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (o === 'ok' && c.hold) held.push(s);
      else s.destroy();
      resolve(o);
    };
    // Greeted = the server application accepted it, not just the kernel handshake.
    const timer = setTimeout(() => finish('timeout'), c.timeoutMs);
    s.on('data', () => finish('ok'));
    s.on('error', (e: NodeJS.ErrnoException) => finish(e.code === 'ECONNREFUSED' || e.code === 'ECONNRESET' ? 'refused' : 'other'));
  });
}

async function handle(cmd: Command): Promise<unknown> {
  if (cmd.op === 'closeAll') {
    const n = held.length;
    for (const s of held.splice(0)) s.destroy();
    return { closed: n };
  }
  const outcomes = await Promise.all(Array.from({ length: cmd.count }, () => attempt(cmd)));
  const r: OpenResult = { ok: 0, refused: 0, timeout: 0, other: 0 };
  for (const o of outcomes) r[o]++;
  return r;
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'server') {
  let listening = 0;
  for (const p of rest) {
    const server = createServer((s) => {
      s.on('error', () => { /* client reset: nothing to do */ });
      s.on('end', () => s.end());
      s.write('ok\n');
    });
    server.listen({ port: Number(p), host: '::', backlog: 1024 }, () => {
      if (++listening === rest.length) process.stdout.write('listening\n');
    });
  }
} else if (mode === 'client') {
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    const cmd = JSON.parse(line) as Command;
    handle(cmd).then(
      (result) => process.stdout.write(`${JSON.stringify({ id: cmd.id, result })}\n`),
      (err: Error) => process.stdout.write(`${JSON.stringify({ id: cmd.id, error: err.message })}\n`),
    );
  });
  rl.on('close', () => process.exit(0));
} else {
  process.stderr.write('usage: netns-agent.js server PORT... | client\n');
  process.exit(2);
}
