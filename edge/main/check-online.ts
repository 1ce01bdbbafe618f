// `portcullis check --online`: after the offline validation, connect to what the config names and
// report every problem, so a wrong Redis password or an unreachable server is found before a
// deploy, not in production:
//   - shared.redis with its credentials: connects (URL, Sentinel or Cluster), then runs what the edge
//     runs — the counter sync script (EVALSHA/EVAL → HINCRBY, PEXPIRE, HGETALL, HDEL) on a canary key,
//     the ban list (HGETALL, PUBLISH) — so NOAUTH, WRONGPASS, DENIED, NOPERM, OOM, READONLY, LOADING,
//     MOVED, a Sentinel naming no master … are all named; and, as a finding of its own, the event
//     stream the Redis event sink writes and the dashboard feed reads (XADD … MAXLEN ~ N with the
//     ID 0-0, which Redis refuses only after the ACL, OOM and read-only checks passed — so it proves
//     the write is allowed without writing; XREVRANGE, XREAD);
//   - every server of every backend: its health check (path, timeout, expected status) once, or a
//     plain connection when it has none or expects a PROXY header;
//   - the geo databases (opened and looked up once) and the rule files (compiled, inline tests run).
// Nothing is changed: the only write is the canary hash, which expires within 10 s (and, on a Redis
// that would accept the 0-0 stream ID, the probe entry, deleted at once).
import { connect as tcpConnect } from 'node:net';
import type { EdgeConfig } from '../config/normalize.js';
import type { SharedConfig } from '../shield/stick/config.js';
import type { RulesSection, EventsSection } from '../config/sections.js';
import type { GeoOptions } from '../../geo/index.js';
import { ActiveCheck } from '../backend/health.js';
import { classifyRedisError, describeFault, probeGreeting } from '../shield/stick/redis-fault.js';
import type { RedisClient } from '../shield/stick/redis.js';

export interface OnlineFinding {
  ok: boolean;
  /** What was checked: `redis`, `server shop/web1`, `geo`, `rules`. */
  what: string;
  detail: string;
}

/** The URL without its password, for output. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch { return url.replace(/:[^:@/]*@/, ':***@'); }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => { t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms}ms (timed out)`)), ms); })])
    .finally(() => clearTimeout(t));
}

/** Runs `p` as step `name`: a failure carries the step, for the report. */
async function step<T>(name: string, p: Promise<T>, timeoutMs: number): Promise<T> {
  try {
    return await withTimeout(p, timeoutMs, name);
  } catch (err) {
    throw Object.assign(err instanceof Error ? err : new Error(String(err)), { step: name });
  }
}

function failureDetail(err: unknown): string {
  const s = (err as { step?: string } | null)?.step;
  const d = describeFault(classifyRedisError(err));
  return s === undefined || d.includes('timed out') ? d : `${s}: ${d}`;
}

