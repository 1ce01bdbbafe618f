// Response heads as we write them: status lines, a Date refreshed once a second, header lists
// filtered for what must not cross the proxy and for response splitting.
import { STATUS_CODES } from 'node:http';

const STATUS_LINE: string[] = [];
for (let s = 100; s < 600; s++) STATUS_LINE[s] = `HTTP/1.1 ${s} ${STATUS_CODES[s] ?? 'Status'}\r\n`;
export const statusLine = (s: number): string => STATUS_LINE[s] ?? `HTTP/1.1 ${s} Status\r\n`;

/** Response headers we write ourselves, or that must not cross the proxy. */
export const RESPONSE_SKIP = new Set(['content-length', 'transfer-encoding', 'date', 'connection', 'keep-alive',
  'proxy-connection', 'te', 'trailer', 'upgrade', 'proxy-authenticate']);

/** True when s holds CR, LF or NUL (response splitting): a loop, cheaper than a regex on short header text. */
function hasBadHeaderByte(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 13 && (c === 13 || c === 10 || c === 0)) return true;
  }
  return false;
}

let dateText = '';
let dateLine = '';
/**
 * The IMF-fixdate of the current second (the HTTP/2 frame engine's Date field): formatted on first use,
 * then dropped by a timer at the next second boundary (node:http's utcDate does the same) — no clock
 * read per response.
 */
export function dateValue(): string {
  if (dateText === '') {
    const d = new Date();
    dateText = d.toUTCString();
    dateLine = `date: ${dateText}\r\n`;
    setTimeout(resetDate, 1000 - d.getMilliseconds()).unref();
  }
  return dateText;
}
/** "date: <IMF-fixdate>\r\n" of the current second, for HTTP/1.1 heads. */
export function dateHeader(): string {
  if (dateLine === '') dateValue();
  return dateLine;
}
function resetDate(): void { dateText = ''; dateLine = ''; }

/**
 * The header lines of `h` (flat [name, value, …]) as we forward them: framing and hop-by-hop names
 * dropped (we frame the response ourselves), a server's Strict-Transport-Security replaced by the
 * listener's when it sets one, and any name or value with CR, LF or NUL dropped (response splitting).
 */
export function headerLines(h: readonly string[], always: readonly string[]): string {
  let out = '';
  for (let i = 0; i < always.length; i += 2) out += `${always[i]}: ${always[i + 1]}\r\n`;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i];
    if (RESPONSE_SKIP.has(name)) continue;
    if (always.length !== 0 && name === 'strict-transport-security') continue;
    const value = h[i + 1];
    if (hasBadHeaderByte(value) || hasBadHeaderByte(name)) continue;
    out += `${name}: ${value}\r\n`;
  }
  return out;
}

/** True when every character of s is ASCII (one byte in latin1 and UTF-8 alike). */
export function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 127) return false;
  return true;
}
