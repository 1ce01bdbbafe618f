// Unit tests of the harness's own logic: wrk report parsing, arguments, durations, /proc parsing,
// statistics and the result files.
import { h2loadCommand, parseH2loadOutput } from '../../loadtest/lib/h2load.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseWrkOutput, parseWrkTime, wrkCommand } from '../../loadtest/lib/wrk.js';
import { parseArgs, USAGE, UsageError } from '../../loadtest/lib/args.js';
import { loopbackAddress, median, parseDuration, percentileSorted, formatDuration } from '../../loadtest/lib/util.js';
import { parseStat } from '../../loadtest/lib/procstat.js';
import { chartSvg, renderHtml, timestampForFile, writeRecord, type RunRecord } from '../../loadtest/lib/report.js';
import { phaseCounts } from '../../loadtest/scenarios/redis-outage.js';
import { closedByPeer, procNetEndpoint } from '../../loadtest/scenarios/slowloris.js';
import { floodAllowance } from '../../loadtest/scenarios/flood.js';
import { peakCapacity } from '../../loadtest/scenarios/peak.js';
import { soakClients } from '../../loadtest/scenarios/soak.js';
import { SCENARIOS } from '../../loadtest/scenarios/index.js';
import { END, START, groupKey, latestRecords, recordsMarkdown, updateMarkdownFile } from '../../loadtest/lib/summary-md.js';
import { formatProfile, summarizeProfile, type CpuProfile } from '../../loadtest/lib/cpuprofile.js';
import { CONN_CLOSE, closeEndedAsReadError, compareVariants, engineLabel } from '../../loadtest/scenarios/throughput.js';
import type { RoundSample, VariantSummary } from '../../loadtest/lib/harness.js';

const WRK_OUT = `Running 10s test @ http://127.0.0.1:8080/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  310.45us  14.20ms   91.37%
    Req/Sec    42.31k     1.12k   44.02k    76.00%
  Latency Distribution
     50%    1.47ms
     75%    1.60ms
     90%    1.78ms
     99%    2.61ms
  421046 requests in 10.00s, 73.49MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 17
Requests/sec:  42097.18
Transfer/sec:      7.35MB
`;

test('wrk report with --latency is parsed into numbers in milliseconds', () => {
  const r = parseWrkOutput(WRK_OUT);
  assert.equal(r.requests, 421046);
  assert.equal(r.durationSec, 10);
  assert.equal(r.requestsPerSec, 42097.18);
  assert.equal(r.latencyMs.avg, 1.52);
  assert.ok(Math.abs(r.latencyMs.stdev - 0.31045) < 1e-9);
  assert.equal(r.latencyMs.max, 14.2);
  assert.deepEqual([r.latencyMs.p50, r.latencyMs.p75, r.latencyMs.p90, r.latencyMs.p99], [1.47, 1.6, 1.78, 2.61]);
  assert.deepEqual(r.socketErrors, { connect: 0, read: 3, write: 0, timeout: 2 });
  assert.equal(r.non2xx, 17);
  assert.ok(Math.abs(r.bytesRead - 73.49 * 1024 * 1024) < 1);
});

test('wrk times in us, ms, s and m all convert; garbage is an error', () => {
  assert.equal(parseWrkTime('250.00us'), 0.25);
  assert.equal(parseWrkTime('2.00s'), 2000);
  assert.equal(parseWrkTime('1.50m'), 90_000);
  assert.throws(() => parseWrkTime('fast'), /cannot read the time "fast"/);
});

test('a wrk report without socket errors or non-2xx lines counts zero of each', () => {
  const clean = WRK_OUT.replace(/ {2}Socket errors.*\n/, '').replace(/ {2}Non-2xx.*\n/, '');
  const r = parseWrkOutput(clean);
  assert.deepEqual(r.socketErrors, { connect: 0, read: 0, write: 0, timeout: 0 });
  assert.equal(r.non2xx, 0);
});

test('a wrk report without the latency table says --latency is missing', () => {
  const noDist = WRK_OUT.replace(/ {2}Latency Distribution[\s\S]*?99%.*\n/, '');
  assert.throws(() => parseWrkOutput(noDist), /--latency/);
  assert.throws(() => parseWrkOutput('connection refused'), /no Latency line/);
});

