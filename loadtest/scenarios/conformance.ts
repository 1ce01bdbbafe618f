// conformance: the raw-socket HTTP/1.1 conformance corpus (test/hostile/cases.ts) against Portcullis
// (each front-end engine), HAProxy and nginx, each in front of its own recording strict origin. Not a
// load test: it counts, per server, the cases that get the strict answer (status, Connection: close,
// close; exactly the listed requests at the origin) and records the per-case table.
import { spawnSync } from 'node:child_process';
import { startRawOrigin, type RawOrigin } from '../../test/harness/origin.js';
import { CASES, conformanceReply } from '../../test/hostile/cases.js';
import { runCorpus, type CaseResult } from '../../test/hostile/conformance-run.js';
import { newSpec, startTarget } from '../lib/harness.js';
import { portcullisBin } from '../lib/paths.js';
import { stopProxy, type RunningProxy } from '../lib/proxies.js';
import type { ProxySpec } from '../lib/proxy-spec.js';
import type { Scenario, ScenarioContext, ScenarioResult } from '../lib/scenario.js';

type Engine = NonNullable<ProxySpec['engine']>;

/** The engines this Portcullis build offers (`listen[].engine` in its schema), default first. */
function portcullisEngines(): Engine[] {
  const r = spawnSync(portcullisBin, ['schema'], { encoding: 'utf8', timeout: 30_000 });
  return r.status === 0 && r.stdout.includes('"engine"') ? ['http1', 'uws'] : [];
}

interface Target { label: string; results: CaseResult[] }

export const conformance: Scenario = {
  name: 'conformance',
  description: `the ${CASES.length}-case HTTP/1.1 parsing and smuggling corpus: strict answers per server (Portcullis per engine, HAProxy, nginx)`,
  defaultDurationMs: 30_000, // not used: the run lasts as long as the corpus (about 10 s per server)
  supports: ['portcullis', 'haproxy', 'nginx'],
  tools: () => [],
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const targets: Target[] = [];
    const configs: Record<string, string> = {};
    const notes: string[] = [];
    const runOne = async (kind: 'portcullis' | 'haproxy' | 'nginx', label: string, engine?: Engine): Promise<void> => {
      const origin: RawOrigin = await startRawOrigin(conformanceReply);
      let proxy: RunningProxy | null = null;
      try {
        const spec = await newSpec(ctx, label, [{ name: 'raw', port: origin.port }], (s) => { s.engine = engine; s.retries = 0; s.connectionGuard = false; });
        proxy = await startTarget(ctx, kind, spec, label);
        configs[label] = proxy.configFile;
        ctx.setStatus(() => `${label}: ${CASES.length} cases`);
        // A server that never answers a case is waited for 2 s (cases run 24 at a time).
        const results = await runCorpus(spec.listenPort, origin, CASES, { waitMs: 2000 });
        if (origin.framingErrors.length) notes.push(`${label}: the strict origin saw non-strict framing: ${origin.framingErrors.join('; ')}`);
        targets.push({ label, results });
        ctx.log(`${label}: ${results.filter((r) => r.pass).length}/${CASES.length}`);
      } finally {
        if (proxy) await stopProxy(proxy);
        await origin.close();
      }
    };
    if (ctx.proxies.includes('portcullis')) {
      const engines = portcullisEngines();
      if (engines.length === 0) { notes.push('this Portcullis build has no `listen[].engine` key: one run with its only engine'); await runOne('portcullis', 'portcullis'); }
      for (const e of engines) await runOne('portcullis', `portcullis-${e}`, e);
    }
    for (const k of ctx.proxies) if (k !== 'portcullis') await runOne(k, k);

    const counts = targets.map((t) => ({ label: t.label, pass: t.results.filter((r) => r.pass).length, total: t.results.length }));
    const expected = (i: number): string => {
      const e = CASES[i].expect;
      if (e.kind === 'reject') return `${typeof e.status === 'number' ? e.status : e.status.join('/')} + close${e.partial ? ' (body)' : ''}`;
      return `${(e.statuses ?? [200]).join(',')} →${e.origin.length}${e.after === 'closed' ? ' + close' : ''}`;
    };
    const table: string[][] = [['case', 'name', 'strict', ...targets.map((t) => t.label)]];
    CASES.forEach((c, i) => table.push([c.id, c.name, expected(i), ...targets.map((t) => `${t.results[i].pass ? '✓' : '✗'} ${t.results[i].label}`)]));
    table.push(['', 'strict answers', '', ...counts.map((n) => `${n.pass}/${n.total}`)]);
    notes.push('A case passes when the client gets the strict answer (error status + `Connection: close` + close; or the listed answers, in order) and the origin receives exactly the listed requests, byte for byte (or, for an error, not one byte of it). Labels: statuses (— = none), connection state at the end of the wait (2 s), →N complete requests at the origin.');
    notes.push('Portcullis runs with its per-client limits off (limits.client unlimited, limits.connection.in_process: off): the corpus opens about 170 connections from one address in a few seconds, which its connection-rate default would refuse.');
    notes.push('HAProxy and nginx run with the harness\'s generated configs (defaults otherwise): HAProxy has no request-body limit (so a Content-Length above Portcullis\' max_body is not refused), nginx\'s client_max_body_size is its default 1 MB.');
    return {
      headline: `Strict answers out of ${CASES.length} cases: ${counts.map((n) => `${n.label} ${n.pass}`).join(', ')}`,
      table,
      charts: [{ title: 'Cases with the strict answer', kind: 'bar', xLabel: 'server', yLabel: 'cases', categories: counts.map((n) => n.label), series: [{ name: 'strict', points: counts.map((n, i) => [i, n.pass]) }] }],
      settings: { cases: CASES.length, waitMs: 2000, batch: 24, configs },
      raw: Object.fromEntries(targets.map((t) => [t.label, t.results.map((r) => ({ id: r.id, pass: r.pass, label: r.label, reactionMs: r.answer.reactionMs, problems: r.problems }))])),
      notes,
    };
  },
};
