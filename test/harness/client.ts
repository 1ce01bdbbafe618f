// Test clients: a raw-socket HTTP/1.1 client (exact bytes out, whole response in) and a small
// keep-alive fetch helper with its own undici Agent so tests can close it.
import { Agent, request } from 'undici';
import { exchange } from './raw-client.js';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  rawHead: string;
  body: Buffer;
  closed: boolean;
}

/** Sends `bytes` on a fresh connection and collects everything until the server closes or `waitMs` passes. */
export async function rawExchange(port: number, bytes: string | Buffer, waitMs = 1500, localAddress?: string): Promise<{ data: Buffer; closed: boolean }> {
  const a = await exchange(port, bytes, { waitMs, localAddress });
  return { data: a.data, closed: a.closed };
}

export function parseResponse(data: Buffer): RawResponse | null {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const head = data.subarray(0, end).toString('latin1');
  const lines = head.split('\r\n');
  const status = Number(lines[0].split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    const k = l.slice(0, i).trim().toLowerCase();
    headers[k] = headers[k] === undefined ? l.slice(i + 1).trim() : `${headers[k]}, ${l.slice(i + 1).trim()}`;
  }
  return { status, headers, rawHead: head, body: data.subarray(end + 4), closed: false };
}

export async function rawRequest(port: number, bytes: string | Buffer, waitMs = 1500): Promise<RawResponse & { closed: boolean }> {
  const { data, closed } = await rawExchange(port, bytes, waitMs);
  const r = parseResponse(data);
  if (r === null) return { status: 0, headers: {}, rawHead: '', body: data, closed };
  return { ...r, closed };
}

/** A client with its own connection pool; call close() in t.after. */
export function httpClient(opts: { localAddress?: string; connections?: number } = {}) {
  const agent = new Agent({ connections: opts.connections ?? 16, localAddress: opts.localAddress, keepAliveTimeout: 4000 });
  return {
    agent,
    async get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
      const r = await request(url, { dispatcher: agent, headers });
      return { status: r.statusCode, headers: r.headers, body: await r.body.text() };
    },
    async send(url: string, init: { method: string; headers?: Record<string, string>; body?: string | Buffer }): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
      const r = await request(url, { dispatcher: agent, method: init.method as 'POST', headers: init.headers, body: init.body });
      return { status: r.statusCode, headers: r.headers, body: await r.body.text() };
    },
    close: () => agent.close(),
  };
}
