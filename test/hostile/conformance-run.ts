// Runs the conformance corpus (cases.ts) against one HTTP/1.1 front end in front of a recording
// raw origin, and judges each case: did the client get the strict answer, and did the origin get
// exactly what it should (nothing, or these requests byte for byte)? Shared by the test
// (conformance.test.ts, per engine) and the load harness (`npm run loadtest -- conformance`).
import type { RawOrigin, RawOriginRequest } from '../harness/origin.js';
import { exchange, type Answer } from '../harness/raw-client.js';
import type { ConformanceCase, OriginWant } from './cases.js';

export interface CaseResult {
  id: string;
  answer: Answer;
  /** Complete requests carrying the case's tag that reached the origin, in arrival order. */
  seen: RawOriginRequest[];
  /** Some byte carrying the tag reached the origin (complete request or not). */
  anyBytes: boolean;
  /** What happened, in the compact form of the `uws` column: `400 closed`, `— open`, `200 open →1`. */
  label: string;
  /** The strict expectation held. */
  pass: boolean;
  /** Why it did not (empty when it passed). */
  problems: string[];
}

export const tagOf = (c: ConformanceCase): string => `/${c.id}_`;

/** `200,200 open →2`: statuses (or —), the connection's state at the end, complete requests at the origin. */
export function outcomeLabel(a: Answer, seen: number, partial: boolean): string {
  const client = a.statuses.length > 0 ? a.statuses.join(',') : '—';
  const origin = seen > 0 ? ` →${seen}` : partial ? ' →partial' : '';
  return `${client} ${a.closed ? 'closed' : 'open'}${origin}`;
}

function statusList(s: number | readonly number[]): readonly number[] { return typeof s === 'number' ? [s] : s; }

/** Requests at the origin that belong to case `c` (its tag in the target or in a header). */
export function originRequestsOf(origin: RawOrigin, c: ConformanceCase): RawOriginRequest[] {
  const tag = tagOf(c);
  return origin.requests.filter((r) => r.raw.includes(tag));
}

function headerValue(r: RawOriginRequest, name: string): string[] | undefined { return r.headers.get(name); }

function checkOriginRequest(c: ConformanceCase, want: OriginWant, r: RawOriginRequest, i: number): string[] {
  const out: string[] = [];
  const tag = tagOf(c);
  const target = want.target ?? `${tag}${want.path ?? ''}`;
  if (r.method !== want.method) out.push(`origin request ${i + 1}: method ${r.method}, want ${want.method}`);
  // A gateway may forward absolute-form as it came (HAProxy does); its path and Host must still match.
  const absolute = /^https?:\/\/[^/]+(\/.*)?$/i.exec(r.target);
  const gotTarget = absolute && want.target === undefined ? absolute[1] ?? '/' : r.target;
  if (gotTarget !== target) out.push(`origin request ${i + 1}: target ${JSON.stringify(r.target)}, want ${JSON.stringify(target)}`);
  const body = r.body.toString('latin1');
  if (body !== (want.body ?? '')) out.push(`origin request ${i + 1}: body ${JSON.stringify(body.slice(0, 80))}, want ${JSON.stringify(want.body ?? '')}`);
  for (const [name, value] of Object.entries(want.headers ?? {})) {
    const got = headerValue(r, name);
    if (value === null) { if (got !== undefined) out.push(`origin request ${i + 1}: ${name} forwarded (${JSON.stringify(got)})`); } else if (got === undefined || got.length !== 1 || got[0] !== value) out.push(`origin request ${i + 1}: ${name} ${JSON.stringify(got)}, want ${JSON.stringify(value)}`);
  }
  if (want.trailers && r.trailers.join('\n') !== want.trailers.join('\n')) out.push(`origin request ${i + 1}: trailers ${JSON.stringify(r.trailers)}, want ${JSON.stringify(want.trailers)}`);
  if (want.rawIncludes && !r.raw.includes(want.rawIncludes)) out.push(`origin request ${i + 1}: bytes ${JSON.stringify(want.rawIncludes.toString('latin1'))} not forwarded as sent`);
  return out;
}

