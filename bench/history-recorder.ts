// Cost of the history on the request path: the pipeline's observer with and without the history
// recorder, in interleaved A/B rounds (A, B, A, B … on the same warm process, so that a loaded machine
// slows both alike), per request: median of the per-round differences. Not a test; run:
//   node dist/bench/history-recorder.js [requests-per-round] [rounds]
// Instruction counts (docs/history.md "Cost on the request path"):
//   valgrind --tool=callgrind node dist/bench/history-recorder.js --only with|without N
// Two patterns: every request to the same server (the cell cache hits), and round robin over 8
// servers (every request looks its cell up by name).
import { Metrics } from '../edge/observe/metrics.js';
import { MetricsObserver } from '../edge/main/metrics-observer.js';
import type { Transaction } from '../edge/pipeline/transaction.js';
import { HistoryRecorder } from '../edge/history/recorder.js';

// `--only with|without N`: one variant, N requests, then exit — for instruction counts under
// valgrind --tool=callgrind (with minus without, each minus its N = 0 run, divided by N).
const only = process.argv[2] === '--only' ? process.argv[3] : null;
const N = Number(only !== null ? process.argv[4] : process.argv[2] ?? 2_000_000);
const ROUNDS = Number(process.argv[3] ?? 15);

function txs(servers: number): Transaction[] {
  const out: Transaction[] = [];
  for (let i = 0; i < 64; i++) {
    out.push({ backend: 'shop', server: { name: `web${i % servers}` }, serverName: `web${i % servers}`, status: i % 17 === 0 ? 503 : 200, t0: 1000, Tw: i % 9 === 0 ? 3 : 0 } as unknown as Transaction);
  }
  return out;
}

function run(obs: MetricsObserver, list: Transaction[]): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) obs.request(list[i & 63], 1000 + (i & 1023) * 0.05);
  return Number(process.hrtime.bigint() - t0) / N;
}

if (only !== null) {
  const obs = new MetricsObserver(new Metrics(), only === 'with' ? new HistoryRecorder(true) : null);
  run(obs, txs(8));
  process.exit(0);
}

for (const [label, servers] of [['same server', 1], ['round robin over 8 servers', 8]] as const) {
  const list = txs(servers);
  const without = new MetricsObserver(new Metrics(), null);
  const withHist = new MetricsObserver(new Metrics(), new HistoryRecorder(true));
  for (let w = 0; w < 3; w++) { run(without, list); run(withHist, list); }
  const a: number[] = [];
  const b: number[] = [];
  const d: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const x = run(without, list);
    const y = run(withHist, list);
    a.push(x); b.push(y); d.push(y - x);
  }
  const med = (v: number[]): number => [...v].sort((p, q) => p - q)[v.length >> 1];
  process.stdout.write(`${label}: observer without history ${med(a).toFixed(1)} ns/request, with history ${med(b).toFixed(1)} ns/request, `
    + `added ${med(d).toFixed(1)} ns/request (median of ${ROUNDS} interleaved rounds of ${N}; min ${Math.min(...d).toFixed(1)}, max ${Math.max(...d).toFixed(1)})\n`);
}
