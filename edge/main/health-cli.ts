// `portcullis health --config FILE [--timeout 1s] [--quiet]`: exit 0 while the node is ready (its admin
// listener's GET /healthz answers 200), 1 otherwise, with the reasons on stderr. keepalived runs it
// every second on each node, so it stays light: it reads only `admin.address` from the YAML (no
// schema validation, no rule compiler) — about a third of the start-up cost of the full CLI.
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { parse } from 'yaml';

export interface AdminCall { status: number; body: Record<string, unknown> | null }
export interface Endpoint { host: string; port: number }
export interface CliIo { out: (text: string) => void; err: (text: string) => void }

/** The admin listener as seen from this host: a wildcard bind is reached on loopback. */
export function reachable(host: string, port: number): Endpoint {
  const h = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return { host: h, port };
}

/** `admin.address` of a config file (with ${ENV} substituted); null when the file has no admin section. */
export function adminAddressOf(file: string, env: NodeJS.ProcessEnv = process.env): Endpoint | null {
  const raw = parse(readFileSync(file, 'utf8')) as { admin?: { address?: unknown } } | null;
  if (raw === null || typeof raw !== 'object' || raw.admin === undefined || raw.admin === null) return null;
  const text = String(raw.admin.address ?? '127.0.0.1:9090').replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
    (_m, name: string, dflt: string | undefined) => env[name] || dflt || '');
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text.trim());
  if (m === null) throw new Error(`admin.address "${text}" is not host:port`);
  return reachable(m[1] ?? m[2], Number(m[3]));
}

export function adminCall(ep: Endpoint, method: string, path: string, opts: { token?: string; body?: unknown; timeoutMs: number }): Promise<AdminCall> {
  return new Promise((resolvePromise, reject) => {
    const payload = opts.body === undefined ? null : JSON.stringify(opts.body);
    const req = request({
      host: ep.host, port: ep.port, method, path, timeout: opts.timeoutMs, agent: false,
      headers: {
        connection: 'close',
        ...(opts.token !== undefined ? { authorization: `Bearer ${opts.token}` } : {}),
        ...(payload !== null ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
      },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        res.socket?.destroy(); // nothing else to ask: do not keep the process alive for a keep-alive
        let body: Record<string, unknown> | null = null;
        try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>; } catch { body = null; }
        resolvePromise({ status: res.statusCode ?? 0, body });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${opts.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload ?? undefined);
  });
}

export function argOf(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  if (i >= 0) return argv[i + 1];
  return argv.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
}

/** "500ms", "1s", "2" (seconds) → ms; null when not a duration. */
function millis(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(text.trim());
  if (m === null) return null;
  return m[2] === 'ms' ? Number(m[1]) : Number(m[1]) * 1000;
}

export async function runHealth(argv: string[], io: CliIo): Promise<number> {
  const file = argOf(argv, '--config');
  if (file === undefined) { io.err('usage: portcullis health --config FILE [--timeout 1s] [--quiet]\n'); return 2; }
  const timeoutText = argOf(argv, '--timeout');
  const timeoutMs = timeoutText === undefined ? 1000 : millis(timeoutText);
  if (timeoutMs === null) { io.err(`--timeout "${timeoutText}": use 500ms or 1s\n`); return 2; }
  const quiet = argv.includes('--quiet') || argv.includes('-q');
  let ep: Endpoint | null;
  try {
    ep = adminAddressOf(file);
  } catch (e) {
    io.err(`${file}: ${(e as Error).message}\n`);
    return 1;
  }
  if (ep === null) { io.err(`${file}: no admin listener: /healthz lives there (configure admin.address)\n`); return 1; }
  try {
    const r = await adminCall(ep, 'GET', '/healthz', { timeoutMs });
    const reasons = Array.isArray(r.body?.reasons) ? (r.body.reasons as string[]) : [];
    const line = `${String(r.body?.node ?? '?')}: ${r.status} ${String(r.body?.status ?? '')}${reasons.length > 0 ? ` — ${reasons.join('; ')}` : ''}\n`;
    if (r.status === 200) { if (!quiet) io.out(line); return 0; }
    io.err(line);
    return 1;
  } catch (e) {
    io.err(`${ep.host}:${ep.port}: not ready: ${(e as Error).message}\n`);
    return 1;
  }
}

/** Entry point used by bin/portcullis for `health` (skips loading the full CLI). */
export async function main(argv: string[]): Promise<void> {
  process.exitCode = await runHealth(argv.slice(1), { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) });
}
