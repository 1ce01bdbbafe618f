// ha-pair: two Portcullis nodes with keepalived in network namespaces (loadtest/ha/lab.ts), shoppers
// on the virtual address, and the four things that happen to a pair: Portcullis on A killed
// (SIGKILL), A drained for maintenance (`portcullis drain`), A's keepalived stopped (SIGTERM), and A
// coming back after each (pre-emption). Reported per phase: time until the other node serves, failed
// requests (and those after the move), requests a browser would have resent; overall: shoppers that
// kept their server, and how long a ban made on A took to hold on B. Needs root.
import { ADDR, Lab, labSkipReason, runPhases, stickiness, type PhaseResult } from '../ha/lab.js';
import type { RequestRecord } from '../ha/driver.js';
import { round } from '../lib/util.js';
import type { Chart, Scenario, ScenarioContext, ScenarioResult } from '../lib/scenario.js';

const SETTINGS = { shoppers: 12, thinkMs: 150, advertInt: '1s', check: 'curl on /healthz every 1 s, timeout 1 s, fall 2, rise 2', drainGrace: '15s (ends when the address has left A)' };

const secs = (ms: number | null): string => (ms === null ? 'never' : `${round(ms / 1000, 2)}`);

export const haPair: Scenario = {
  name: 'ha-pair',
  description: 'two nodes + keepalived in network namespaces (root): kill, drain, keepalived stop, pre-emption — time to serve, failed requests, stickiness, ban propagation',
  // The run takes what its six phases need (≈ 2–3 min); --duration sets how long each phase is watched
  // once the address has moved: duration / 20 (3 s by default).
  defaultDurationMs: 60_000,
  supports: ['portcullis'],
  pin: false,
  // ip, keepalived, redis-server and root: checked by unavailable(), which says what is missing.
  tools: () => [],
  unavailable: () => labSkipReason(),
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const lab = new Lab({ shoppers: SETTINGS.shoppers, thinkMs: SETTINGS.thinkMs });
    try {
      ctx.log(`lab ${lab.id}: namespaces ${Object.values(lab.ns).join(', ')}`);
      await lab.start();
      const banMs = await lab.banPropagationMs('a', 'b');
      const t0 = Date.now();
      await lab.shoppersStart();
      let phase = 'warm-up';
      ctx.setStatus(() => `${phase}`);
      const settleMs = Math.min(10_000, Math.max(1000, Math.round(ctx.opts.durationMs / 20)));
      const phases: PhaseResult[] = await runPhases(lab, ['kill', 'drain', 'keepalived'], { settleMs, onPhase: (name) => { phase = name; } });
      phase = 'done';
      await lab.shoppersStop();
      const records = await lab.records();
      const sticky = stickiness(records);
      const by = (p: string): PhaseResult | undefined => phases.find((x) => x.phase.startsWith(p));
      const kill = by('Portcullis on A killed');
      const drain = by('A drained');
      const ka = by('keepalived on A stopped');
      const backs = phases.filter((p) => p.to === 'a');
      const headline = `kill: B served after ${secs(kill?.servesAfterMs ?? null)} s, ${kill?.failed ?? '?'} failed (${kill?.failedAfterMove ?? '?'} after B served); ` +
        `drain: ${drain?.failed ?? '?'} failed, B after ${secs(drain?.servesAfterMs ?? null)} s; keepalived stopped: B after ${secs(ka?.servesAfterMs ?? null)} s, ${ka?.failed ?? '?'} failed; ` +
        `pre-emption: ${backs.map((b) => secs(b.servesAfterMs)).join(' / ')} s, ${backs.reduce((n, b) => n + b.failed, 0)} failed; ` +
        `${sticky.kept}/${sticky.shoppers} shoppers kept their server; ban on A held on B after ${banMs ?? 'never (> 5 s)'} ms`;
      const table = [
        ['phase', 'serving node', 'serves after (s)', 'address moved after (s)', 'requests', 'failed', 'failed after the move', 'resent (browser)'],
        ...phases.map((p) => [p.phase, `edge-${p.to}`, secs(p.servesAfterMs), secs(p.vipAfterMs), String(p.requests), String(p.failed), String(p.failedAfterMove), String(p.resent)]),
      ];
      return {
        headline, table,
        charts: [perSecondChart(records, t0)],
        settings: { ...SETTINGS, settleMs, addresses: ADDR, sites: 'edge-a site a (priority 150) + origin a1; edge-b site b (priority 100) + origin b1; Redis on the bridge' },
        raw: { phases, stickiness: sticky, banPropagationMs: banMs, timeline: phases.map((p) => ({ phase: p.phase, atSec: round((p.eventAt - t0) / 1000, 1) })) },
        notes: [
          'Failed = a connection error or a 5xx seen by a shopper. "Resent" = a request a browser resends by itself (its reused keep-alive connection was reset before any response byte: the server never saw it); counted apart, not as failures.',
          'Detection after a crash is keepalived\'s: the track script fails twice at 1 s intervals (fall 2), then the instance enters FAULT and the peer takes the address; during that window connections to A are refused.',
          'A drain answers /healthz 503 at once and keeps serving until the address has left the node, then finishes in-flight requests and stops: nothing is refused.',
          'The track script is curl: on this shared 2-core machine a Node start (`portcullis health`) takes 0.6–1 s of wall time under load, close to the 1 s script timeout; ha.keepalived.check_with chooses.',
        ],
      };
    } finally {
      await lab.close();
    }
  },
};

/** Requests per second answered through each node, and failures, over the run. */
function perSecondChart(records: RequestRecord[], t0: number): Chart {
  const series = new Map<string, Map<number, number>>([['served by edge-a', new Map()], ['served by edge-b', new Map()], ['failed', new Map()]]);
  let last = 0;
  for (const r of records) {
    const sec = Math.floor((r.end - t0) / 1000);
    if (sec < 0) continue;
    last = Math.max(last, sec);
    const name = !r.ok ? 'failed' : r.edge === ADDR.a ? 'served by edge-a' : r.edge === ADDR.b ? 'served by edge-b' : null;
    if (name === null) continue;
    const m = series.get(name)!;
    m.set(sec, (m.get(sec) ?? 0) + 1);
  }
  return {
    title: 'Shopper requests per second through the virtual address', kind: 'line', xLabel: 'seconds since the shoppers started', yLabel: 'requests/s',
    series: [...series].map(([name, m]) => ({ name, points: Array.from({ length: last + 1 }, (_v, s) => [s, m.get(s) ?? 0] as [number, number]) })),
  };
}