test('wrk command line: pinned with taskset, one thread, latency table, headers', () => {
  const cmd = wrkCommand({ url: 'http://127.0.0.1:1/', connections: 64, durationMs: 3000, cpu: '0', headers: { 'User-Agent': 'x' } });
  assert.deepEqual(cmd.slice(0, 3), ['taskset', '-c', '0']);
  assert.ok(cmd.includes('--latency') && cmd.includes('-t1') && cmd.includes('-c64') && cmd.includes('-d3s'));
  assert.equal(cmd[cmd.indexOf('-H') + 1], 'User-Agent: x');
  assert.equal(cmd[cmd.length - 1], 'http://127.0.0.1:1/');
});

test('arguments: scenario, --vs list, duration, rounds; mistakes are usage errors', () => {
  const o = parseArgs(['throughput', '--vs', 'haproxy,nginx', '--duration', '30s', '--rounds=3'], () => 10_000);
  assert.equal(o.scenario, 'throughput');
  assert.deepEqual(o.vs, ['haproxy', 'nginx']);
  assert.equal(o.durationMs, 30_000);
  assert.equal(o.rounds, 3);
  assert.equal(o.connections, 64);
  assert.equal(parseArgs(['peak'], () => 12_345).durationMs, 12_345);
  assert.throws(() => parseArgs(['peak', '--vs', 'envoy'], () => 1), (e: unknown) => e instanceof UsageError && /unknown proxy "envoy"/.test(e.message));
  assert.throws(() => parseArgs(['peak', '--duration', 'soon'], () => 1), /expected a duration/);
  assert.throws(() => parseArgs(['peak', '--rounds', '0'], () => 1), /positive integer/);
  assert.throws(() => parseArgs(['peak', 'flood'], () => 1), /one scenario at a time/);
  assert.throws(() => parseArgs([], () => 1), /name a scenario/);
  assert.throws(() => parseArgs(['peak', '--only-vs'], () => 1), /--only-vs needs --vs/);
});

test('every scenario the issue names is registered', () => {
  assert.deepEqual(Object.keys(SCENARIOS).sort(), ['botnet', 'conformance', 'failover', 'flood', 'h2', 'ha-pair', 'origin-chaos', 'peak', 'redis-chaos', 'redis-outage', 'reload-storm', 'rules', 'slowloris', 'soak', 'throughput']);
  // soak is long by design (30 min by default, issue 13); every other scenario fits in a minute.
  for (const s of Object.values(SCENARIOS)) assert.ok(s.defaultDurationMs >= 5000 && s.defaultDurationMs <= (s.name === 'soak' ? 30 * 60_000 : 60_000), `${s.name} is bounded in time`);
});

test('the usage text names every registered scenario (a new user reads it first)', () => {
  const listed = new Set(USAGE.split('\n').filter((l, i, all) => i > 0 && i < all.findIndex((x) => x.startsWith('other:'))).join(' ').replace('scenarios:', '').split(/\s+/));
  for (const name of Object.keys(SCENARIOS)) assert.ok(listed.has(name), `usage lists ${name}`);
});

test('durations, percentiles, medians and client addresses', () => {
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('2m'), 120_000);
  assert.equal(parseDuration('7'), 7000);
  assert.equal(formatDuration(5000), '5s');
  assert.equal(formatDuration(1500), '1500ms');
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentileSorted(sorted, 50), 50);
  assert.equal(percentileSorted(sorted, 99), 99);
  assert.equal(loopbackAddress(40, 0), '127.40.0.2');
  const many = new Set(Array.from({ length: 2000 }, (_, i) => loopbackAddress(77, i)));
  assert.equal(many.size, 2000, '2,000 distinct addresses');
  for (const a of many) assert.match(a, /^127\.77\.\d{1,3}\.\d{1,3}$/);
  assert.throws(() => loopbackAddress(0, 1), /block/);
});

test('/proc/<pid>/stat parsing survives spaces and parentheses in the command name', () => {
  const line = '1234 (node (worker) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 11 0 100 1000 100';
  assert.deepEqual(parseStat(line), { ppid: 1, utime: 250, stime: 75 });
});

test('scenario arithmetic: capacity, allowance, per-phase counts', () => {
  assert.equal(peakCapacity({ origins: 2, latencyMs: 50, maxconn: 10, shoppers: 1, queueMax: 1, queueTimeoutMs: 1, startFactor: 1, endFactor: 1 }), 400);
  assert.equal(floodAllowance(20_000, { attackers: 3, connectionsPerAttacker: 1, shoppers: 1, legitRate: 1, limit: 100, windowMs: 10_000, inFlight: 1, origins: 1 }), 900);
  const tl: [number, number][] = Array.from({ length: 9 }, (_, i) => [i + 1, 0]);
  assert.deepEqual(phaseCounts(tl, 3, 6), [6, 15, 24]);
  // soak: the address rotation wraps by the end of the warm-up (first fifth), capped at 60,000.
  assert.equal(soakClients(200, 30 * 60_000), 14_400);
  assert.equal(soakClients(200, 10 * 3_600_000), 60_000);
  assert.equal(soakClients(200, 60_000), 480);
});

