// Shared pieces of the DoS-shield tests: sequential GETs from a chosen 127.x source address with
// latency records, percentiles, and admin-API calls with the test token. (Their private Redis comes
// from ../harness/redis.ts.)
import { sleep, waitFor } from '../harness/wait.js';
import { Agent, request } from 'undici';
import { ADMIN_TOKEN } from '../harness/process.js';

export { sleep, waitFor };

export interface Sample { status: number; ms: number; retryAfter: string | undefined }

/** A keep-alive client bound to one source address (127.x.y.z is local on Linux without setup). */
export class SourceClient {
  readonly agent: Agent;
  constructor(readonly localAddress: string, connections = 4) {
    this.agent = new Agent({ localAddress, connections, keepAliveTimeout: 4000, headersTimeout: 20_000, bodyTimeout: 20_000 });
  }
  async get(url: string, headers: Record<string, string> = {}): Promise<Sample> {
    const t0 = performance.now();
    try {
      const r = await request(url, { dispatcher: this.agent, headers });
      await r.body.dump();
      const ra = r.headers['retry-after'];
      return { status: r.statusCode, ms: performance.now() - t0, retryAfter: Array.isArray(ra) ? ra[0] : ra };
    } catch {
      return { status: 0, ms: performance.now() - t0, retryAfter: undefined };
    }
  }
  close(): Promise<void> { return this.agent.close(); }
}

/** Sequential GETs until stop() is called; every answer recorded (status 0 = connection failure). */
export function legitLoop(client: SourceClient, url: string, pauseMs = 20): { samples: Sample[]; stop(): Promise<void> } {
  const samples: Sample[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      samples.push(await client.get(url));
      if (pauseMs > 0) await sleep(pauseMs);
    }
  })();
  return { samples, async stop() { running = false; await loop; } };
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

export function summarize(samples: Sample[]): { n: number; ok: number; okRate: number; p50: number; p99: number; statuses: Record<number, number> } {
  const statuses: Record<number, number> = {};
  for (const s of samples) statuses[s.status] = (statuses[s.status] ?? 0) + 1;
  const ok = statuses[200] ?? 0;
  const ms = samples.map((s) => s.ms);
  return { n: samples.length, ok, okRate: samples.length === 0 ? 0 : ok / samples.length, p50: percentile(ms, 50), p99: percentile(ms, 99), statuses };
}

/** Admin API call with the harness token. */
export async function admin(adminPort: number, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown; text: string }> {
  const r = await request(`http://127.0.0.1:${adminPort}${path}`, {
    method: method as 'GET',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.body.text();
  let json: unknown = null;
  try { json = JSON.parse(text); } catch { /* metrics text */ }
  return { status: r.statusCode, json, text };
}

/** Value of one Prometheus sample line (`name value` or `name{…} value`), NaN when absent. */
export function metricValue(text: string, name: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return NaN;
}

/** Milliseconds until fn() is true; throws, naming `what`, after timeoutMs (test/harness/wait.ts). */
export async function msUntil(what: string, fn: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 25): Promise<number> {
  const t0 = performance.now();
  await waitFor(what, fn, timeoutMs, everyMs);
  return performance.now() - t0;
}
