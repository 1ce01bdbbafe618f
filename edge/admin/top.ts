// `portcullis top`: the dashboard's live numbers in a terminal, for someone on the box without a
// browser. Polls the admin API's /api/stats once a second and redraws.
//   portcullis top [--config EDGE.yaml] [--url http://127.0.0.1:9090] [--token T | --token-file F | env PORTCULLIS_ADMIN_TOKEN] [--interval 1] [--once]
// In a terminal, q (or Ctrl-C) quits.
import { readFileSync } from 'node:fs';

interface TopStats {
  node: string; uptimeSec: number; ready: boolean; redis: string;
  requests: { total: number; rate: number; byClass: Record<string, number>; latency: { p50: number | null; p95: number | null; p99: number | null } };
  connections: number; guardRejects: number; queueTimeouts: number; bans: number;
  history: { rps: number; blocked: number; s4xx: number; s5xx: number }[];
  blocks: { blocked: number; windowSec: number; topRules: { key: string; count: number }[]; topClients: { key: string; count: number }[]; topCountries: { key: string; count: number }[]; topAsns: { key: string; count: number }[] };
  servers: { backend: string; name: string; state: string; weight: number; active: number; queued: number; backendQueued?: number; total: number }[];
  queues: { backend: string; length: number }[];
  tables: { name: string; size: number }[];
  events: { sinks: { name: string; dropped: number }[]; wsClientDrops: number };
}

const USAGE = 'usage: portcullis top [--config EDGE.yaml] [--url http://127.0.0.1:9090] [--token TOKEN | --token-file FILE] [--interval SECONDS] [--once]\n' +
  '       --config takes the admin address and token from the edge\'s config; the token may also come from\n' +
  '       PORTCULLIS_ADMIN_TOKEN, the URL from PORTCULLIS_ADMIN_URL; q or Ctrl-C quits';

/** What `top` reads keys from: the terminal (raw mode) when it is one. */
export interface KeyInput {
  isTTY?: boolean;
  setRawMode?(raw: boolean): unknown;
  on(event: 'data', fn: (d: Buffer | string) => void): unknown;
  off(event: 'data', fn: (d: Buffer | string) => void): unknown;
  resume(): unknown;
  pause(): unknown;
}

function pad(s: string | number, n: number): string { const t = String(s); return t.length >= n ? t.slice(0, n) : t + ' '.repeat(n - t.length); }
function rpad(s: string | number, n: number): string { const t = String(s); return t.length >= n ? t : ' '.repeat(n - t.length) + t; }
function ms(v: number | null): string { return v === null ? '-' : !Number.isFinite(v) ? '>30s' : v < 0.01 ? `${(v * 1000).toFixed(1)}ms` : v < 1 ? `${Math.round(v * 1000)}ms` : `${v.toFixed(2)}s`; }
function spark(values: number[]): string {
  const bars = '▁▂▃▄▅▆▇█';
  const max = Math.max(1, ...values);
  return values.map((v) => bars[Math.min(7, Math.floor((v / max) * 7.999))]).join('');
}

/** One screen of text for a /api/stats snapshot. */
export function renderTop(s: TopStats, width = 100): string {
  const L: string[] = [];
  const last = s.history.length > 0 ? s.history[s.history.length - 1] : { rps: 0, blocked: 0, s4xx: 0, s5xx: 0 };
  const dropped = s.events.sinks.reduce((a, x) => a + x.dropped, 0) + s.events.wsClientDrops;
  L.push(`portcullis top — node ${s.node}  up ${Math.floor(s.uptimeSec / 60)}m${s.uptimeSec % 60}s  ready ${s.ready ? 'yes' : 'NO'}  redis ${s.redis}`);
  L.push(`req/s ${rpad(last.rps, 7)}   blocked/s ${rpad(last.blocked, 6)}   total ${s.requests.total}   conns ${s.connections}   bans ${s.bans}   events dropped ${dropped}`);
  const c = s.requests.byClass;
  L.push(`status 2xx ${c['2xx'] ?? 0}  3xx ${c['3xx'] ?? 0}  4xx ${c['4xx'] ?? 0}  5xx ${c['5xx'] ?? 0}   latency (1 min) p50 ${ms(s.requests.latency.p50)} p95 ${ms(s.requests.latency.p95)} p99 ${ms(s.requests.latency.p99)}`);
  L.push(`guard rejects ${s.guardRejects}   queue timeouts ${s.queueTimeouts}   stick entries ${s.tables.reduce((a, t) => a + t.size, 0)}`);
  const w = Math.max(10, Math.min(60, width - 20));
  L.push(`req/s     ${spark(s.history.slice(-w).map((h) => h.rps))}`);
  L.push(`blocked/s ${spark(s.history.slice(-w).map((h) => h.blocked))}`);
  L.push('');
  L.push(`${pad(`TOP RULES (${s.blocks.windowSec}s)`, 30)}${pad('TOP CLIENTS', 28)}${pad('COUNTRIES', 14)}ASNS`);
  for (let i = 0; i < 5; i++) {
    const r = s.blocks.topRules[i]; const cl = s.blocks.topClients[i]; const co = s.blocks.topCountries[i]; const as = s.blocks.topAsns[i];
    L.push(`${pad(r ? `${r.key} ${r.count}` : '', 30)}${pad(cl ? `${cl.key} ${cl.count}` : '', 28)}${pad(co ? `${co.key} ${co.count}` : '', 14)}${as ? `${as.key} ${as.count}` : ''}`);
  }
  L.push('');
  L.push(`${pad('BACKEND/SERVER', 28)}${pad('STATE', 7)}${rpad('WEIGHT', 7)}${rpad('ACTIVE', 8)}${rpad('QUEUE', 7)}${rpad('TOTAL', 10)}`);
  const q = new Map(s.queues.map((x) => [x.backend, x.length]));
  for (const v of s.servers) {
    L.push(`${pad(`${v.backend}/${v.name}`, 28)}${pad(v.state, 7)}${rpad(v.weight, 7)}${rpad(v.active, 8)}${rpad(q.get(v.backend) ?? v.queued, 7)}${rpad(v.total, 10)}`);
  }
  return L.map((l) => (l.length > width ? l.slice(0, width) : l)).join('\n') + '\n';
}