test('results: JSON and a self-contained HTML file named by scenario and time', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lt-report-'));
  try {
    const rec: RunRecord = {
      scenario: 'throughput', startedAt: '2025-11-26T04:05:06.789Z', finishedAt: '2025-11-26T04:06:00.000Z', command: 'npm run loadtest -- throughput',
      options: { scenario: 'throughput', vs: ['haproxy'], durationMs: 1000, rounds: 1, connections: 64, outDir: dir, pin: true, skipPortcullis: false },
      machine: { nproc: 2, cpuModel: 'Test <CPU>', memoryMB: 1, kernel: 'k', gitCommit: 'abc', versions: { node: 'v20' } },
      result: { headline: 'h', table: [['proxy', 'req/s'], ['haproxy', '100']], charts: [{ title: 'c', kind: 'bar', xLabel: '', yLabel: 'req/s', categories: ['haproxy'], series: [{ name: 's', points: [[0, 100]] }] }], settings: {}, raw: { x: 1 }, notes: ['n'] },
    };
    assert.equal(timestampForFile(new Date(rec.startedAt)), '2025-11-26T04-05-06Z');
    const files = writeRecord(rec, dir);
    assert.match(files.json, /throughput-2025-11-26T04-05-06Z\.json$/);
    assert.deepEqual(JSON.parse(readFileSync(files.json, 'utf8')).result.raw, { x: 1 });
    const html = readFileSync(files.html, 'utf8');
    assert.ok(html.includes('<svg') && html.includes('Test &lt;CPU&gt;'), 'inline chart, escaped text');
    assert.ok(!/<script|https?:\/\/(?!www\.w3\.org)/.test(html), 'no scripts or external resources');
    assert.equal(renderHtml(rec), html);
    assert.match(chartSvg({ title: 't', kind: 'line', xLabel: 'x', yLabel: 'y', series: [{ name: 'a', points: [[0, 1], [1, 2]] }] }), /<path d="M/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('slow readers: connections the proxy closed are found in /proc/net/tcp from either side', () => {
  assert.equal(procNetEndpoint('127.88.0.2', 40000), '0200587F:9C40');
  const table = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0200587F:9C40 0100007F:1F90 08 00000000:00000000 00:00000000 00000000     0        0 1 1 0 20 4 30 10 -1
   1: 0300587F:9C41 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
   2: 0100007F:1F90 0400587F:9C42 04 00400000:00000000 00:00000000 00000000     0        0 0 1 0 20 4 30 10 -1
   3: 0100007F:1F90 0300587F:9C41 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1
`;
  assert.deepEqual([...closedByPeer(table)].sort(), ['0200587F:9C40', '0400587F:9C42'], 'CLOSE_WAIT on our side, FIN_WAIT1 on the proxy side; established pairs are not closed');
});

test('BENCHMARKS.md block: latest result per scenario (and per connection count), only between the markers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lt-md-'));
  try {
    const base = (scenario: string, startedAt: string, connections: number, headline: string): RunRecord => ({
      scenario, startedAt, finishedAt: startedAt, command: `npm run loadtest -- ${scenario}`,
      options: { scenario, vs: [], durationMs: 1000, rounds: 1, connections, outDir: dir, pin: true, skipPortcullis: false },
      machine: { nproc: 2, cpuModel: 'cpu', memoryMB: 1, kernel: 'k', gitCommit: 'abc', versions: {} },
      result: { headline, table: [['proxy', 'req/s'], ['portcullis', '1|2']], charts: [], settings: { loadAverageBefore: [1, 2, 3] }, raw: {}, notes: ['a note'] },
    });
    writeRecord(base('throughput', '2025-01-01T00:00:00.000Z', 64, 'old'), dir);
    writeRecord(base('throughput', '2025-01-02T00:00:00.000Z', 64, 'new'), dir);
    writeRecord(base('throughput', '2025-01-01T00:00:00.000Z', 1000, 'c1000'), dir);
    writeRecord(base('peak', '2025-01-01T00:00:00.000Z', 64, 'peaky'), dir);
    const recs = latestRecords(dir);
    assert.deepEqual(recs.map((r) => [groupKey(r), r.result.headline]), [['throughput', 'new'], ['throughput -c1000', 'c1000'], ['peak', 'peaky']]);
    const md = recordsMarkdown(recs);
    assert.match(md, /### throughput -c1000/);
    assert.match(md, /\| portcullis \| 1\\\|2 \|/, 'pipes in cells are escaped');
    const file = join(dir, 'B.md');
    writeFileSync(file, `# B\nintro\n${START}\nstale\n${END}\ntail\n`);
    updateMarkdownFile(file, md);
    const text = readFileSync(file, 'utf8');
    assert.ok(text.startsWith('# B\nintro\n') && text.endsWith(`${END}\ntail\n`) && !text.includes('stale'));
    writeFileSync(file, 'no markers');
    assert.throws(() => updateMarkdownFile(file, md), /markers/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('arguments: --engines picks Portcullis engines (default both), --tls and --profile belong to throughput', () => {
  const d = parseArgs(['throughput'], () => 10_000);
  assert.deepEqual([d.engines, d.tls, d.profile], [['http1', 'uws'], false, false]);
  const o = parseArgs(['throughput', '--engines', 'uws', '--tls', '--profile'], () => 10_000);
  assert.deepEqual([o.engines, o.tls, o.profile], [['uws'], true, true]);
  assert.deepEqual(parseArgs(['throughput', '--engines=http1,uws,http1'], () => 1).engines, ['http1', 'uws']);
  assert.throws(() => parseArgs(['throughput', '--engines', 'h2o'], () => 1), (e: unknown) => e instanceof UsageError && /unknown engine "h2o"/.test(e.message));
  assert.throws(() => parseArgs(['rules', '--tls'], () => 1), /--tls is an option of the throughput scenario/);
  assert.throws(() => parseArgs(['peak', '--profile'], () => 1), /--profile is an option of the throughput and h2 scenarios/);
});

test('arguments: h2 takes --profile and --streams; --h2 belongs to peak and flood', () => {
  const o = parseArgs(['h2', '--vs', 'haproxy', '--profile', '--streams', '20'], () => 10_000);
  assert.deepEqual([o.scenario, o.profile, o.streams], ['h2', true, 20]);
  assert.equal(parseArgs(['peak', '--h2'], () => 1).h2, true);
  assert.equal(parseArgs(['flood', '--h2'], () => 1).h2, true);
  assert.throws(() => parseArgs(['throughput', '--h2'], () => 1), /--h2 is an option of the peak and flood scenarios/);
  assert.throws(() => parseArgs(['h2', '--streams', '0'], () => 1), /positive integer/);
});

test('h2load report parsing: req/s, succeeded, failures and status classes, protocol', () => {
  const out = `finished in 5.00s, 12345.60 req/s, 1.23MB/s
requests: 61728 total, 61738 started, 61728 done, 61700 succeeded, 28 failed, 0 errored, 0 timeout
status codes: 61700 2xx, 0 3xx, 28 4xx, 0 5xx
traffic: 6.15MB (6446540) total, 301.43KB (308665) headers (space savings 95.25%), 5.89MB (6172800) data
                     min         max         mean         sd        +/- sd
time for request:      236us     43.96ms      6.41ms      2.25ms    78.50%
Application protocol: h2
`;
  const r = parseH2loadOutput(out);
  assert.equal(r.requestsPerSec, 12345.6);
  assert.equal(r.requests, 61700);
  assert.equal(r.non2xx, 28);
  assert.equal(r.protocol, 'h2');
  assert.equal(r.bytesRead, 6446540);
  assert.equal(r.latencyMs.avg, 6.41);
  assert.equal(r.latencyMs.max, 43.96);
  assert.deepEqual(h2loadCommand({ url: 'https://127.0.0.1:1/', clients: 16, streams: 10, durationMs: 5000, cpu: '0' }), ['taskset', '-c', '0', 'h2load', '-t', '1', '-c', '16', '-m', '10', '-D', '5', 'https://127.0.0.1:1/']);
});

test('CPU profile summary: self time per function inside the measured windows only, idle apart', () => {
  const frame = (functionName: string, url = '', lineNumber = 0) => ({ functionName, url, lineNumber });
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: frame('(root)') },
      { id: 2, callFrame: frame('(idle)') },
      { id: 3, callFrame: frame('parseHead', 'file:///repo/dist/edge/http1/parser.js', 210) },
      { id: 4, callFrame: frame('writeBuffer') },
    ],
    startTime: 1000, endTime: 2000,
    // Samples at t = 1100 … 1900, 100 µs apart: idle, parse, parse, write | (window ends) parse ×5.
    samples: [2, 3, 3, 4, 3, 3, 3, 3, 3],
    timeDeltas: [100, 100, 100, 100, 100, 100, 100, 100, 100],
  };
  const all = summarizeProfile(profile);
  assert.equal(all.samples, 9);
  assert.equal(all.top[0].name, 'parseHead edge/http1/parser.js:211', 'name, last path parts, 1-based line');
  const win = summarizeProfile(profile, { windows: [[1100, 1400]] });
  assert.equal(win.samples, 4, 'only samples inside the window');
  assert.deepEqual(win.top.map((e) => [e.name, e.sharePct, e.busyPct]), [
    ['parseHead edge/http1/parser.js:211', 50, 66.7],
    ['(idle)', 25, null],
    ['writeBuffer', 25, 33.3],
  ]);
  assert.equal(win.totalMs, 0.4);
  assert.match(formatProfile(win)[1], /^ {2}1\. {2}50\.0 % {2}66\.7 % {2}parseHead/);
  assert.deepEqual(summarizeProfile(profile, { windows: [[5000, 6000]] }).top, [], 'no sample outside the run');
});

test('throughput comparison: each engine against HAProxy in the same mode, the http1 − uws gap, close-as-error rows', () => {
  const sample = (round: number, label: string, rps: number, cpu: number, read = 0, requests = 1000): RoundSample => ({
    round, label, cpuSeconds: 0, cpuUsPerRequest: cpu, rssMB: 1,
    wrk: { requests, durationSec: 1, requestsPerSec: rps, latencyMs: { avg: 1, stdev: 0, max: 1, p50: 1, p75: 1, p90: 1, p99: 1 }, socketErrors: { connect: 0, read, write: 0, timeout: 0 }, non2xx: 0, bytesRead: 0, command: [] },
  });
  const samples = [sample(1, 'portcullis', 700, 30), sample(1, 'portcullis-uws', 720, 29), sample(1, 'haproxy', 1000, 21),
    sample(1, 'portcullis conn-close', 100, 300), sample(1, 'portcullis-uws conn-close', 150, 200, 1000), sample(1, 'haproxy conn-close', 120, 250)];
  const summary: VariantSummary[] = samples.map((s) => ({ label: s.label, requestsPerSec: s.wrk.requestsPerSec, p50Ms: 1, p99Ms: 1, cpuUsPerRequest: s.cpuUsPerRequest, rssMB: 1, errors: 0, rounds: 1 }));
  const plain = compareVariants(samples, summary, ['portcullis', 'portcullis-uws'], ['haproxy'], '');
  assert.equal(plain.ratios['portcullis/haproxy'], 0.7);
  assert.equal(plain.ratios['cpuBound portcullis/haproxy'], 0.7);
  assert.equal(plain.ratios['cpuBound portcullis-uws/haproxy'], 0.724);
  assert.deepEqual(plain.gap, { mode: 'keep-alive', http1Us: 30, uwsUs: 29, diffUs: 1, pairedRatio: 0.972 });
  const close = compareVariants(samples, summary, ['portcullis', 'portcullis-uws'], ['haproxy'], CONN_CLOSE);
  assert.equal(close.ratios['cpuBound portcullis conn-close/haproxy conn-close'], 0.833, 'conn-close rows compare with HAProxy conn-close');
  assert.equal(close.gap?.diffUs, 100);
  assert.deepEqual(closeEndedAsReadError(samples), ['portcullis-uws conn-close']);
  assert.equal(engineLabel('http1'), 'portcullis');
  assert.equal(engineLabel('uws'), 'portcullis-uws');
});

test('TLS and profiled runs are their own BENCHMARKS.md rows', () => {
  const rec = { scenario: 'throughput', options: { connections: 64, tls: true } } as unknown as RunRecord;
  assert.equal(groupKey(rec), 'throughput --tls');
  assert.equal(groupKey({ scenario: 'throughput', options: { connections: 64, profile: true } } as unknown as RunRecord), 'throughput --profile');
  assert.equal(groupKey({ scenario: 'throughput', options: { connections: 1000 } } as unknown as RunRecord), 'throughput -c1000');
});
