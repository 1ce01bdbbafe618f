// The event bus: every stage reports what happened here (health changes, blocks, reloads,
// admin actions). Sinks (log, Redis stream, WebSocket feed) subscribe. emit() never blocks and
// never throws: a sink that falls behind drops and counts, it never slows the request path.
export type EventType =
  | 'health' | 'deny' | 'tarpit' | 'drop' | 'ban' | 'unban' | 'rate_limit' | 'log_only'
  | 'guard' | 'deadline' | 'redis' | 'reload' | 'admin' | 'queue' | 'error' | 'lifecycle';

export interface EdgeEvent {
  type: EventType;
  /** Wall-clock ISO time, filled by the bus when absent. */
  time?: string;
  [field: string]: unknown;
}

export type EventListener = (ev: EdgeEvent) => void;

export class EventBus {
  private listeners: EventListener[] = [];
  /** Events a listener threw on (a broken sink must not break the emitter). */
  failures = 0;

  subscribe(fn: EventListener): () => void {
    this.listeners.push(fn);
    return () => { this.listeners = this.listeners.filter((l) => l !== fn); };
  }

  get hasListeners(): boolean { return this.listeners.length > 0; }

  emit(ev: EdgeEvent): void {
    if (this.listeners.length === 0) return;
    if (ev.time === undefined) ev.time = new Date().toISOString();
    for (const l of this.listeners) {
      try { l(ev); } catch { this.failures++; }
    }
  }
}
