// Real HTTP origins on loopback for tests: each records what reached it.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  bodyBytes: number;
}

export interface Origin {
  readonly url: string;
  readonly port: number;
  readonly seen: SeenRequest[];
  /** Requests being handled right now, and the most at once. */
  active: number;
  maxActive: number;
  server: Server;
  close(): Promise<void>;
}

export type OriginHandler = (req: IncomingMessage, res: ServerResponse, seen: SeenRequest) => void;

const defaultHandler = (name: string): OriginHandler => (req, res) => {
  if (req.url === '/health') { res.end('ok'); return; }
  res.setHeader('x-origin', name);
  res.end(`hello from ${name}\n`);
};

/** Starts an origin on 127.0.0.1:port (0 = any). The handler runs after the request body was read. */
export async function startOrigin(name: string, handler: OriginHandler = defaultHandler(name), port = 0): Promise<Origin> {
  const seen: SeenRequest[] = [];
  const origin: Partial<Origin> & { active: number; maxActive: number } = { active: 0, maxActive: 0, seen };
  const server = createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    origin.active++;
    origin.maxActive = Math.max(origin.maxActive, origin.active);
    let done = false;
    const end = () => { if (!done) { done = true; origin.active--; } };
    res.on('finish', end);
    res.on('close', end);
    const rec: SeenRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, bodyBytes: 0 };
    seen.push(rec);
    req.on('data', (c: Buffer) => { rec.bodyBytes += c.length; });
    req.on('end', () => handler(req, res, rec));
    req.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(port, '127.0.0.1', () => resolve()); });
  const p = (server.address() as AddressInfo).port;
  (origin as { url: string }).url = `http://127.0.0.1:${p}`;
  (origin as { port: number }).port = p;
  origin.server = server;
  origin.close = () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); });
  return origin as Origin;
}

/** Handler variant that does not wait for the request body (streams it, e.g. for upload tests). */
export function defaultOriginHandler(name: string): OriginHandler { return defaultHandler(name); }
