#!/usr/bin/env node
// Entry point: `node dist/loadtest/cli.js <scenario> [--vs haproxy,nginx] [--duration 30s] …`
// Checks prerequisites, runs one scenario, stops everything it started (also on Ctrl-C or error),
// prints the summary and writes JSON + HTML to loadtest/results/.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs, USAGE, UsageError } from './lib/args.js';
import { SCENARIOS } from './scenarios/index.js';
import { checkPortcullis, checkTools } from './lib/prereq.js';
import { portcullisBin, repoRoot, resultsDir } from './lib/paths.js';
import { latestRecords, recordsMarkdown, updateMarkdownFile } from './lib/summary-md.js';
import { machineInfo } from './lib/machine.js';
import { stopAll } from './lib/procs.js';
import { pin } from './lib/procstat.js';
import { printSummary, writeRecord, type RunRecord } from './lib/report.js';
import type { ScenarioContext } from './lib/scenario.js';
import type { ProxyKind } from './lib/proxy-spec.js';

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'report') {
    // Markdown of the latest result per scenario; --write puts it into BENCHMARKS.md.
    const md = recordsMarkdown(latestRecords(resultsDir));
    if (argv.includes('--write')) { updateMarkdownFile(join(repoRoot, 'BENCHMARKS.md'), md); console.log('updated BENCHMARKS.md'); } else console.log(md);
    return 0;
  }
  if (argv[0] === 'list') {
    for (const s of Object.values(SCENARIOS)) console.log(`${s.name.padEnd(13)} ${s.description}`);
    return 0;
  }
  let opts;
  try {
    opts = parseArgs(argv, (name) => SCENARIOS[name]?.defaultDurationMs ?? 30_000);
  } catch (e) {
    if (e instanceof UsageError) { if (e.message) console.error(`error: ${e.message}`); console.error(USAGE); return 2; }
    throw e;
  }
  const scenario = SCENARIOS[opts.scenario];
  if (!scenario) { console.error(`error: unknown scenario "${opts.scenario}"\n${USAGE}`); return 2; }

  const ignored = opts.vs.filter((k) => !scenario.supports.includes(k));
  const proxies: ProxyKind[] = [...(opts.skipPortcullis ? [] : ['portcullis' as const]), ...opts.vs.filter((k) => scenario.supports.includes(k))];
  if (proxies.length === 0) { console.error(`error: ${scenario.name} runs only against ${scenario.supports.join(', ')}`); return 2; }
  const why = scenario.unavailable?.() ?? null;
  if (why !== null) { console.error(`${scenario.name}: skipped: ${why}`); return 0; }
  const tools = new Set(scenario.tools(opts));
  for (const k of proxies) if (k !== 'portcullis') tools.add(k);
  const nproc = cpus().length;
  const pinned = opts.pin && nproc >= 2 && scenario.pin !== false;
  if (pinned) tools.add('taskset');
  const pre = checkTools([...tools]);
  if (!pre.ok) { console.error(`error: ${pre.message}`); return 3; }
  if (proxies.includes('portcullis')) {
    const pc = checkPortcullis(portcullisBin);
    if (!pc.ok) { console.error(`error: ${pc.message}`); return 3; }
  }
  if (ignored.length) console.error(`note: ${scenario.name} does not compare against ${ignored.join(', ')} (see BENCHMARKS.md); running without it`);

  const workDir = mkdtempSync(join(tmpdir(), `portcullis-loadtest-${scenario.name}-`));
  const startedAt = new Date();
  let statusProvider: (() => string) | null = null;
  const statusTimer = setInterval(() => {
    const t = Math.round((Date.now() - startedAt.getTime()) / 1000);
    if (statusProvider) process.stderr.write(`[${scenario.name} ${t}s] ${statusProvider()}\n`);
  }, 2000);
  statusTimer.unref();
  const extraNotes = new Set<string>();
  const ctx: ScenarioContext = {
    opts, proxies, workDir, startedAt,
    proxyCpu: pinned ? '1' : undefined,
    loadCpu: pinned ? '0' : undefined,
    setStatus: (p) => { statusProvider = p; },
    log: (m) => process.stderr.write(`[${scenario.name}] ${m}\n`),
    note: (m) => { if (!extraNotes.has(m)) process.stderr.write(`[${scenario.name}] note: ${m}\n`); extraNotes.add(m); },
  };
  // The harness itself (load generator, origins it forks) stays off the proxy's core.
  if (pinned) pin(process.pid, '0');
  console.error(`running ${scenario.name} against ${proxies.join(', ')}${pinned ? ' (proxy on cpu 1, load on cpu 0)' : ' (unpinned)'}; results → ${opts.outDir}`);
  try {
    const loadBefore = loadavg();
    if (loadBefore[0] > 1) ctx.note(`machine was busy at start (load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')}): absolute numbers are depressed; compare ratios of interleaved rounds`);
    const result = await scenario.run(ctx);
    result.notes.push(...extraNotes);
    result.settings.loadAverageBefore = loadBefore;
    result.settings.loadAverageAfter = loadavg();
    const rec: RunRecord = {
      scenario: scenario.name,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      command: `npm run loadtest -- ${argv.join(' ')}`,
      options: opts,
      machine: machineInfo(repoRoot),
      result,
    };
    console.log(printSummary(rec));
    const files = writeRecord(rec, opts.outDir);
    console.log(`\nwrote ${files.json}\n      ${files.html}`);
    return 0;
  } finally {
    clearInterval(statusTimer);
    await stopAll();
    rmSync(workDir, { recursive: true, force: true });
  }
}

// Exit explicitly: load-generator sockets the proxies never closed must not keep the run alive.
main(process.argv.slice(2)).then((code) => process.exit(code), async (err: Error) => {
  console.error(`error: ${err.message}`);
  await stopAll();
  process.exit(1);
});