async function checkRedis(cfg: SharedConfig, events: EventsSection | undefined, timeoutMs: number): Promise<OnlineFinding[]> {
  const t = cfg.redis;
  const what = t.kind === 'url' ? `redis ${redactUrl(t.url)}` : t.kind === 'sentinel' ? `redis sentinel ${t.sentinels.map((s) => `${s.host}:${s.port}`).join(',')} name ${t.name}` : `redis cluster ${t.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  const { createRedis } = await import('../shield/stick/redis.js');
  const client = createRedis({ ...cfg, commandTimeoutMs: Math.max(cfg.commandTimeoutMs, 1000) }, { enableOfflineQueue: false, retryStrategy: () => null });
  let lastError: unknown = null;
  client.on('error', (e: unknown) => { lastError = e; });
  client.on('sentinelError', (e: unknown) => { lastError = e; });
  const started = performance.now();
  try {
    try {
      await withTimeout(new Promise<void>((resolve, reject) => {
        if (client.status === 'ready') { resolve(); return; }
        client.once('ready', () => resolve());
        client.once('end', () => reject(lastError ?? new Error('connection closed')));
        client.once('close', () => { if (lastError !== null) reject(lastError); });
      }), timeoutMs, 'connect');
    } catch (err) {
      let fault = classifyRedisError(err);
      // A connection closed with nothing said: protected mode's greeting explains it (ioredis hides it).
      if ((fault.code === 'closed' || fault.code === 'error') && t.kind === 'url') {
        try {
          const u = new URL(t.url);
          const line = u.protocol === 'redis:' ? await probeGreeting(u.hostname.replace(/^\[|\]$/g, ''), Number(u.port || 6379)) : null;
          if (line !== null) fault = classifyRedisError(line);
        } catch { /* keep the first answer */ }
      }
      return [{ ok: false, what, detail: describeFault(fault) }];
    }
    const out: OnlineFinding[] = [];
    try {
      // What the edge runs: the sync script on a canary key (the share builds the same call) …
      const probeKey = `${cfg.prefix}:{${cfg.prefix}:w}:probe:${cfg.nodeId}`; // RedisShare.probeKey
      const cmds = client as unknown as { pcwin(n: number, keys: string[], args: (string | number)[]): Promise<unknown> };
      await step('counter sync script', cmds.pcwin(1, [probeKey], [Math.floor(Date.now() / 1000), 10, 10_000, 1]), timeoutMs);
      // … and the ban list and its change channel (a message every node ignores).
      await step('ban list (HGETALL)', client.hgetall(`{${cfg.prefix}}:bans`), timeoutMs);
      await step('ban channel (PUBLISH)', client.publish(`${cfg.prefix}:bans`, JSON.stringify({ op: 'check' })), timeoutMs);
      out.push({ ok: true, what, detail: `connected and allowed to run counters and bans (${Math.round(performance.now() - started)} ms)` });
    } catch (err) {
      out.push({ ok: false, what, detail: failureDetail(err) });
    }
    // The shared event stream follows a single Redis (or the master behind Sentinel: not probed here).
    if (t.kind === 'url' && events !== undefined) out.push(await checkEventStream(client, events, timeoutMs));
    return out;
  } finally {
    client.disconnect();
  }
}

/** What the Redis event sink and the dashboard feed run on the stream, with the same credentials. */
async function checkEventStream(client: RedisClient, events: EventsSection, timeoutMs: number): Promise<OnlineFinding> {
  const stream = events.redisStream;
  const what = `events stream ${stream}`;
  try {
    try {
      // The sink's write with the one ID Redis refuses after every permission check: nothing is written.
      const id = await step('write (XADD)', client.xadd(stream, 'MAXLEN', '~', String(events.streamMaxLen), '0-0', 'n', 'portcullis-check'), timeoutMs);
      if (typeof id === 'string') await client.xdel(stream, id); // a Redis that took 0-0: take it back
    } catch (err) {
      if (!/ID specified in XADD (must be greater than 0-0|is equal or smaller)/i.test(String((err as Error)?.message))) throw err;
    }
    await step('read (XREVRANGE)', client.xrevrange(stream, '+', '-', 'COUNT', 1), timeoutMs);
    await step('read (XREAD)', client.xread('COUNT', 1, 'STREAMS', stream, '$'), timeoutMs);
    return { ok: true, what, detail: 'allowed to write (XADD … MAXLEN ~) and read (XREVRANGE, XREAD) it; nothing written' };
  } catch (err) {
    return { ok: false, what, detail: failureDetail(err) };
  }
}

function checkServer(backend: string, s: { name: string; url: string; sendProxy: 'v2' | null }, health: EdgeConfig['backends'][number]['health'], timeoutMs: number): Promise<OnlineFinding> {
  const what = `server ${backend}/${s.name} ${s.url}`;
  if (health === null || health.path === '' || s.sendProxy !== null) {
    // No health check to run (or one that would need a PROXY header): can we connect at all?
    const u = new URL(s.url);
    const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
    return new Promise((resolve) => {
      const t0 = performance.now();
      const sock = tcpConnect({ host: u.hostname.replace(/^\[|\]$/g, ''), port });
      const done = (f: OnlineFinding): void => { clearTimeout(timer); sock.destroy(); resolve(f); };
      const timer = setTimeout(() => done({ ok: false, what, detail: `no connection within ${timeoutMs}ms` }), timeoutMs);
      sock.once('connect', () => done({ ok: true, what, detail: `accepts connections (${Math.round(performance.now() - t0)} ms; ${s.sendProxy !== null ? 'send_proxy: no HTTP check' : 'no health check configured'})` }));
      sock.once('error', (e: NodeJS.ErrnoException) => done({ ok: false, what, detail: `cannot connect: ${e.code ?? e.message}` }));
    });
  }
  return new Promise((resolve) => {
    const check = new ActiveCheck(s.url, { ...health, timeoutMs: Math.min(health.timeoutMs, timeoutMs) }, (r) => {
      check.stop();
      resolve({ ok: r.ok, what: `${what}${health.path}`, detail: `${r.status} ${r.detail} (${Math.round(r.durationMs)} ms)` });
    }, 0);
    check.start();
  });
}

async function checkGeo(opts: GeoOptions): Promise<OnlineFinding> {
  try {
    const { openGeo } = await import('../../geo/index.js');
    const geo = await openGeo({ ...opts, watch: false });
    const r = geo.lookup('8.8.8.8');
    const src = geo.sources;
    geo.close();
    return { ok: true, what: 'geo', detail: `country ${src.country ?? 'off'}, asn ${src.asn ?? 'off'} (8.8.8.8 → ${JSON.stringify(r)})` };
  } catch (err) {
    return { ok: false, what: 'geo', detail: (err as Error).message };
  }
}

async function checkRules(rules: RulesSection): Promise<OnlineFinding> {
  const { RuleManager } = await import('../../rules/manager.js');
  const m = new RuleManager({ files: rules.files, runTests: rules.runTests });
  try {
    const r = await m.reload('initial');
    const n = r.ok ? m.current().rulesInfo().length : 0;
    return r.ok ? { ok: true, what: 'rules', detail: `${rules.files.length} file(s), ${n} rule(s) compiled${rules.runTests ? ', inline tests pass' : ''}` }
      : { ok: false, what: 'rules', detail: r.errors.join('\n') };
  } finally { await m.close(); }
}

/** Every online check of `cfg`, run concurrently; each reports once. */
export async function checkOnline(cfg: EdgeConfig, opts: { timeoutMs?: number } = {}): Promise<OnlineFinding[]> {
  const timeoutMs = opts.timeoutMs ?? 3000;
  const jobs: Promise<OnlineFinding>[] = [];
  const shared = (cfg.sections.shared as SharedConfig | null | undefined) ?? null;
  const redisFindings = shared !== null ? checkRedis(shared, cfg.sections.events as EventsSection | undefined, timeoutMs) : Promise.resolve([]);
  for (const b of cfg.backends) for (const s of b.servers) jobs.push(checkServer(b.name, s, b.health, timeoutMs));
  const rules = (cfg.sections.rules as RulesSection | null | undefined) ?? null;
  if (rules !== null) jobs.push(checkRules(rules));
  const geo = cfg.sections.geo as GeoOptions | undefined;
  if (geo !== undefined && geo.countryDb !== undefined || rules !== null) jobs.push(checkGeo(geo ?? {}));
  const [redis, rest] = await Promise.all([redisFindings, Promise.all(jobs)]);
  return [...redis, ...rest];
}

/** The report: one line per finding (`ok` / `FAIL`), then a summary; returns the exit code. */
export function formatFindings(findings: OnlineFinding[]): { text: string; code: number } {
  const lines = findings.map((f) => `${f.ok ? 'ok  ' : 'FAIL'} ${f.what}: ${f.detail.split('\n').join('\n       ')}`);
  const failed = findings.filter((f) => !f.ok).length;
  lines.push(failed === 0 ? `online: all ${findings.length} check(s) passed` : `online: ${failed} of ${findings.length} check(s) failed`);
  return { text: `${lines.join('\n')}\n`, code: failed === 0 ? 0 : 1 };
}
