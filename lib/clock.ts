// One notion of time for the whole edge. Tests inject a ManualClock so that windows,
// deadlines and slow-start ramps can be driven without sleeping.
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
}

// performance.timeOrigin is a getter into C++ that allocates a number on every read: read it once.
const ORIGIN = performance.timeOrigin;

export const systemClock: Clock = {
  now: () => ORIGIN + performance.now(),
};

export class ManualClock implements Clock {
  constructor(private t = 1_000_000) {}
  now(): number { return this.t; }
  tick(ms: number): void { this.t += ms; }
  set(ms: number): void { this.t = ms; }
}
