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

/**
 * Look-alikes of ASCII letters and digits that NFKC leaves alone: the Cyrillic, Greek, Armenian and
 * Latin-extension letters of Unicode's confusables list (UTS #39, confusables.txt) whose prototype is
 * one ASCII character — "ѕеlеct" written with Cyrillic ѕ and е is "select" after fold(). Keys are
 * lower-case (fold() lower-cases first); upper-case forms that lower-case to a key are covered.
 */
const CONFUSABLE_PAIRS: readonly (readonly [string, string])[] = [
  // Cyrillic
  ['а', 'a'], ['с', 'c'], ['ԁ', 'd'], ['е', 'e'], ['ё', 'e'], ['һ', 'h'], ['і', 'i'], ['ї', 'i'], ['ӏ', 'l'], ['ј', 'j'], ['о', 'o'],
  ['р', 'p'], ['ԛ', 'q'], ['г', 'r'], ['ѕ', 's'], ['ԝ', 'w'], ['х', 'x'], ['у', 'y'], ['ү', 'y'], ['б', '6'],
  // Greek
  ['α', 'a'], ['ϲ', 'c'], ['ι', 'i'], ['ϳ', 'j'], ['η', 'n'], ['ο', 'o'], ['ρ', 'p'], ['ν', 'v'], ['χ', 'x'], ['γ', 'y'],
  // Armenian
  ['օ', 'o'], ['ս', 'u'], ['ո', 'n'], ['հ', 'h'], ['զ', 'q'], ['ց', 'g'],
  // Latin extensions and IPA
  ['ı', 'i'], ['ɡ', 'g'], ['ɑ', 'a'], ['ɩ', 'i'], ['ꜱ', 's'],
];
/**
 * Capitals whose look-alike is an ASCII capital, mapped before lower-casing: Greek Ν is N (its
 * lower case ν imitates v), Cyrillic Н is H, В is B, К is K, М is M, Т is T.
 */
const CONFUSABLE_CAPITALS: readonly (readonly [string, string])[] = [
  ['А', 'A'], ['В', 'B'], ['С', 'C'], ['Е', 'E'], ['Н', 'H'], ['І', 'I'], ['Ј', 'J'], ['К', 'K'], ['М', 'M'], ['О', 'O'], ['Р', 'P'],
  ['Ѕ', 'S'], ['Т', 'T'], ['Х', 'X'], ['Ү', 'Y'], ['Α', 'A'], ['Β', 'B'], ['Ε', 'E'], ['Ζ', 'Z'], ['Η', 'H'], ['Ι', 'I'], ['Κ', 'K'],
  ['Μ', 'M'], ['Ν', 'N'], ['Ο', 'O'], ['Ρ', 'P'], ['Τ', 'T'], ['Υ', 'Y'], ['Χ', 'X'],
];
const CAPITALS: ReadonlyMap<number, string> = new Map(CONFUSABLE_CAPITALS.map(([k, v]) => [k.codePointAt(0) as number, v]));
const CONFUSABLES: ReadonlyMap<number, string> = new Map(CONFUSABLE_PAIRS.map(([k, v]) => [k.codePointAt(0) as number, v]));
/** Format characters that render as nothing (zero-width space/joiners, soft hyphen, word joiner, BOM): dropped. */
const INVISIBLE = /[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]/g;

/**
 * Unicode folding for matching: compatibility forms (NFKC: fullwidth ＳＥＬＥＣＴ, ligatures), lower
 * case, look-alike letters to the ASCII letter they imitate (Cyrillic "ѕеlеct" is "select"), and
 * invisible format characters removed ("sel\u200bect" is "select").
 */
export function fold(s: string): string {
  // ASCII needs only lower-casing; the rest is the costly part.
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 127) return foldUnicode(s);
  return s.toLowerCase();
}

function foldUnicode(s: string): string {
  const n = mapChars(s.normalize('NFKC'), CAPITALS).toLowerCase().replace(INVISIBLE, '');
  return mapChars(n, CONFUSABLES);
}

function mapChars(n: string, map: ReadonlyMap<number, string>): string {
  let out = '';
  let from = 0;
  for (let i = 0; i < n.length; i++) {
    const c = n.charCodeAt(i);
    if (c < 128) continue;
    const m = map.get(c);
    if (m !== undefined) { out += n.slice(from, i) + m; from = i + 1; }
  }
  return from === 0 ? n : out + n.slice(from);
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
