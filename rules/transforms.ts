// Transformation functions for rule values (ModSecurity's t:…, Cloudflare's url_decode/lower…). Each
// takes a string and returns a string, so they compose: `lower(url_decode(http.query))`,
// `normalize_path(url_decode(http.raw_path))`. None throws on hostile input.
import { canonicalPath, isRefusal, type PathPolicy } from './canonical-path.js';

/** Percent-decoding (UTF-8; `+` is a space): malformed escapes and invalid UTF-8 are kept as written. */
export function urlDecode(s: string): string {
  if (s.indexOf('%') < 0 && s.indexOf('+') < 0) return s;
  const plus = s.replace(/\+/g, ' ');
  try { return decodeURIComponent(plus); } catch { /* lenient below */ }
  // Decode each maximal run of valid escapes on its own; a run that is not UTF-8 stays encoded.
  return plus.replace(/(?:%[0-9a-fA-F]{2})+/g, (run) => { try { return decodeURIComponent(run); } catch { return run; } });
}

/** Removes NUL characters (ModSecurity removeNulls). */
export function removeNulls(s: string): string {
  return s.indexOf('\0') < 0 ? s : s.replace(/\0/g, '');
}

/** Every run of whitespace (including NBSP and line breaks) becomes one space (compressWhitespace). */
export function compressWhitespace(s: string): string {
  return s.replace(/\s+/g, ' ');
}

const LENIENT: PathPolicy = Object.freeze({ pathParams: 'strip', encodedSlash: 'decode', backslash: 'slash', mergeSlashes: true });

/**
 * The path as the most permissive origin resolves it: `;params` stripped, `%2F` and `\` as
 * separators, dot segments and duplicate slashes removed. Unlike http.path (which refuses such
 * forms), it never refuses: input it cannot read as a path comes back unchanged.
 */
export function normalizePathValue(s: string): string {
  const q = s.indexOf('?');
  const path = q < 0 ? s : s.slice(0, q);
  if (path.charCodeAt(0) !== 47 && path.charCodeAt(0) !== 92) return s;
  const r = canonicalPath(path.charCodeAt(0) === 92 ? '/' + path.slice(1) : path, LENIENT);
  return isRefusal(r) ? s : q < 0 ? r : r + s.slice(q);
}

/** Unicode folding: compatibility forms (NFKC: fullwidth ＳＥＬＥＣＴ, ligatures) and case, lower-cased. */
export function fold(s: string): string {
  // ASCII needs only lower-casing; NFKC is the costly part.
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 127) return s.normalize('NFKC').toLowerCase();
  return s.toLowerCase();
}

/** String → string functions by rule-language name. */
export const STRING_TRANSFORMS: Readonly<Record<string, (s: string) => string>> = Object.freeze({
  lower: (s: string) => s.toLowerCase(),
  upper: (s: string) => s.toUpperCase(),
  url_decode: urlDecode,
  remove_nulls: removeNulls,
  compress_whitespace: compressWhitespace,
  normalize_path: normalizePathValue,
  fold,
});
