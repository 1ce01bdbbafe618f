// Collects what an edge reports on its event bus, and asserts like a regtest's log check: the event of
// a refusal carries the termination state, status and rule id that explain it.
import assert from 'node:assert/strict';
import type { EdgeEvent, EventBus } from '../../edge/observe/events/bus.js';
import { waitFor } from './wait.js';

export interface EventExpectation {
  type: string;
  /** Required reason (guard events) — the match, not an assertion. */
  reason?: string;
  term?: string | null;
  status?: number | null;
  rule?: string | null;
}

export class EventCollector {
  readonly events: EdgeEvent[] = [];
  private readonly unsubscribe: () => void;

  constructor(bus: EventBus) {
    this.unsubscribe = bus.subscribe((e) => { this.events.push(e); });
  }

  stop(): void { this.unsubscribe(); }

  /**
   * Waits for the first event of `e.type` (and `e.reason` when given), then asserts its termination
   * state, status and rule id where `e` names them. Returns the event.
   */
  async expect(e: EventExpectation, timeoutMs = 5000): Promise<EdgeEvent> {
    const what = `a ${e.type} event${e.reason !== undefined ? ` (${e.reason})` : ''}`;
    const ev = await waitFor(what, () => this.events.find((x) => x.type === e.type && (e.reason === undefined || x.reason === e.reason)), timeoutMs)
      .catch((err: Error) => { throw new Error(`${err.message}; seen: ${JSON.stringify(this.events.map((x) => [x.type, x.reason ?? null]))}`); });
    const pick = (x: EventExpectation | EdgeEvent): Record<string, unknown> => {
      const out: Record<string, unknown> = {};
      if (e.term !== undefined) out.term = x.term ?? null;
      if (e.status !== undefined) out.status = x.status ?? null;
      if (e.rule !== undefined) out.rule = x.rule ?? null;
      return out;
    };
    assert.deepEqual(pick(ev), pick(e), `${what}: ${JSON.stringify(ev)}`);
    return ev;
  }
}
