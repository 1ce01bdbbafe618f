// The history on local disk: one append-only file of framed records ([u32 length][u32 CRC-32]
// [record], little-endian, after an 8-byte magic). Every record the store stores or replaces is
// appended (the latest frame of a slot wins on load); when the file grows past twice what the store
// holds, it is rewritten compacted (temporary file + rename, so a crash leaves the old or the new
// file, never half of one). A plain file rather than an embedded database (SQLite, LevelDB): the
// data is a few append streams of small immutable records, no query needs an index on disk (the
// store answers from memory), and nothing native has to be built for Node 20.
//
// A file that does not read back (wrong magic, bad length, CRC mismatch, undecodable record) is
// reported, renamed aside to `<file>.corrupt-<time>`, and the records before the damage are kept.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { dirname } from 'node:path';
import { decodeRecord, type HistoryRecord } from './record.js';

export const MAGIC = Buffer.from('PCHIST1\n', 'latin1');

export interface LoadResult {
  records: HistoryRecord[];
  /** Set when the file was damaged: what was wrong and where the file was moved. */
  corrupt: { reason: string; offset: number; movedTo: string } | null;
}

function frame(rec: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(8 + rec.length);
  b.writeUInt32LE(rec.length, 0);
  b.writeUInt32LE(crc32(rec), 4);
  b.set(rec, 8);
  return b;
}

/** Parses framed records; stops at the first damage. */
export function parseFrames(buf: Buffer, start: number): { records: HistoryRecord[]; error: string | null; offset: number } {
  const records: HistoryRecord[] = [];
  let off = start;
  while (off < buf.length) {
    if (off + 8 > buf.length) return { records, error: 'truncated frame header', offset: off };
    const len = buf.readUInt32LE(off);
    const crc = buf.readUInt32LE(off + 4);
    if (len === 0 || off + 8 + len > buf.length) return { records, error: `bad frame length ${len}`, offset: off };
    const body = buf.subarray(off + 8, off + 8 + len);
    if (crc32(body) !== crc) return { records, error: 'CRC mismatch', offset: off };
    try { records.push(decodeRecord(body)); } catch (e) { return { records, error: `undecodable record: ${(e as Error).message}`, offset: off }; }
    off += 8 + len;
  }
  return { records, error: null, offset: off };
}

export function frameAll(recs: Iterable<Uint8Array>): Buffer {
  const parts: Buffer[] = [];
  for (const r of recs) parts.push(frame(r));
  return Buffer.concat(parts);
}

export class HistoryFile {
  private fd: number | null = null;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes in the file now. */
  size = 0;
  /** Write failures (disk full, permissions): the history goes on in memory; counted and reported. */
  writeErrors = 0;
  lastError: string | null = null;

  constructor(readonly path: string) {}

  /** Reads the file (a missing file is an empty history). Never throws for bad content. */
  load(now = Date.now()): LoadResult {
    if (!existsSync(this.path)) return { records: [], corrupt: null };
    const buf = readFileSync(this.path);
    let parsed: ReturnType<typeof parseFrames>;
    if (buf.length < MAGIC.length || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
      parsed = { records: [], error: 'not a Portcullis history file (bad magic)', offset: 0 };
    } else {
      parsed = parseFrames(buf, MAGIC.length);
    }
    if (parsed.error === null) { this.size = buf.length; return { records: parsed.records, corrupt: null }; }
    const movedTo = `${this.path}.corrupt-${new Date(now).toISOString().replace(/[:.]/g, '-')}`;
    renameSync(this.path, movedTo);
    this.size = 0;
    return { records: parsed.records, corrupt: { reason: parsed.error, offset: parsed.offset, movedTo } };
  }

  /** Queues one stored record; written by flush(). */
  append(rec: Uint8Array): void {
    const f = frame(rec);
    this.pending.push(f);
    this.pendingBytes += f.length;
  }

  get pendingSize(): number { return this.pendingBytes; }

  /** Writes what is queued (synchronously: called once a minute, off the request path). */
  flush(): void {
    if (this.pending.length === 0) return;
    const data = Buffer.concat(this.pending);
    this.pending = []; this.pendingBytes = 0;
    try {
      if (this.fd === null) {
        mkdirSync(dirname(this.path), { recursive: true });
        const fresh = !existsSync(this.path) || statSync(this.path).size === 0;
        this.fd = openSync(this.path, 'a');
        if (fresh) { writeSync(this.fd, MAGIC); this.size = MAGIC.length; }
      }
      writeSync(this.fd, data);
      this.size += data.length;
    } catch (e) {
      this.writeErrors++;
      this.lastError = (e as Error).message;
      this.closeFd();
    }
  }

  /** Rewrites the file with exactly `records` (the store's content). */
  compact(records: Iterable<Uint8Array>): void {
    this.pending = []; this.pendingBytes = 0;
    const tmp = `${this.path}.tmp`;
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      const body = Buffer.concat([MAGIC, frameAll(records)]);
      const fd = openSync(tmp, 'w');
      try { writeSync(fd, body); fsyncSync(fd); } finally { closeSync(fd); }
      this.closeFd();
      renameSync(tmp, this.path);
      this.size = body.length;
    } catch (e) {
      this.writeErrors++;
      this.lastError = (e as Error).message;
    }
  }

  private closeFd(): void {
    if (this.fd !== null) { try { closeSync(this.fd); } catch { /* already gone */ } this.fd = null; }
  }

  close(): void { this.flush(); this.closeFd(); }
}
