// A running edge process: the edge itself, the admin listener, signals (SIGTERM/SIGINT graceful stop,
// SIGHUP reload) and the last line of defence against a crash from one bad request.
import { startEdge, type RunningEdge } from './edge.js';
import type { EdgeConfig } from './config/normalize.js';

export async function runEdgeProcess(cfg: EdgeConfig): Promise<RunningEdge> {
  // An exception escaping one request's handling must not take every other request down.
  process.on('uncaughtException', (err) => {
    process.stderr.write(`${JSON.stringify({ level: 50, time: new Date().toISOString(), msg: 'uncaught exception (process kept alive)', err: String(err?.stack ?? err) })}\n`);
  });
  process.on('unhandledRejection', (err) => {
    process.stderr.write(`${JSON.stringify({ level: 50, time: new Date().toISOString(), msg: 'unhandled rejection (process kept alive)', err: String((err as Error)?.stack ?? err) })}\n`);
  });
  const edge = await startEdge(cfg, { exclusivePort: cfg.workers === 1 });
  const stop = async (signal: string) => {
    process.stderr.write(`portcullis: ${signal}: stopping (in-flight ${edge.pipeline.inFlight}, up to ${cfg.timeouts.gracefulStopMs} ms)\n`);
    await edge.stop();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  process.stderr.write(`portcullis: listening on ${edge.listeners.map((l) => `${cfg.listen.find((c) => c.name === l.name)?.host}:${l.port}`).join(', ')}\n`);
  return edge;
}
