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
  ['а', 'a'], ['в', 'b'], ['ь', 'b'], ['с', 'c'], ['ԁ', 'd'], ['е', 'e'], ['ё', 'e'], ['һ', 'h'], ['н', 'h'], ['і', 'i'], ['ї', 'i'], ['ӏ', 'l'],
  ['ј', 'j'], ['к', 'k'], ['м', 'm'], ['о', 'o'], ['р', 'p'], ['ԛ', 'q'], ['г', 'r'], ['ѕ', 's'], ['т', 't'], ['ц', 'u'], ['ѵ', 'v'],
  ['ԝ', 'w'], ['х', 'x'], ['у', 'y'], ['ү', 'y'], ['з', '3'], ['ч', '4'], ['б', '6'],
  // Greek
  ['α', 'a'], ['β', 'b'], ['ϲ', 'c'], ['ε', 'e'], ['η', 'n'], ['ι', 'i'], ['κ', 'k'], ['ν', 'v'], ['ο', 'o'], ['ρ', 'p'], ['τ', 't'],
  ['υ', 'u'], ['χ', 'x'], ['γ', 'y'], ['ζ', 'z'], ['ϳ', 'j'], ['ω', 'w'],
  // Armenian
  ['օ', 'o'], ['ս', 'u'], ['ո', 'n'], ['հ', 'h'], ['զ', 'q'], ['ց', 'g'], ['ք', 'p'],
  // Latin extensions and IPA
  ['ı', 'i'], ['ɡ', 'g'], ['ɑ', 'a'], ['ɩ', 'i'], ['ʟ', 'l'], ['ɴ', 'n'], ['ʀ', 'r'], ['ʏ', 'y'], ['ᴅ', 'd'], ['ᴇ', 'e'], ['ᴋ', 'k'],
  ['ᴍ', 'm'], ['ᴏ', 'o'], ['ᴘ', 'p'], ['ᴛ', 't'], ['ᴜ', 'u'], ['ᴠ', 'v'], ['ᴡ', 'w'], ['ᴢ', 'z'], ['ꜱ', 's'], ['ƅ', 'b'],
];
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
  const n = s.normalize('NFKC').toLowerCase().replace(INVISIBLE, '');
  let out = '';
  let from = 0;
  for (let i = 0; i < n.length; i++) {
    const c = n.charCodeAt(i);
    if (c < 128) continue;
    const m = CONFUSABLES.get(c);
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
