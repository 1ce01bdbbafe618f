// Shared helpers for the hostile-input tests: one edge in front of a raw-socket origin, and a raw
// client that stops as soon as it has a complete answer (or the server closed, or time ran out).
import { startRawOrigin, type RawOrigin, type RawReply } from '../harness/origin.js';
import { CLIENT_LIMITS_OFF, edgeYaml, startTestEdge, type TestEdge } from '../harness/edge.js';
import type { EdgeOptions } from '../../edge/main/edge.js';

export { exchange, statusesOf, completeResponses, type Answer } from '../harness/raw-client.js';

export interface Bench {
  edge: TestEdge;
  origin: RawOrigin;
  stop(): Promise<void>;
}

/** An in-process edge whose only backend is a raw origin. `extra` is appended to the YAML. */
export async function startBench(opts: { reply?: RawReply; extra?: string; edge?: EdgeOptions; requestLimits?: string; listener?: string; backendMore?: string } = {}): Promise<Bench> {
  const origin = await startRawOrigin(opts.reply);
  // The per-client guard is off: these tests send hundreds of requests from 127.0.0.1 on purpose.
  const edge = await startTestEdge(edgeYaml({
    limits: `${CLIENT_LIMITS_OFF}, request: { ${opts.requestLimits ?? ''} }`,
    servers: [{ name: 'raw', url: origin.url }],
    listener: opts.listener,
    backendMore: opts.backendMore,
    more: opts.extra,
  }), opts.edge);
  return { edge, origin, stop: async () => { await edge.stop(); await origin.close(); } };
}

/** Header lines the edge adds itself (not part of what the client sent). */
export function clientHeaderLines(lines: readonly string[]): string[] {
  return lines.filter((l) => !/^x-(forwarded-(for|proto|host)|request-id):/i.test(l));
}

export { sleep } from '../harness/wait.js';

/** The front-end engines a listener can use (`listen[].engine`); http1 is the default. */
export const ENGINES = ['http1', 'uws'] as const;
export type Engine = (typeof ENGINES)[number];
/** Listener keys (for startBench's `listener`) selecting `engine`. */
export const engineKey = (engine: Engine): string => `engine: ${engine}`;