/** Judges one case from the client's answer and what the origin recorded. */
export function judge(c: ConformanceCase, a: Answer, origin: RawOrigin): CaseResult {
  const tag = tagOf(c);
  const seen = originRequestsOf(origin, c);
  const anyBytes = origin.allBytes().includes(tag);
  const problems: string[] = [];
  const e = c.expect;
  const text = a.data.toString('latin1');
  if (e.kind === 'reject') {
    const allowed = statusList(e.status);
    if (a.statuses.length !== 1 || !allowed.includes(a.statuses[0])) problems.push(`client got ${a.statuses.length ? a.statuses.join(',') : 'no answer'}, want ${allowed.join(' or ')}`);
    else if (!/\r\nconnection: *close\r\n/i.test(text.slice(0, text.indexOf('\r\n\r\n') + 2))) problems.push('the error answer lacks Connection: close');
    if (!a.closed) problems.push('connection left open after the error');
    if (e.partial) {
      if (seen.length > 0) problems.push(`${seen.length} complete request(s) reached the origin`);
      if (origin.allBytes().includes(`${tag}smuggled`)) problems.push('the smuggled request reached the origin');
    } else if (anyBytes) problems.push(`bytes of the request reached the origin${seen.length ? ` (${seen.map((r) => r.line).join(' | ')})` : ''}`);
  } else {
    const want = e.statuses ?? [200];
    const interim = want.some((s) => s < 200);
    const got = interim ? a.statuses : a.statuses.filter((s) => s >= 200);
    if (got.join(',') !== want.join(',')) problems.push(`client got ${got.length ? got.join(',') : 'no answer'}, want ${want.join(',')}`);
    const after = e.after ?? 'open';
    if (after === 'closed' && !a.closed) problems.push('connection left open (it should close after the answer)');
    if (after === 'open' && a.closed) problems.push('connection closed (it should stay open)');
    if (seen.length !== e.origin.length) problems.push(`origin got ${seen.length} request(s) (${seen.map((r) => r.line).join(' | ')}), want ${e.origin.length}`);
    else e.origin.forEach((w, i) => problems.push(...checkOriginRequest(c, w, seen[i], i)));
    const extra = e.check?.(a.data);
    if (extra) problems.push(extra);
  }
  return { id: c.id, answer: a, seen, anyBytes, label: outcomeLabel(a, seen.length, anyBytes && seen.length === 0), pass: problems.length === 0, problems };
}

export interface RunOptions {
  /** Cases sent at once (default 24). */
  batch?: number;
  /** How long to wait for an answer that does not come (default 2000 ms). */
  waitMs?: number;
  host?: string;
}

/** Final answers the client waits for before settling. */
function finalAnswers(c: ConformanceCase): number {
  return c.expect.kind === 'reject' ? 1 : (c.expect.statuses ?? [200]).filter((s) => s >= 200).length;
}

/** Sends one case on a fresh connection. */
export function sendCase(port: number, c: ConformanceCase, o: RunOptions = {}): Promise<Answer> {
  return exchange(port, c.bytes(tagOf(c)), { waitMs: o.waitMs ?? 2000, expectFinal: finalAnswers(c), settleMs: 150, gapMs: c.gapMs, host: o.host });
}

/**
 * Runs `cases` against the front end on `port` (which forwards to `origin`), `batch` at a time on
 * their own connections, and judges each once its batch is done (late origin bytes included).
 */
export async function runCorpus(port: number, origin: RawOrigin, cases: readonly ConformanceCase[], o: RunOptions = {}): Promise<CaseResult[]> {
  const batch = o.batch ?? 24;
  const answers: Answer[] = [];
  for (let i = 0; i < cases.length; i += batch) {
    answers.push(...await Promise.all(cases.slice(i, i + batch).map((c) => sendCase(port, c, o))));
  }
  await new Promise((r) => setTimeout(r, 150)); // bytes still on their way to the origin
  return cases.map((c, i) => judge(c, answers[i], origin));
}
