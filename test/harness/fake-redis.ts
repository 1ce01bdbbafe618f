// A scripted server speaking RESP on a loopback port, for the Redis faults a real redis-server does
// not produce on demand: a blackhole (accepts, never answers), a slow link, a reply cut in the
// middle, protected mode's -DENIED, -LOADING, -MOVED/-CLUSTERDOWN from a cluster node reached as a
// single Redis, a Sentinel that names no master. In `pass` mode it is a TCP relay to a real Redis
// (optionally delaying every reply), so a test can switch a fault off and watch the edge resume.
// Switching modes closes the connections open now: clients reconnect into the new behaviour.
import { createServer, connect, type Server, type Socket } from 'node:net';

export type FakeRedisMode =
  /** Relay to `upstream` (a real Redis), each reply held `delayMs`. */
  | { kind: 'pass'; delayMs?: number }
  /** Accept, read, never answer. */
  | { kind: 'blackhole' }
  /** Protected mode: `-DENIED …` on connect, then close (what redis-server does to a non-loopback client). */
  | { kind: 'denied' }
  /** Answer the connection handshake like a Redis, every other command with `error` (e.g. `LOADING …`). */
  | { kind: 'error'; error: string }
  /** Answer the handshake, then cut the first data reply in the middle and close the connection. */
  | { kind: 'midreply' }
  /** A Sentinel: get-master-addr-by-name answers `master` (null: it names no master). */
  | { kind: 'sentinel'; master: { host: string; port: number } | null };

export interface FakeRedis {
  port: number;
  url: string;
  /** Connections accepted so far. */
  readonly accepted: number;
  setMode(mode: FakeRedisMode): void;
  close(): Promise<void>;
}

const enc = (s: string): string => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;

/** Parses complete RESP arrays of bulk strings (what clients send) from `buf`; returns the rest. */
function parseCommands(buf: Buffer, out: string[][]): Buffer {
  let pos = 0;
  for (;;) {
    if (pos >= buf.length) break;
    if (buf[pos] !== 0x2a /* '*' */) {
      // Inline command (telnet style): one line.
      const nl = buf.indexOf('\r\n', pos);
      if (nl < 0) break;
      out.push(buf.subarray(pos, nl).toString().split(' ').filter((x) => x !== ''));
      pos = nl + 2;
      continue;
    }
    const nl = buf.indexOf('\r\n', pos);
    if (nl < 0) break;
    const n = Number(buf.subarray(pos + 1, nl).toString());
    let p = nl + 2;
    const args: string[] = [];
    let complete = true;
    for (let i = 0; i < n; i++) {
      const l = buf.indexOf('\r\n', p);
      if (l < 0 || buf[p] !== 0x24 /* '$' */) { complete = false; break; }
      const len = Number(buf.subarray(p + 1, l).toString());
      if (l + 2 + len + 2 > buf.length) { complete = false; break; }
      args.push(buf.subarray(l + 2, l + 2 + len).toString());
      p = l + 2 + len + 2;
    }
    if (!complete) break;
    out.push(args);
    pos = p;
  }
  return buf.subarray(pos);
}

/** Reply to what every client sends while connecting (RESP2: HELLO is refused, so clients fall back). */
function handshakeReply(cmd: string[]): string | null {
  const name = (cmd[0] ?? '').toUpperCase();
  switch (name) {
    case 'HELLO': return "-ERR unknown command 'HELLO', with args beginning with: \r\n";
    case 'PING': return '+PONG\r\n';
    case 'INFO': return enc('# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n# Persistence\r\nloading:0\r\n# Replication\r\nrole:master\r\n');
    case 'CLIENT': case 'SELECT': case 'AUTH': case 'READONLY': return '+OK\r\n';
    case 'QUIT': return '+OK\r\n';
    case 'SUBSCRIBE': {
      let r = '';
      for (let i = 1; i < cmd.length; i++) r += `*3\r\n${enc('subscribe')}${enc(cmd[i])}:${i}\r\n`;
      return r;
    }
    default: return null;
  }
}

export async function startFakeRedis(upstream: { host: string; port: number } | null, initial: FakeRedisMode): Promise<FakeRedis> {
  let mode = initial;
  let accepted = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((sock) => {
    accepted++;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => { /* the client went away */ });
    const m = mode;
    if (m.kind === 'pass') { relay(sock, m.delayMs ?? 0); return; }
    if (m.kind === 'denied') {
      sock.end('-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface.\r\n');
      return;
    }
    if (m.kind === 'blackhole') { sock.on('data', () => { /* never answered */ }); return; }
    let pending: Buffer = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      const cmds: string[][] = [];
      pending = parseCommands(pending.length === 0 ? d : Buffer.concat([pending, d]), cmds);
      for (const cmd of cmds) {
        if (sock.destroyed) return;
        const name = (cmd[0] ?? '').toUpperCase();
        if (m.kind === 'sentinel') {
          const sub = (cmd[1] ?? '').toLowerCase();
          if (name === 'SENTINEL' && sub === 'get-master-addr-by-name') {
            sock.write(m.master === null ? '*-1\r\n' : `*2\r\n${enc(m.master.host)}${enc(String(m.master.port))}`);
          } else if (name === 'SENTINEL') sock.write('*0\r\n');
          else sock.write(handshakeReply(cmd) ?? '+OK\r\n');
          continue;
        }
        const hs = handshakeReply(cmd);
        if (hs !== null) { sock.write(hs); if (name === 'QUIT') sock.end(); continue; }
        if (m.kind === 'error') { sock.write(`-${m.error}\r\n`); continue; }
        // midreply: the start of an array reply, then the connection is gone.
        sock.write('*3\r\n:1\r\n:');
        sock.destroy();
        return;
      }
    });
  });
  const relay = (sock: Socket, delayMs: number): void => {
    if (upstream === null) { sock.destroy(); return; }
    const up = connect(upstream.port, upstream.host);
    sockets.add(up);
    up.on('close', () => { sockets.delete(up); sock.destroy(); });
    up.on('error', () => sock.destroy());
    sock.on('close', () => up.destroy());
    sock.pipe(up);
    if (delayMs <= 0) up.pipe(sock);
    else up.on('data', (d: Buffer) => { setTimeout(() => { if (!sock.destroyed) sock.write(d); }, delayMs); });
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get accepted() { return accepted; },
    setMode(next: FakeRedisMode): void {
      mode = next;
      for (const s of sockets) s.destroy();
    },
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
