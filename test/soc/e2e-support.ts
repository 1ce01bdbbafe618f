// Support for the end-to-end SOC tests: they run the real `bin/portcullis run` process (spawnEdge)
// in front of real loopback origins, and talk to it as a client (from chosen 127.x source addresses,
// so that each test "client" has its own identity), as an operator (admin API) and as a SIEM (the
// JSON-lines event log).
import { request as httpRequest } from 'node:http';
import { readFileSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { securityEventSchema } from '../../edge/observe/events/schema.js';
import { edgeYaml } from '../harness/edge.js';
import { ADMIN_TOKEN } from '../harness/process.js';
import { exchange } from '../harness/raw-client.js';

export { ADMIN_TOKEN };

/** A fresh temp dir (`prefix`) holding rules file `name` with `rules`; `eventLog` is a path in it for `events.log`. */
export function rulesDir(prefix: string, name: string, rules: string): { dir: string; rulesFile: string; eventLog: string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const rulesFile = join(dir, name);
  writeFileSync(rulesFile, rules);
  return { dir, rulesFile, eventLog: join(dir, 'events.jsonl') };
}

/** What a SOC e2e edge's config varies (see socEdgeYaml). */
export interface SocEdgeSpec {
  /** One server each, named s1, s2, … in order, in backend `app`. */
  origins: { url: string }[];
  node?: string;
  rulesFile?: string;
  /** `events.log` (default "off"). */
  eventLog?: string;
  /** More keys of the admin listener (e.g. `state_file: "…"`). */
  adminMore?: string;
  limits?: string;
  backendMore?: string;
  more?: string;
}

/** Config text of a SOC e2e edge: spawnEdge's admin port and token, backend `app`, rules not watched. */
export function socEdgeYaml(o: SocEdgeSpec): string {
  return edgeYaml({
    backend: 'app',
    servers: o.origins.map((x, i) => ({ name: `s${i + 1}`, url: x.url })),
    backendMore: o.backendMore,
    eventLog: o.eventLog ?? 'off',
    limits: o.limits,
    more: [
      o.node === undefined ? '' : `node_id: ${o.node}`,
      `admin: { address: "127.0.0.1:{{ADMIN_PORT}}", token: "\${PORTCULLIS_ADMIN_TOKEN}"${o.adminMore ? `, ${o.adminMore}` : ''} }`,
      o.rulesFile === undefined ? '' : `rules: { files: ["${o.rulesFile}"], watch: false }`,
      o.more ?? '',
    ].filter((l) => l !== '').join('\n'),
  });
}

export interface Reply { status: number; headers: Record<string, string | string[] | undefined>; body: string }

/** One HTTP request with its own connection. status 0 = the connection closed without an answer. */
export function send(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string; from?: string; timeoutMs?: number } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, {
      method: opts.method ?? 'GET', headers: opts.headers, agent: false, localAddress: opts.from,
      timeout: opts.timeoutMs ?? 10_000,
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => { req.destroy(new Error(`timeout: ${url}`)); });
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET' || e.message === 'socket hang up') resolve({ status: 0, headers: {}, body: '' });
      else reject(e);
    });
    req.end(opts.body);
  });
}

/** Raw bytes on a fresh connection; resolves with what came back before close (or after ms). */
export async function sendRaw(port: number, bytes: string, ms = 2000): Promise<string> {
  return (await exchange(port, bytes, { waitMs: ms })).data.toString('latin1');
}

export interface AdminReply { status: number; body: any } // eslint-disable-line @typescript-eslint/no-explicit-any

/** Admin API call with the test token (or `token`: null = none). */
export async function admin(port: number, method: string, path: string, body?: unknown, token: string | null = ADMIN_TOKEN): Promise<AdminReply> {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await send(`http://127.0.0.1:${port}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let parsed: unknown = r.body;
  if ((r.headers['content-type'] ?? '').toString().includes('json')) parsed = JSON.parse(r.body);
  return { status: r.status, body: parsed };
}

/** ajv validator for securityEventSchema: null when valid, else the errors. */
export function eventValidator(): (ev: unknown) => string | null {
  const ajv = new Ajv({ strict: true, strictTypes: false, strictRequired: false, allErrors: true });
  ajv.addFormat('date-time', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  const v = ajv.compile(securityEventSchema);
  return (ev) => (v(ev) ? null : ajv.errorsText(v.errors));
}

export type Ev = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Every event line in a JSON-lines event log (the `events.log` sink). */
export function readEvents(file: string): Ev[] {
  if (!existsSync(file)) return [];
  const out: Ev[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    out.push(JSON.parse(line) as Ev);
  }
  return out;
}

export { waitFor } from '../harness/wait.js';

/** Prometheus text → samples (name, labels, value); throws on a line that is not exposition format. */
export function parsePrometheus(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  const out: { name: string; labels: Record<string, string>; value: number }[] = [];
  const lineRe = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$/;
  const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/gy;
  text.split('\n').forEach((line, i) => {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) return;
    if (line.startsWith('#')) return;
    const m = lineRe.exec(line);
    if (!m) throw new Error(`metrics line ${i + 1} is not Prometheus text: ${line}`);
    const labels: Record<string, string> = {};
    if (m[3] !== undefined && m[3] !== '') {
      labelRe.lastIndex = 0;
      let consumed = 0;
      let lm: RegExpExecArray | null;
      while ((lm = labelRe.exec(m[3])) !== null) { labels[lm[1]] = lm[2].replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c)); consumed = labelRe.lastIndex; }
      if (consumed !== m[3].length) throw new Error(`metrics line ${i + 1}: bad labels: ${line}`);
    }
    const value = m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : Number(m[4]);
    if (Number.isNaN(value) && m[4] !== 'NaN') throw new Error(`metrics line ${i + 1}: bad value: ${line}`);
    out.push({ name: m[1], labels, value });
  });
  return out;
}

/** Sum of a metric's samples whose labels include `match`. */
export function metricSum(samples: ReturnType<typeof parsePrometheus>, name: string, match: Record<string, string> = {}): number {
  let s = 0;
  for (const x of samples) {
    if (x.name !== name) continue;
    if (Object.entries(match).every(([k, v]) => x.labels[k] === v)) s += x.value;
  }
  return s;
}
