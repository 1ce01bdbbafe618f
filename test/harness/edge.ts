// Starts a real Portcullis edge (uWS listener on a free port) from YAML text, in this process.
import { createServer, type AddressInfo } from 'node:net';
import { loadConfigText } from '../../edge/config/load.js';
import { startEdge, type EdgeOptions, type RunningEdge } from '../../edge/edge.js';
import type { EdgeEvent } from '../../edge/events.js';

/**
 * Top of an edge config for tests that load from one address: a listener on {{PORT}}, no access log,
 * and the built-in per-client limits off (their defaults would answer 429 to a test's own traffic).
 */
export const OPEN_EDGE = `listen: [{ address: "127.0.0.1:{{PORT}}" }]
access_log: { path: "off" }
limits: { client: { requests: { limit: 0 }, in_flight: 0 } }
`;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as AddressInfo).port; s.close(() => resolve(p)); });
  });
}

export interface TestEdge {
  edge: RunningEdge;
  url: string;
  port: number;
  events: EdgeEvent[];
  stop(): Promise<void>;
}

/** `yaml` may contain {{PORT}}, replaced by a free port for the listener. */
export async function startTestEdge(yaml: string, opts: EdgeOptions = {}): Promise<TestEdge> {
  const port = await freePort();
  const text = yaml.replaceAll('{{PORT}}', String(port));
  const cfg = loadConfigText(text, 'test.yaml', { PORTCULLIS_ADMIN_TOKEN: 'test-token-0123456789' });
  const edge = await startEdge(cfg, opts);
  const events: EdgeEvent[] = [];
  edge.bus.subscribe((e) => { events.push(e); });
  return { edge, url: `http://127.0.0.1:${port}`, port, events, stop: () => edge.stop() };
}
