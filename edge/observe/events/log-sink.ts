// Events as JSON lines for a SIEM, on pino's asynchronous sonic-boom destination (large writes,
// flushed on stop). Each line is exactly the event object, serialised once with JSON.stringify:
// the event already carries `time` and `type`, so pino's level/time envelope would only add bytes
// (and pino 10 renders an empty level formatter as invalid JSON).
import pino from 'pino';
import type { EdgeEvent } from './bus.js';
import { BufferedSink } from './ring.js';

export interface LogSinkOptions {
  /** `stdout`, `stderr` or a file path (appended, directories created). */
  destination: string;
  /** Events held while the writer catches up (default 16384). */
  capacity?: number;
  /** Bytes sonic-boom may buffer before it drops lines (default 16 MiB). */
  maxBufferBytes?: number;
}

/** Longest time an event waits in the write buffer (ms). */
const FLUSH_MS = 200;

export class LogSink extends BufferedSink {
  private readonly dest: pino.DestinationStream & { flush(cb?: (err?: Error) => unknown): void; end(): void; write(s: string): boolean; on(ev: string, fn: (...a: unknown[]) => void): unknown };

  constructor(opts: LogSinkOptions) {
    super('log', opts.capacity ?? 16384, 1024);
    const target: number | string = opts.destination === 'stdout' ? 1 : opts.destination === 'stderr' ? 2 : opts.destination;
    const d = pino.destination({
      dest: target, sync: false, minLength: 4096, maxLength: opts.maxBufferBytes ?? 16 * 1024 * 1024, mkdir: typeof target === 'string',
      // Writes wait until minLength bytes are buffered: without a periodic flush a lone event (one
      // ban at night) would sit in memory until the next few kB of events. A SIEM tailing the file
      // sees every event within FLUSH_MS.
      periodicFlush: FLUSH_MS,
    });
    this.dest = d as unknown as LogSink['dest'];
    // sonic-boom drops a write when its buffer is over maxLength; count it as a lost event.
    this.dest.on('drop', () => { this.lost(1); this.written--; });
  }

  protected process(batch: EdgeEvent[]): void {
    for (let i = 0; i < batch.length; i++) this.dest.write(JSON.stringify(batch[i]) + '\n');
  }

  /** Write what is queued and close the file. */
  async stop(): Promise<void> {
    this.markClosed();
    await this.flushRing();
    await new Promise<void>((resolve) => {
      this.dest.flush(() => resolve());
    }).catch(() => undefined);
    try { this.dest.end(); } catch { /* already closed */ }
  }
}