export async function runTop(argv: string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr, keys: KeyInput = process.stdin): Promise<number> {
  let url = process.env.PORTCULLIS_ADMIN_URL ?? 'http://127.0.0.1:9090';
  let token = process.env.PORTCULLIS_ADMIN_TOKEN ?? '';
  let urlGiven = false;
  let tokenGiven = false;
  let configFile: string | null = null;
  let intervalS = 1;
  let once = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    try {
      if (a === '--url') { url = val(); urlGiven = true; }
      else if (a === '--token') { token = val(); tokenGiven = true; }
      else if (a === '--token-file') {
        const f = val();
        try { token = readFileSync(f, 'utf8').trim(); } catch (e) { throw new Error(`--token-file ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); }
        if (token === '') throw new Error(`--token-file ${f} is empty`);
        tokenGiven = true;
      }
      else if (a === '--config') configFile = val();
      else if (a === '--interval') { intervalS = Number(val()); if (!(intervalS >= 0.2 && intervalS <= 60)) throw new Error('--interval must be 0.2..60 seconds'); }
      else if (a === '--once') once = true;
      else if (a === '-h' || a === '--help') { out.write(USAGE + '\n'); return 0; }
      else throw new Error(`unknown option ${a}`);
    } catch (e) { err.write(`portcullis top: ${(e as Error).message}\n${USAGE}\n`); return 2; }
  }
  if (configFile !== null) {
    // The edge's own config: its admin listener and token (explicit --url/--token still win).
    const { loadConfigFile, ConfigLoadError } = await import('../config/load.js');
    try {
      const admin = loadConfigFile(configFile).admin;
      if (admin === null) { err.write(`portcullis top: ${configFile} has no admin listener (admin:)\n`); return 2; }
      const host = admin.host === '0.0.0.0' ? '127.0.0.1' : admin.host === '::' ? '::1' : admin.host;
      if (!urlGiven) url = `http://${host.includes(':') ? `[${host}]` : host}:${admin.port}`;
      if (!tokenGiven) token = admin.token;
    } catch (e) {
      err.write(`portcullis top: --config ${configFile}: ${e instanceof ConfigLoadError ? `\n${e.message}` : (e as Error).message}\n`);
      return 2;
    }
  }
  if (token === '') {
    err.write('portcullis top: no admin token: set PORTCULLIS_ADMIN_TOKEN, or pass --config EDGE.yaml, --token TOKEN or --token-file FILE ' +
      '(the admin.token of the edge\'s config; the demo\'s is demo-admin-token-change-me)\n' + `${USAGE}\n`);
    return 2;
  }
  const base = url.replace(/\/+$/, '');
  const tty = (out as NodeJS.WriteStream).isTTY === true;
  let stop = false;
  // The wait between two screens ends early when the user quits.
  let wake: (() => void) | null = null;
  const quit = (): void => { stop = true; wake?.(); };
  const onSig = (): void => quit();
  process.once('SIGINT', onSig);
  // In a terminal: keys arrive one by one (raw mode): q/Q quits, and so does Ctrl-C (raw mode turns
  // it into a byte instead of SIGINT).
  const interactive = !once && keys.isTTY === true && typeof keys.setRawMode === 'function';
  const onKey = (d: Buffer | string): void => {
    const s = typeof d === 'string' ? d : d.toString('utf8');
    if (s.includes('q') || s.includes('Q') || s.includes('\x03')) quit();
  };
  if (interactive) {
    keys.setRawMode?.(true);
    keys.on('data', onKey);
    keys.resume();
  }
  try {
    for (;;) {
      let res: Response;
      try {
        res = await fetch(`${base}/api/stats`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) });
      } catch (e) {
        err.write(`portcullis top: cannot reach ${base} (${(e as Error).message})\n`);
        return 1;
      }
      if (res.status === 401) { err.write('portcullis top: the admin API refused the token (401)\n'); return 1; }
      if (res.status !== 200) { err.write(`portcullis top: ${base}/api/stats answered ${res.status}\n`); return 1; }
      const stats = await res.json() as TopStats;
      const width = (out as NodeJS.WriteStream).columns ?? 100;
      out.write((tty && !once ? '\x1b[H\x1b[2J' : '') + renderTop(stats, width));
      if (once || stop) return 0;
      await new Promise<void>((r) => {
        const timer = setTimeout(() => { wake = null; r(); }, intervalS * 1000);
        wake = () => { clearTimeout(timer); wake = null; r(); };
      });
      if (stop) return 0;
    }
  } finally {
    process.off('SIGINT', onSig);
    if (interactive) {
      keys.off('data', onKey);
      keys.setRawMode?.(false);
      keys.pause();
    }
  }
}
