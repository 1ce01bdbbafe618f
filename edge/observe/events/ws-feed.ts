// The live event feed behind the admin WebSocket (/api/events/ws). It receives local events and,
// through the shared Redis stream, other nodes' events. Each event is serialised once and sent to
// every client whose server-side filter matches; a client whose socket is backed up (slow browser,
// slow network) misses events and its drop counter grows — the edge never waits for it.
import type { WebSocket } from 'ws';
import type { EdgeEvent, EventBus } from './bus.js';
import { BufferedSink, Recent } from './ring.js';

export interface FeedFilter {
  /** Event types to send; empty = all. */
  types: Set<string>;
  /** Rule id to match exactly; null = any. */
  rule: string | null;
  /** Client address or key to match exactly; null = any. */
  client: string | null;
  /** Node to match exactly; null = any. */
  node: string | null;
}

export function parseFilter(src: { type?: unknown; types?: unknown; rule?: unknown; client?: unknown; node?: unknown }): FeedFilter {
  const t = src.types ?? src.type;
  const list = Array.isArray(t) ? t.map(String) : typeof t === 'string' && t !== '' ? t.split(',') : [];
  const s = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
  return { types: new Set(list.map((x) => x.trim()).filter((x) => x !== '')), rule: s(src.rule), client: s(src.client), node: s(src.node) };
}

export function matches(f: FeedFilter, ev: EdgeEvent): boolean {
  if (f.types.size > 0 && !f.types.has(ev.type)) return false;
  if (f.rule !== null && ev.rule !== f.rule) return false;
  if (f.node !== null && ev.node !== f.node) return false;
  if (f.client !== null) {
    const c = ev.client as { ip?: string; key?: string } | null | undefined;
    const k = ev.key;
    if (!(c && (c.ip === f.client || c.key === f.client)) && k !== f.client) return false;
  }
  return true;
}

interface FeedClient { ws: WebSocket; filter: FeedFilter; dropped: number; sent: number }

export class EventFeed extends BufferedSink {
  private readonly clients = new Set<FeedClient>();
  private readonly recent: Recent<EdgeEvent>;
  private readonly unsubscribe: () => void;
  /** Events not sent to a client because its socket buffer was over the limit. */
  clientDrops = 0;

  constructor(bus: EventBus, opts: { capacity?: number; recent?: number; maxBufferedBytes?: number } = {}) {
    super('websocket', opts.capacity ?? 8192, 256);
    this.recent = new Recent<EdgeEvent>(opts.recent ?? 500);
    this.maxBuffered = opts.maxBufferedBytes ?? 1024 * 1024;
    this.unsubscribe = bus.subscribe(this.offer, { remote: true });
  }

  private readonly maxBuffered: number;

  get clientCount(): number { return this.clients.size; }

  add(ws: WebSocket, filter: FeedFilter): void {
    const c: FeedClient = { ws, filter, dropped: 0, sent: 0 };
    this.clients.add(c);
    ws.on('message', (data) => {
      // {"filter": {"types": ["deny"], "rule": "x", "client": "1.2.3.4"}} replaces the filter.
      try {
        const msg = JSON.parse(String(data)) as { filter?: Record<string, unknown> };
        if (msg.filter && typeof msg.filter === 'object') {
          c.filter = parseFilter(msg.filter);
          ws.send(JSON.stringify({ kind: 'filter', ok: true }));
        }
      } catch {
        ws.send(JSON.stringify({ kind: 'filter', ok: false, error: 'expected JSON {"filter": {...}}' }));
      }
    });
    const remove = (): void => { this.clients.delete(c); };
    ws.on('close', remove);
    ws.on('error', remove);
  }

  /** The latest events (oldest first), optionally filtered. */
  recentEvents(filter?: FeedFilter, limit = 200): EdgeEvent[] {
    const all = this.recent.toArray();
    const out = filter ? all.filter((e) => matches(filter, e)) : all;
    return out.length > limit ? out.slice(out.length - limit) : out;
  }

  protected process(batch: EdgeEvent[]): void {
    for (let i = 0; i < batch.length; i++) {
      const ev = batch[i];
      this.recent.add(ev);
      if (this.clients.size === 0) continue;
      let text: string | null = null;
      for (const c of this.clients) {
        if (!matches(c.filter, ev)) continue;
        if (c.ws.readyState !== 1 || c.ws.bufferedAmount > this.maxBuffered) { c.dropped++; this.clientDrops++; continue; }
        if (text === null) text = JSON.stringify(ev);
        c.ws.send(text);
        c.sent++;
      }
    }
  }

  stop(): void {
    this.markClosed();
    this.unsubscribe();
    for (const c of this.clients) c.ws.close(1001, 'server stopping');
    this.clients.clear();
  }
}
