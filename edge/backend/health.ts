// Active HTTP health checks: one GET to `path` per interval on a fresh connection (agent: false,
// Connection: close, as HAProxy's `option httpchk` does), judged by the status code. Results use
// HAProxy's check status words so operators recognise them:
//   L7OK   expected status          L7STS  unexpected status
//   L4CON  connection refused/failed L4TOUT no connection within the timeout
//   L7TOUT connected, no response head within the timeout   L7RSP  broken/reset response
// The next check is scheduled when the current one finishes, so checks never overlap. This module
// only measures; deciding up/down (rise/fall) is the pool's job.
import http from 'node:http';
import https from 'node:https';
import type { HealthConfig } from './types.js';

export type CheckStatus = 'L7OK' | 'L7STS' | 'L4CON' | 'L4TOUT' | 'L7TOUT' | 'L7RSP';

export interface CheckResult {
  ok: boolean;
  status: CheckStatus;
  /** HTTP status received, or null. */
  code: number | null;
  durationMs: number;
  /** Human-readable cause, e.g. "Layer7 wrong status 503" or "Layer4 connection problem: ECONNREFUSED". */
  detail: string;
}

export function statusAccepted(expect: readonly number[] | null, code: number): boolean {
  return expect === null ? code >= 200 && code < 400 : expect.includes(code);
}

export class ActiveCheck {
  private timer: NodeJS.Timeout | null = null;
  private req: http.ClientRequest | null = null;
  private running = false;
  private readonly target: URL;

  constructor(
    url: string,
    private readonly cfg: HealthConfig,
    private readonly onResult: (r: CheckResult) => void,
    /** Delay before the first check, so that the servers of a backend are not checked in lockstep. */
    private readonly firstDelayMs: number,
  ) {
    this.target = new URL(cfg.path, url);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(this.firstDelayMs);
  }

  stop(): void {
    this.running = false;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.req !== null) this.req.destroy();
    this.req = null;
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => { this.timer = null; this.runOnce(); }, ms);
    this.timer.unref();
  }

  /** One check; reports exactly once, then schedules the next. */
  private runOnce(): void {
    const t0 = performance.now();
    const u = this.target;
    const mod = u.protocol === 'https:' ? https : http;
    let connected = false;
    let done = false;
    const finish = (ok: boolean, status: CheckStatus, code: number | null, detail: string): void => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      const req = this.req;
      this.req = null;
      if (req !== null) req.destroy();
      if (!this.running) return;
      this.onResult({ ok, status, code, durationMs: Math.round((performance.now() - t0) * 100) / 100, detail });
      this.schedule(this.cfg.intervalMs);
    };
    const deadline = setTimeout(() => {
      if (connected) finish(false, 'L7TOUT', null, `Layer7 timeout: no response within ${this.cfg.timeoutMs}ms`);
      else finish(false, 'L4TOUT', null, `Layer4 timeout: no connection within ${this.cfg.timeoutMs}ms`);
    }, this.cfg.timeoutMs);
    deadline.unref();
    const req = mod.request({
      protocol: u.protocol,
      hostname: u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname,
      port: u.port === '' ? undefined : Number(u.port),
      path: u.pathname + u.search,
      method: 'GET',
      agent: false,
      headers: { host: u.host, 'user-agent': 'portcullis-health-check', connection: 'close' },
    });
    this.req = req;
    req.on('socket', (sock) => {
      sock.once('connect', () => { connected = true; });
      sock.once('secureConnect', () => { connected = true; });
    });
    req.on('response', (res) => {
      const code = res.statusCode ?? 0;
      res.resume(); // the body is not judged; drain it so the socket can close cleanly
      if (statusAccepted(this.cfg.expectStatus, code)) finish(true, 'L7OK', code, `Layer7 check passed: ${code}`);
      else finish(false, 'L7STS', code, `Layer7 wrong status ${code}`);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      const why = err.code ?? err.message;
      if (connected) finish(false, 'L7RSP', null, `Layer7 invalid response: ${why}`);
      else finish(false, 'L4CON', null, `Layer4 connection problem: ${why}`);
    });
    req.end();
  }
}
