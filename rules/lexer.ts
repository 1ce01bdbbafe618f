// Tokens for rule files. The lexer never throws: a character it cannot use becomes an `error` token
// that the parser reports with its position. Every token carries its [start, end) offsets.

export type TokenKind =
  | 'ident'     // names and dotted field names: http.user_agent, deny, ua_scanners
  | 'string'    // "text" (value holds the unescaped text)
  | 'int'
  | 'duration'  // 10s, 500ms, 1m, 2h, 1d (value holds milliseconds)
  | 'ip'        // 192.0.2.1, 10.0.0.0/8, 2001:db8::/32 (value holds the text)
  | 'listref'   // $name
  | 'punct'     // { } ( ) [ ] , = == != < <= > >=
  | 'error'
  | 'eof';

export interface Token {
  kind: TokenKind;
  /** Source text for punct/ident; unescaped text for strings; digits for ints. */
  text: string;
  /** Numeric value for int and duration tokens. */
  num: number;
  start: number;
  end: number;
  /** For error tokens: what went wrong. */
  error?: string;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

function isIdentStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95;
}
function isIdentChar(c: number): boolean {
  return isIdentStart(c) || (c >= 48 && c <= 57) || c === 46 || c === 45;
}
function isDigit(c: number): boolean { return c >= 48 && c <= 57; }
function isHex(c: number): boolean { return isDigit(c) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70); }

/** IPv6 (with optional /prefix) starting at `i`, or null. Needs at least two ':' to count. */
function scanIpv6(src: string, i: number): number | null {
  let j = i, colons = 0;
  while (j < src.length) {
    const c = src.charCodeAt(j);
    if (c === 58) colons++;
    else if (!(isHex(c) || c === 46)) break;
    j++;
  }
  if (colons < 2) return null;
  if (src.charCodeAt(j) === 47) { j++; while (j < src.length && isDigit(src.charCodeAt(j))) j++; }
  return j;
}

export function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = src.length;
  const push = (kind: TokenKind, text: string, start: number, end: number, num = 0, error?: string) => {
    const t: Token = { kind, text, num, start, end };
    if (error !== undefined) t.error = error;
    out.push(t);
  };
  while (i < n) {
    const c = src.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10 || c === 13) { i++; continue; }
    if (c === 0xfeff && i === 0) { i++; continue; } // UTF-8 byte-order mark (editors on Windows write one)
    if (c === 35) { while (i < n && src.charCodeAt(i) !== 10) i++; continue; } // # comment
    const start = i;
    // IPv6 literals may start with a hex letter or ':' (fe80::/10, ::1).
    if (isHex(c) || c === 58) {
      const v6end = scanIpv6(src, i);
      if (v6end !== null) { push('ip', src.slice(i, v6end), start, v6end); i = v6end; continue; }
    }
    if (isDigit(c)) {
      let j = i;
      while (j < n && isDigit(src.charCodeAt(j))) j++;
      if (src.charCodeAt(j) === 46 && isDigit(src.charCodeAt(j + 1))) {
        // dotted: IPv4 address or CIDR
        while (j < n && (isDigit(src.charCodeAt(j)) || src.charCodeAt(j) === 46)) j++;
        if (src.charCodeAt(j) === 47) { j++; while (j < n && isDigit(src.charCodeAt(j))) j++; }
        push('ip', src.slice(i, j), start, j); i = j; continue;
      }
      const digits = src.slice(i, j);
      let k = j;
      while (k < n && ((src.charCodeAt(k) >= 97 && src.charCodeAt(k) <= 122))) k++;
      if (k > j) {
        const unit = src.slice(j, k);
        const mult = UNITS[unit];
        if (mult === undefined) {
          push('error', src.slice(i, k), start, k, 0, `unknown duration unit "${unit}" (use ms, s, m, h or d)`);
        } else {
          push('duration', src.slice(i, k), start, k, Number(digits) * mult);
        }
        i = k; continue;
      }
      push('int', digits, start, j, Number(digits)); i = j; continue;
    }
    if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentChar(src.charCodeAt(j))) j++;
      // a trailing '.' or '-' belongs to punctuation-free garbage; keep it in the ident for a clear error
      push('ident', src.slice(i, j), start, j); i = j; continue;
    }
    if (c === 36) { // $list
      let j = i + 1;
      while (j < n && isIdentChar(src.charCodeAt(j))) j++;
      if (j === i + 1) push('error', '$', start, j, 0, 'expected a list name after "$"');
      else push('listref', src.slice(i + 1, j), start, j);
      i = j; continue;
    }
    if (c === 34) { // "string"
      let j = i + 1, val = '', err: string | undefined;
      while (j < n) {
        const d = src.charCodeAt(j);
        if (d === 34) break;
        if (d === 10) { err = 'unterminated string (strings cannot span lines)'; break; }
        if (d === 92) {
          const e = src[j + 1];
          if (e === '"' || e === '\\') { val += e; j += 2; continue; }
          if (e === 'n') { val += '\n'; j += 2; continue; }
          if (e === 't') { val += '\t'; j += 2; continue; }
          if (e === 'x' && isHex(src.charCodeAt(j + 2)) && isHex(src.charCodeAt(j + 3))) {
            val += String.fromCharCode(parseInt(src.slice(j + 2, j + 4), 16)); j += 4; continue;
          }
          // Unknown escapes are kept verbatim so regex escapes like "\d" need no doubling.
          val += '\\'; j += 1; continue;
        }
        val += src[j]; j++;
      }
      if (err === undefined && j >= n) err = 'unterminated string';
      if (err !== undefined) { push('error', src.slice(i, j), start, j, 0, err); i = j; continue; }
      push('string', val, start, j + 1); i = j + 1; continue;
    }
    const two = src.slice(i, i + 2);
    if (two === '==' || two === '!=' || two === '<=' || two === '>=') { push('punct', two, start, i + 2); i += 2; continue; }
    if (two === '&&' || two === '||') {
      push('error', two, start, i + 2, 0, `"${two}" is not an operator here; use "${two === '&&' ? 'and' : 'or'}"`);
      i += 2; continue;
    }
    if ('{}()[],=<>:'.includes(src[i])) { push('punct', src[i], start, i + 1); i++; continue; }
    // `[*]` (every value of a collection: http.headers[*]); a lone `*` elsewhere stays an error.
    if (src[i] === '*' && src[i - 1] === '[' && src[i + 1] === ']') { push('punct', '*', start, i + 1); i++; continue; }
    if (c === 33) { push('error', '!', start, i + 1, 0, '"!" is not an operator; use "not"'); i++; continue; }
    // Skip a whole run of unexpected characters as one error token (keeps error counts sane).
    let j = i + 1;
    while (j < n && !' \t\r\n{}()[],="#$'.includes(src[j]) && !isIdentStart(src.charCodeAt(j)) && !isDigit(src.charCodeAt(j))) j++;
    const bad = src.slice(i, j);
    push('error', bad, start, j, 0, `unexpected character${bad.length > 1 ? 's' : ''} ${JSON.stringify(bad)}`);
    i = j;
  }
  push('eof', '', n, n);
  return out;
}
