// Starts a real Portcullis edge (uWS listener on a free port) from YAML text, in this process, and
// writes the YAML that edge tests share (one listener, no access log, one backend of test origins).
import { loadConfigText } from '../../edge/config/load.js';
import { startEdge, type EdgeOptions, type RunningEdge } from '../../edge/main/edge.js';
import type { EdgeEvent } from '../../edge/observe/events/bus.js';
import { startOrigin, type Origin, type OriginHandler } from './origin.js';
import { freePort } from './ports.js';
import { EventCollector } from './events.js';

export { freePort };

/**
 * Body of `limits: { … }` that turns the built-in per-client limits off, for tests that load from one
 * address: their defaults would answer 429 to a test's own traffic, and the in-process connection
 * guard (50 new connections per second per client) would close its connections.
 */
export const CLIENT_LIMITS_OFF = 'client: { requests: { limit: 0 }, in_flight: 0 }, connection: { in_process: off }';

/** One server of the test backend; `more` adds keys to its flow mapping (e.g. `maxconn: 1`). */
export interface TestServer { name: string; url: string; more?: string }

/** What an edge test's config varies; what is left out is the common setup. */
export interface EdgeYamlSpec {
  /** The servers of the config's one backend. */
  servers: TestServer[];
  /** That backend's name (default `shop`). */
  backend?: string;
  /** More keys of that backend, as YAML lines (indented here). */
  backendMore?: string;
  /** More keys of the listener on {{PORT}} (tls, hsts, redirect_https), as flow-mapping text. */
  listener?: string;
  /** More listeners after it, each a flow mapping. */
  listeners?: string[];
  /** The access log's path (default "off"). */
  accessLog?: string;
  /** `events.log` (no `events` key when left out). */
  eventLog?: string;
  /** Body of `limits: { … }` (no `limits` key when left out); see CLIENT_LIMITS_OFF. */
  limits?: string;
  /** More top-level YAML (rules, admin, timeouts, trusted_proxies, workers, …). */
  more?: string;
}

/** Config text of a test edge: a listener on {{PORT}}, access log off, one backend of `servers`. */
export function edgeYaml(s: EdgeYamlSpec): string {
  // PORTCULLIS_TEST_H2_ENGINE (set by test/http2/engines/*): the HTTP/2 engine of the test listener,
  // so one test file runs against either engine (listen[].http2_engine).
  const engine = process.env.PORTCULLIS_TEST_H2_ENGINE;
  const listener = [s.listener, engine ? `http2_engine: ${engine}` : ''].filter((x) => x).join(', ');
  const listen = [`{ address: "127.0.0.1:{{PORT}}"${listener ? `, ${listener}` : ''} }`, ...(s.listeners ?? [])];
  const lines = [`listen: [${listen.join(', ')}]`, `access_log: { path: "${s.accessLog ?? 'off'}" }`];
  if (s.eventLog !== undefined) lines.push(`events: { log: "${s.eventLog}" }`);
  if (s.limits !== undefined) lines.push(`limits: { ${s.limits} }`);
  lines.push('backends:', `  ${s.backend ?? 'shop'}:`);
  if (s.backendMore) lines.push(...s.backendMore.split('\n').map((l) => `    ${l}`));
  lines.push('    servers:', ...s.servers.map((v) => `      - { name: ${v.name}, url: "${v.url}"${v.more ? `, ${v.more}` : ''} }`));
  if (s.more) lines.push(s.more);
  return `${lines.join('\n')}\n`;
}

export interface TestEdge {
  edge: RunningEdge;
  url: string;
  port: number;
  events: EdgeEvent[];
  /** The same events, with expect() for termination state, status and rule id. */
  collector: EventCollector;
  stop(): Promise<void>;
}

/** `yaml` may contain {{PORT}}, replaced by a free port for the listener. */
export async function startTestEdge(yaml: string, opts: EdgeOptions = {}): Promise<TestEdge> {
  const port = await freePort();
  const text = yaml.replaceAll('{{PORT}}', String(port));
  const cfg = loadConfigText(text, 'test.yaml', { PORTCULLIS_ADMIN_TOKEN: 'test-token-0123456789' });
  const edge = await startEdge(cfg, opts);
  const collector = new EventCollector(edge.bus);
  return { edge, url: `http://127.0.0.1:${port}`, port, events: collector.events, collector, stop: () => edge.stop() };
}

/** What startOriginAndEdge() varies: the origin (name, handler), its server's `more` and the rest of edgeYaml()'s spec. */
export type OriginAndEdgeSpec = Omit<EdgeYamlSpec, 'servers'> & { origin?: string; handler?: OriginHandler; serverMore?: string; edge?: EdgeOptions };

/** Starts origin `origin` (default `web1`) and an in-process edge with it as its backend's one server; both stop when `t` ends. */
export async function startOriginAndEdge(t: { after(fn: () => unknown): void }, spec: OriginAndEdgeSpec = {}): Promise<{ o: Origin; px: TestEdge }> {
  const { origin = 'web1', handler, serverMore, edge, ...yaml } = spec;
  const o = await startOrigin(origin, handler);
  t.after(() => o.close());
  const px = await startTestEdge(edgeYaml({ ...yaml, servers: [{ name: origin, url: o.url, more: serverMore }] }), edge);
  t.after(() => px.stop());
  return { o, px };
}
