// Diagnostics: every error and warning names file:line:col, carries the offending span text (tests
// assert on it), the source line (so it can be printed with a caret without re-reading the file)
// and, where we can guess the author's intent, a hint.

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  /** Stable machine code, e.g. E_UNKNOWN_FIELD, W_SHADOWED. */
  code: string;
  severity: Severity;
  message: string;
  hint?: string;
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based, in characters. */
  col: number;
  /** Number of characters underlined on `line` (at least 1). */
  length: number;
  /** The source text of the span (may extend past the line). */
  spanText: string;
  /** The full text of `line`, for display. */
  lineText: string;
}

/** A half-open character range [start, end) inside one source file. */
export interface Span { start: number; end: number }

/** A rule file's text with a line index, so offsets turn into line:col cheaply. */
export class SourceFile {
  private readonly lineStarts: number[] = [0];
  constructor(readonly name: string, readonly text: string) {
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) this.lineStarts.push(i + 1);
  }

  position(offset: number): { line: number; col: number } {
    let lo = 0, hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid] <= offset) lo = mid; else hi = mid - 1;
    }
    return { line: lo + 1, col: offset - this.lineStarts[lo] + 1 };
  }

  lineText(line: number): string {
    const s = this.lineStarts[line - 1] ?? 0;
    const e = line < this.lineStarts.length ? this.lineStarts[line] - 1 : this.text.length;
    return this.text.slice(s, e).replace(/\r$/, '');
  }

  diag(severity: Severity, code: string, span: Span, message: string, hint?: string): Diagnostic {
    const start = Math.max(0, Math.min(span.start, this.text.length));
    const end = Math.max(start, Math.min(span.end, this.text.length));
    const { line, col } = this.position(start);
    const lineText = this.lineText(line);
    const onLine = Math.min(end - start, Math.max(1, lineText.length - col + 1));
    const d: Diagnostic = {
      code, severity, message, file: this.name, line, col, length: Math.max(1, onLine),
      spanText: this.text.slice(start, end), lineText,
    };
    if (hint !== undefined) d.hint = hint;
    return d;
  }
}

/** Diagnostic for a whole file (I/O errors, size caps) where no span makes sense. */
export function fileDiagnostic(file: string, code: string, message: string, hint?: string,
  severity: Severity = 'error'): Diagnostic {
  const d: Diagnostic = { code, severity, message, file, line: 1, col: 1, length: 1, spanText: '', lineText: '' };
  if (hint !== undefined) d.hint = hint;
  return d;
}

/**
 * `file:line:col: error[CODE]: message`, then the source line with a caret under the span, then
 * the hint. `source` overrides the stored line text (e.g. when the caller holds the file).
 */
export function formatDiagnostic(d: Diagnostic, source?: string): string {
  let lineText = d.lineText;
  if (source !== undefined) lineText = source.split('\n')[d.line - 1]?.replace(/\r$/, '') ?? lineText;
  const out = [`${visible(d.file)}:${d.line}:${d.col}: ${d.severity}[${d.code}]: ${visible(d.message)}`];
  if (lineText !== '') {
    const num = String(d.line);
    const pad = ' '.repeat(num.length);
    // Escaped separately so the caret still sits under the span: before, under and after it.
    let before = visible(lineText.slice(0, d.col - 1));
    let under = visible(lineText.slice(d.col - 1, d.col - 1 + Math.max(1, d.length)));
    let after = visible(lineText.slice(d.col - 1 + Math.max(1, d.length)));
    // A very long line (minified, a pasted list) is cut around the caret.
    if (before.length > CONTEXT) before = '…' + before.slice(before.length - CONTEXT + 1);
    if (under.length > CONTEXT * 2) under = under.slice(0, CONTEXT * 2 - 1) + '…';
    if (after.length > CONTEXT) after = after.slice(0, CONTEXT - 1) + '…';
    // Tabs keep their width in the caret line so the caret lines up in a terminal.
    const prefix = before.replace(/[^\t]/g, ' ');
    out.push(`${pad} |`);
    out.push(`${num} | ${before}${under}${after}`);
    out.push(`${pad} | ${prefix}${'^'.repeat(Math.max(1, under.length))}`);
  }
  if (d.hint) out.push(`  = hint: ${visible(d.hint)}`);
  return out.join('\n');
}

/** Characters of context kept on each side of the caret on a long line. */
const CONTEXT = 80;

/**
 * Text safe to print on a terminal: C0/C1 controls (except tab), DEL, and invisible or bidirectional
 * characters are shown as \xHH / \u{HHHH} escapes, never written raw (a rule file could otherwise
 * move the cursor, clear the screen or reorder what the reader sees).
 */
export function visible(s: string): string {
  return s.replace(/[\x00-\x08\x0a-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g,
    (c) => { const n = c.charCodeAt(0); return n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`; });
}

export function hasErrors(ds: readonly Diagnostic[]): boolean {
  return ds.some((d) => d.severity === 'error');
}

export function countBySeverity(ds: readonly Diagnostic[]): { errors: number; warnings: number } {
  let errors = 0, warnings = 0;
  for (const d of ds) if (d.severity === 'error') errors++; else warnings++;
  return { errors, warnings };
}
