// What is wrong with Redis, in words an operator can act on. Every Redis fault the edge survives
// (refused, blackholed, slow, closed mid-reply, NOAUTH/WRONGPASS, DENIED, NOPERM, OOM, READONLY,
// LOADING, MOVED/ASK/CLUSTERDOWN, a Sentinel naming no master) ends up as one short code — the label
// of `portcullis_redis_degraded{reason}` and `portcullis_redis_faults_total{reason}` — and a message
// (the `redis` event's reason and /healthz), built from the error ioredis reported or the error a
// command was answered with.
import { connect } from 'node:net';

/** Fault codes; Redis error prefixes are kept as Redis spells them so they can be searched for. */
export type RedisFaultCode =
  | 'refused' | 'unreachable' | 'timeout' | 'closed' | 'connecting'
  | 'NOAUTH' | 'WRONGPASS' | 'DENIED' | 'NOPERM' | 'OOM' | 'READONLY' | 'LOADING'
  | 'MOVED' | 'ASK' | 'CLUSTERDOWN' | 'TRYAGAIN' | 'MASTERDOWN' | 'BUSY' | 'no_master' | 'cluster' | 'error';

export interface RedisFault {
  code: RedisFaultCode;
  /** One line, at most ~200 characters. */
  message: string;
}

const REPLY_PREFIXES: readonly RedisFaultCode[] = ['NOAUTH', 'WRONGPASS', 'DENIED', 'NOPERM', 'OOM', 'READONLY', 'LOADING', 'MOVED', 'ASK', 'CLUSTERDOWN', 'TRYAGAIN', 'MASTERDOWN', 'BUSY'];

function oneLine(s: string): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > 200 ? `${t.slice(0, 197)}...` : t;
}

/** Classifies an error (or error text) from ioredis or from a Redis reply. */
export function classifyRedisError(err: unknown): RedisFault {
  const e = err as { message?: unknown; code?: unknown } | null;
  const msg = oneLine(typeof err === 'string' ? err : typeof e?.message === 'string' ? e.message : String(err));
  const sysCode = typeof e?.code === 'string' ? e.code : '';
  // A Redis error reply starts with its code in capitals ("-NOAUTH …"); ioredis sometimes wraps it
  // ("… Last error: NOAUTH …"), so look for the first known code as a word.
  for (const p of REPLY_PREFIXES) {
    if (msg.startsWith(`${p} `) || msg === p) return { code: p, message: msg };
  }
  for (const p of REPLY_PREFIXES) {
    if (new RegExp(`(^|[^A-Za-z])${p}( |$)`).test(msg)) return { code: p, message: msg };
  }
  if (sysCode === 'ECONNREFUSED' || /ECONNREFUSED/.test(msg)) return { code: 'refused', message: msg };
  if (/EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN/.test(sysCode || msg)) return { code: 'unreachable', message: msg };
  if (sysCode === 'ETIMEDOUT' || /ETIMEDOUT|timed out/i.test(msg)) return { code: 'timeout', message: msg };
  if (/invalid reply|no master|get-master-addr-by-name/i.test(msg)) return { code: 'no_master', message: msg };
  if (/sentinel/i.test(msg)) return { code: 'no_master', message: msg };
  if (/slots cache|cluster support disabled|CLUSTER/i.test(msg)) return { code: 'cluster', message: msg };
  // ioredis's words for a command that was on a connection when it closed (maxRetriesPerRequest: 0).
  if (/max retries per request/i.test(msg)) return { code: 'closed', message: `the connection closed with a command in flight (${msg})` };
  if (/^redis connecting$/.test(msg)) return { code: 'connecting', message: msg };
  if (/^redis (reconnecting|close|end|wait)$/.test(msg)) return { code: 'closed', message: `${msg} (the connection closed)` };
  if (/ECONNRESET|EPIPE|Connection is closed|connection closed|Stream isn't writeable|closed/i.test(sysCode || msg)) return { code: 'closed', message: msg };
  return { code: 'error', message: msg };
}

/** The text shown for a fault: the code, then what Redis or the socket said (when it adds anything). */
export function describeFault(f: RedisFault): string {
  return f.message.startsWith(f.code) ? f.message : `${f.code}: ${f.message}`;
}

/**
 * What a Redis says to a new connection before it is asked anything: protected mode writes
 * `-DENIED …` and closes at once. ioredis mistakes that text for its "no password is set" warning
 * and reports only a closed connection, so a connection that closes without an error is explained
 * by looking: connect, wait up to `ms` for a greeting, return its first line when it is an error.
 */
export function probeGreeting(host: string, port: number, ms = 500): Promise<string | null> {
  return new Promise((resolve) => {
    let done = false;
    let got = '';
    const finish = (v: string | null): void => { if (done) return; done = true; clearTimeout(timer); sock.destroy(); resolve(v); };
    const sock = connect({ host, port });
    const timer = setTimeout(() => finish(null), ms);
    timer.unref();
    sock.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      const nl = got.indexOf('\r\n');
      if (nl >= 0 || got.length > 4096) finish(got.startsWith('-') ? got.slice(1, nl >= 0 ? nl : undefined) : null);
    });
    sock.on('error', () => finish(null));
    sock.on('close', () => finish(got.startsWith('-') ? got.slice(1).split('\r\n')[0] : null));
  });
}
