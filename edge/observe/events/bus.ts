// The event bus: every stage reports what happened here (health changes, blocks, reloads,
// admin actions). Sinks (log, Redis stream, WebSocket feed) subscribe. emit() never blocks and
// never throws: a sink that falls behind drops and counts, it never slows the request path.
// The event shape is fixed and documented in edge/observe/events/schema.ts and docs/events.md; build events
// with the helpers in edge/observe/events/build.ts so that they are schema-valid.
import { hostname } from 'node:os';

export type EventType =
  | 'health' | 'deny' | 'tarpit' | 'drop' | 'ban' | 'unban' | 'rate_limit' | 'log_only'
  | 'guard' | 'deadline' | 'redis' | 'reload' | 'admin' | 'auth_failure' | 'queue' | 'error'
  | 'lifecycle';

export const EVENT_TYPES: readonly EventType[] = [
  'health', 'deny', 'tarpit', 'drop', 'ban', 'unban', 'rate_limit', 'log_only',
  'guard', 'deadline', 'redis', 'reload', 'admin', 'auth_failure', 'queue', 'error', 'lifecycle',
];

export interface EdgeEvent {
  type: EventType;
  /** Wall-clock ISO time, filled by the bus when absent. */
  time?: string;
  /** Edge node that produced the event, filled by the bus when absent. */
  node?: string;
  [field: string]: unknown;
}

export type EventListener = (ev: EdgeEvent) => void;

export interface SubscribeOptions {
  /** Also receive events other nodes produced (read back from the shared Redis stream). */
  remote?: boolean;
}

export class EventBus {
  private listeners: EventListener[] = [];
  private remoteListeners: EventListener[] = [];
  /** Events a listener threw on (a broken sink must not break the emitter). */
  failures = 0;
  /** Name stamped into every local event (`node`). */
  readonly node: string;
  // One ISO string per millisecond: a burst re-uses it instead of formatting a Date per event.
  private lastMs = 0;
  private lastIso = '';

  constructor(opts: { node?: string } = {}) {
    this.node = opts.node ?? hostname();
  }

  subscribe(fn: EventListener, opts: SubscribeOptions = {}): () => void {
    this.listeners.push(fn);
    if (opts.remote === true) this.remoteListeners.push(fn);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== fn);
      this.remoteListeners = this.remoteListeners.filter((l) => l !== fn);
    };
  }

  get hasListeners(): boolean { return this.listeners.length > 0; }

  /** Current time as ISO text, cached per millisecond. */
  isoNow(): string {
    const ms = Date.now();
    if (ms !== this.lastMs) { this.lastMs = ms; this.lastIso = new Date(ms).toISOString(); }
    return this.lastIso;
  }

  emit(ev: EdgeEvent): void {
    if (this.listeners.length === 0) return;
    if (ev.time === undefined) ev.time = this.isoNow();
    if (ev.node === undefined) ev.node = this.node;
    const ls = this.listeners;
    for (let i = 0; i < ls.length; i++) {
      try { ls[i](ev); } catch { this.failures++; }
    }
  }

  /**
   * An event another node produced (read from the shared stream). Only listeners subscribed with
   * `{ remote: true }` (the WebSocket feed) get it: the log and the stream already have it.
   */
  deliverRemote(ev: EdgeEvent): void {
    const ls = this.remoteListeners;
    for (let i = 0; i < ls.length; i++) {
      try { ls[i](ev); } catch { this.failures++; }
    }
  }
}
