// Readiness: may this node take traffic right now? `/healthz` answers it (200 / 503 with the reasons)
// and keepalived's track script asks it every second (`portcullis health`), so the answer must be
// cheap, honest and explain itself. It is composed from small independent checks over one snapshot
// of the node: each check names one reason; a *blocking* reason makes the node not ready (503), a
// non-blocking one (a degraded dependency) is reported while the node stays ready (200).
// Adding a reason = one function in CHECKS.

/** What the checks look at: a snapshot taken per /healthz request (no I/O). */
export interface NodeSnapshot {
  /** Listeners bound and the first ruleset loaded (false before start() returned). */
  started: boolean;
  /** A graceful stop has begun (listeners closing). */
  stopping: boolean;
  /** A planned hand-over: not ready on purpose while traffic moves to the peer. */
  draining: { sinceMs: number; graceMs: number } | null;
  /** Listeners configured, and how many of them accept connections now. */
  listeners: { total: number; open: number };
  /** Per backend: servers that can take new traffic (state up), out of all. */
  backends: readonly { name: string; up: number; servers: number }[];
  /** Shared counters' Redis: `degraded` is reported but never blocks (limits are then enforced locally). */
  redis?: { state: 'ok' | 'degraded' | 'off'; reason: string | null };
}

export interface Reason {
  /** Stable machine-readable code (starting, draining, stopping, listeners, no_server …). */
  code: string;
  /** For the operator: what is wrong. */
  message: string;
  /** True: the node must not get traffic (503). False: reported, still ready. */
  blocking: boolean;
}

export interface Readiness {
  ready: boolean;
  /** `ready`, `degraded` (ready with non-blocking reasons) or the first blocking reason's code. */
  status: string;
  reasons: Reason[];
}

type Check = (s: NodeSnapshot, now: number) => Reason | null;

const starting: Check = (s) => (s.started ? null : { code: 'starting', message: 'listeners are not open yet', blocking: true });

const stopping: Check = (s) => (s.stopping ? { code: 'stopping', message: 'the node is stopping', blocking: true } : null);

const draining: Check = (s, now) => {
  if (s.draining === null) return null;
  const left = Math.max(0, s.draining.graceMs - (now - s.draining.sinceMs));
  return { code: 'draining', message: `draining for a planned hand-over (${Math.ceil(left / 1000)} s of grace left, then in-flight requests finish and the node stops)`, blocking: true };
};

const listenersOpen: Check = (s) => (s.started && s.listeners.open < s.listeners.total
  ? { code: 'listeners', message: `${s.listeners.total - s.listeners.open} of ${s.listeners.total} listener(s) not accepting`, blocking: true }
  : null);

const serverUp: Check = (s) => {
  if (s.backends.some((b) => b.up > 0)) return null;
  const detail = s.backends.map((b) => `${b.name} 0/${b.servers}`).join(', ');
  return { code: 'no_server', message: `no backend has a server up (${detail})`, blocking: true };
};

const redisShared: Check = (s) => (s.redis?.state === 'degraded'
  ? { code: 'redis', message: `shared counters' Redis is unusable (${s.redis.reason ?? 'unknown'}): limits are enforced locally at limit / node_count`, blocking: false }
  : null);

const CHECKS: readonly Check[] = [starting, stopping, draining, listenersOpen, serverUp, redisShared];

export function readiness(s: NodeSnapshot, now: number = Date.now()): Readiness {
  const reasons: Reason[] = [];
  for (const check of CHECKS) {
    const r = check(s, now);
    if (r !== null) reasons.push(r);
  }
  const first = reasons.find((r) => r.blocking);
  return { ready: first === undefined, status: first?.code ?? (reasons.length > 0 ? 'degraded' : 'ready'), reasons };
}
