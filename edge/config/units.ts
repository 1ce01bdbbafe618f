// Human units in config files: durations ("500ms", "5s", "2m", "1h") and sizes ("64kb", "10mb").
// The loader turns them into numbers (ms, bytes) wherever the schema expects a number.
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const SIZE = /^(\d+(?:\.\d+)?)(b|kb|mb|gb|k|m|g)$/i;
const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_BYTES: Record<string, number> = { b: 1, k: 1024, kb: 1024, m: 1 << 20, mb: 1 << 20, g: 1 << 30, gb: 1 << 30 };

export function parseDuration(text: string): number | null {
  const m = DURATION.exec(text.trim());
  return m ? Math.round(Number(m[1]) * DURATION_MS[m[2]]) : null;
}

export function parseSize(text: string): number | null {
  const m = SIZE.exec(text.trim());
  return m ? Math.round(Number(m[1]) * SIZE_BYTES[m[2].toLowerCase()]) : null;
}

/** Formats ms the way a config author writes it (for summaries and `check`). */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0 && ms > 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
