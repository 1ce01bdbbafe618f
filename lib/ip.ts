// IP address and CIDR parsing plus a longest-prefix-match table (IpTrie) for rule lists and maps.
//
// Address conventions (used everywhere in rules/):
//   - IPv4 is 4 bytes, IPv6 is 16 bytes. IPv4-mapped IPv6 (::ffff:a.b.c.d, also written in hex or fully
//     expanded) is mapped back to 4 bytes, so a client reaching a dual-stack listener matches IPv4 rules.
//   - IPv4 and IPv6 are separate spaces: ::/0 matches every IPv6 address but no IPv4 address.
//   - Leading zeros in IPv4 octets ("010.1.1.1") are rejected: some parsers read them as octal.
//   - Zone ids (fe80::1%eth0) and brackets are rejected; callers strip brackets/ports first.

const V4_MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/** Parses decimal IPv4 "a.b.c.d" in text[start, end) into a uint32, or -1. No allocation. */
export function parseIpv4At(text: string, start: number, end: number): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits === 1 && octet === 0) return -1; // leading zero
      octet = octet * 10 + (c - 48);
      if (octet > 255) return -1;
      digits++;
    } else if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else return -1;
  }
  if (digits === 0 || dots !== 3) return -1;
  return value * 256 + octet;
}

function v4Bytes(v: number): Uint8Array {
  return Uint8Array.of(v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
}

function parseIpv6(text: string): Uint8Array | null {
  if (text.length < 2 || text.length > 45) return null;
  const groups: number[] = [];
  let tailV4 = -1;
  let gapAt = -1;
  let i = 0;
  const n = text.length;
  if (text.startsWith('::')) {
    gapAt = 0;
    i = 2;
    if (n === 2) return new Uint8Array(16);
  } else if (text[0] === ':') return null;
  while (i < n) {
    // One group: hex digits up to ':' or end, or a trailing dotted IPv4.
    let j = i;
    while (j < n && text[j] !== ':') j++;
    const part = text.slice(i, j);
    if (part.includes('.')) {
      if (j !== n) return null;
      tailV4 = parseIpv4At(text, i, j);
      if (tailV4 < 0) return null;
      i = n;
      break;
    }
    if (part.length === 0 || part.length > 4 || !/^[0-9A-Fa-f]+$/.test(part)) return null;
    groups.push(parseInt(part, 16));
    if (j === n) { i = n; break; }
    // j is at ':'
    if (text[j + 1] === ':') {
      if (gapAt >= 0) return null; // two '::'
      gapAt = groups.length;
      i = j + 2;
      if (i === n) break;
    } else {
      i = j + 1;
      if (i === n) return null; // trailing single ':'
    }
  }
  const needed = tailV4 >= 0 ? 6 : 8;
  if (gapAt < 0 && groups.length !== needed) return null;
  if (gapAt >= 0 && groups.length >= needed) return null; // '::' must stand for at least one group
  const full: number[] = gapAt < 0
    ? groups
    : [...groups.slice(0, gapAt), ...new Array<number>(needed - groups.length).fill(0), ...groups.slice(gapAt)];
  const out = new Uint8Array(16);
  for (let g = 0; g < full.length; g++) {
    out[g * 2] = full[g]! >> 8;
    out[g * 2 + 1] = full[g]! & 255;
  }
  if (tailV4 >= 0) out.set(v4Bytes(tailV4), 12);
  return out;
}

function isV4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 12; i++) if (b[i] !== V4_MAPPED_PREFIX[i]) return false;
  return true;
}

/**
 * Parses an IPv4 or IPv6 address. Returns 4 bytes for IPv4 (and for IPv4-mapped IPv6), 16 for IPv6,
 * or null when the text is not an address.
 */
export function parseIp(text: string): Uint8Array | null {
  if (typeof text !== 'string') return null;
  if (text.indexOf(':') < 0) {
    const v = parseIpv4At(text, 0, text.length);
    return v < 0 ? null : v4Bytes(v);
  }
  const b = parseIpv6(text);
  if (b === null) return null;
  return isV4Mapped(b) ? b.slice(12) : b;
}

/** Reason a CIDR text is invalid, or null when parseCidr accepts it. For diagnostics. */
export function cidrError(text: string): string | null {
  text = text.trim();
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const b = parseIp(addr);
  if (b === null) return `invalid IP address \`${addr}\``;
  if (slash < 0) return null;
  const p = text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return `invalid prefix length \`/${p}\``;
  const mappedV6 = addr.includes(':') && b.length === 4;
  const max = mappedV6 ? 128 : b.length * 8;
  const prefix = Number(p);
  if (prefix > max) return `prefix length /${prefix} is longer than ${max}`;
  if (mappedV6 && prefix < 96) return `IPv4-mapped prefix /${prefix} is shorter than /96; write an IPv6 prefix without ::ffff: or an IPv4 CIDR`;
  return null;
}

/**
 * The one CIDR parser (rule lists and literals, trusted_proxies, limits.connection, the nftables
 * layer, geo): "addr/prefix" or a bare address (a host prefix /32 or /128), blanks around it ignored.
 * IPv4-mapped IPv6 prefixes of /96 or longer become IPv4 prefixes. Host bits are cleared, as HAProxy
 * reads them: `10.0.0.1/8` is `10.0.0.0/8` everywhere (nft, which refuses host bits, is given the
 * cleared form). Returns null when invalid; cidrError() explains why.
 */
export function parseCidr(text: string): { bytes: Uint8Array; prefix: number } | null {
  if (typeof text !== 'string') return null;
  text = text.trim();
  const slash = text.indexOf('/');
  if (slash < 0) {
    const b = parseIp(text);
    return b === null ? null : { bytes: b, prefix: b.length * 8 };
  }
  const addr = text.slice(0, slash);
  const b = parseIp(addr);
  if (b === null) return null;
  const p = text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
  let prefix = Number(p);
  const mappedV6 = b.length === 4 && addr.includes(':');
  if (mappedV6) {
    if (prefix < 96 || prefix > 128) return null;
    prefix -= 96;
  } else if (prefix > b.length * 8) return null;
  return { bytes: maskBytes(b, prefix), prefix };
}

/** A copy of `b` with the bits after `prefix` cleared. */
export function maskBytes(b: Uint8Array, prefix: number): Uint8Array {
  const out = b.slice();
  for (let bit = prefix; bit < out.length * 8; bit++) out[bit >> 3]! &= ~(1 << (7 - (bit & 7)));
  return out;
}

/** Canonical text of 4 or 16 address bytes (IPv6 in RFC 5952 form). */
export function formatIp(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const g: number[] = [0, 0, 0, 0, 0, 0, 0, 0];
  for (let i = 0; i < 8; i++) g[i] = (b[2 * i]! << 8) | b[2 * i + 1]!;
  return formatIPv6Groups(g);
}

/**
 * RFC 5952 text of 8 IPv6 groups: lower case, no leading zeros, the longest run (≥ 2) of zero groups
 * written as "::", the leftmost on ties. The one IPv6 formatter of the project (rules, geo, identity,
 * firewall).
 */
export function formatIPv6Groups(g: readonly number[]): string {
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) { out += '::'; i += bestLen - 1; continue; }
    if (out.length > 0 && !out.endsWith(':')) out += ':';
    out += g[i]!.toString(16);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// IpTrie: longest-prefix match over IPv4 and IPv6 prefixes.
//
// Rule lists are loaded once and then only read, so instead of a pointer trie the prefixes are
// kept in insertion buffers and, on first lookup after a change, flattened into disjoint address
// ranges: a sorted Uint32Array of range starts plus the value index of each range (the value of the
// longest prefix covering it). A lookup is one binary search (about 21 steps for 1M prefixes, no
// allocation). Inserting the same prefix twice keeps the last value. Interleaving inserts and
// lookups rebuilds the table each time, so build first, then look up (as the list loader does).

const NONE = -1;
/** Addresses covered by an IPv4 prefix of each length. */
const BLOCK_SIZE = Float64Array.from({ length: 33 }, (_, p) => 2 ** (32 - p));
/** IPv4 entries pack (value index << 6 | prefix) into a uint32, so at most 2^26 inserts. */
const MAX_V4_INSERTS = 1 << 26;

export class IpTrie<V> {
  private values: V[] = [];
  // Pending IPv4 prefixes, kept in insertion order.
  private v4Start = new Uint32Array(1024);
  private v4Aux = new Uint32Array(1024); // value index << 6 | prefix length
  private v4Count = 0;
  // Pending IPv6 prefixes (rarer and smaller; built with BigInt).
  private v6: { start: bigint; prefix: number; value: number; seq: number }[] = [];
  private dirty = false;
  // Built IPv4 table.
  private v4Bounds = new Uint32Array(1);
  private v4Vals = Int32Array.of(NONE);
  private v4Len = 1;
  // Built IPv6 table: 4 words per boundary.
  private v6Bounds = new Uint32Array(4);
  private v6Vals = Int32Array.of(NONE);
  private v6Len = 1;
  private distinct = 0;
  private dupPairs: [number, number][] = [];

  /** Number of distinct prefixes. */
  get size(): number {
    if (this.dirty) this.build();
    return this.distinct;
  }

  /** Adds a prefix; host bits beyond `prefix` are ignored. Throws on malformed arguments. */
  insert(bytes: Uint8Array, prefix: number, value: V): void {
    const valueIndex = this.values.length;
    this.values.push(value);
    this.dirty = true;
    if (bytes.length === 4) {
      if (!(prefix >= 0 && prefix <= 32)) throw new RangeError(`IPv4 prefix /${prefix} out of range`);
      const raw = ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
      this.pushV4(prefix === 0 ? 0 : (raw & (0xffffffff << (32 - prefix))) >>> 0, prefix, valueIndex);
    } else if (bytes.length === 16) {
      if (!(prefix >= 0 && prefix <= 128)) throw new RangeError(`IPv6 prefix /${prefix} out of range`);
      let start = 0n;
      for (let i = 0; i < 16; i++) start = (start << 8n) | BigInt(bytes[i]!);
      const hostBits = BigInt(128 - prefix);
      start = (start >> hostBits) << hostBits;
      this.v6.push({ start, prefix, value: valueIndex, seq: valueIndex });
    } else {
      throw new RangeError('address must be 4 or 16 bytes');
    }
  }

  /** Fast path for loaders: IPv4 as uint32 (host bits must already be clear). */
  insertV4(start: number, prefix: number, value: V): void {
    const valueIndex = this.values.length;
    this.values.push(value);
    this.dirty = true;
    this.pushV4(start >>> 0, prefix, valueIndex);
  }

  private pushV4(start: number, prefix: number, valueIndex: number): void {
    if (valueIndex >= MAX_V4_INSERTS) throw new RangeError(`IpTrie holds at most ${MAX_V4_INSERTS} inserts`);
    if (this.v4Count === this.v4Start.length) {
      const cap = this.v4Count * 2;
      const s = new Uint32Array(cap); s.set(this.v4Start); this.v4Start = s;
      const a = new Uint32Array(cap); a.set(this.v4Aux); this.v4Aux = a;
    }
    this.v4Start[this.v4Count] = start;
    this.v4Aux[this.v4Count] = ((valueIndex << 6) | prefix) >>> 0;
    this.v4Count++;
  }

  /** Longest-prefix match for a 4- or 16-byte address. */
  lookup(bytes: Uint8Array): V | undefined {
    if (this.dirty) this.build();
    let idx: number;
    if (bytes.length === 4) {
      idx = this.findV4(((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0);
    } else if (bytes.length === 16) {
      idx = this.findV6(bytes);
    } else return undefined;
    return idx === NONE ? undefined : this.values[idx];
  }

  /** Longest-prefix match for an IPv4 address given as uint32. */
  lookupV4(ip: number): V | undefined {
    if (this.dirty) this.build();
    const idx = this.findV4(ip >>> 0);
    return idx === NONE ? undefined : this.values[idx];
  }

  /**
   * Pairs [earlier, later] of insertion ordinals (0-based insert call numbers) that inserted the
   * same prefix twice; the later one won. Lets loaders report duplicate map keys.
   */
  duplicates(): [number, number][] {
    if (this.dirty) this.build();
    return this.dupPairs;
  }

  private findV4(ip: number): number {
    const b = this.v4Bounds;
    let lo = 0;
    let hi = this.v4Len - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (b[mid]! <= ip) lo = mid; else hi = mid - 1;
    }
    return this.v4Vals[lo]!;
  }

  private findV6(bytes: Uint8Array): number {
    const w0 = ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
    const w1 = ((bytes[4]! << 24) | (bytes[5]! << 16) | (bytes[6]! << 8) | bytes[7]!) >>> 0;
    const w2 = ((bytes[8]! << 24) | (bytes[9]! << 16) | (bytes[10]! << 8) | bytes[11]!) >>> 0;
    const w3 = ((bytes[12]! << 24) | (bytes[13]! << 16) | (bytes[14]! << 8) | bytes[15]!) >>> 0;
    const b = this.v6Bounds;
    let lo = 0;
    let hi = this.v6Len - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      const o = mid * 4;
      // bounds[mid] <= addr ?
      let le: boolean;
      if (b[o]! !== w0) le = b[o]! < w0;
      else if (b[o + 1]! !== w1) le = b[o + 1]! < w1;
      else if (b[o + 2]! !== w2) le = b[o + 2]! < w2;
      else le = b[o + 3]! <= w3;
      if (le) lo = mid; else hi = mid - 1;
    }
    return this.v6Vals[lo]!;
  }

  private build(): void {
    this.dupPairs = [];
    this.distinct = 0;
    this.buildV4();
    this.buildV6();
    this.dirty = false;
  }

  private buildV4(): void {
    const n = this.v4Count;
    const sorted = sortV4(this.v4Start, this.v4Aux, n);
    const starts = sorted.start;
    const aux = sorted.aux;
    // Sweep in (start, prefix) order. CIDRs are nested or disjoint, so a stack of open prefixes
    // (at most 33 deep) gives the innermost value at every boundary. emit() is inlined below as
    // writes to bounds/vals: a range start replaces a boundary at the same address, and equal
    // neighbouring values are merged.
    const bounds = new Uint32Array(2 * n + 1);
    const vals = new Int32Array(2 * n + 1);
    bounds[0] = 0;
    vals[0] = NONE;
    let len = 1;
    const stackEnd = new Float64Array(34);
    const stackVal = new Int32Array(34);
    let sp = 0;
    const dups = this.dupPairs;
    let distinct = 0;
    for (let r = 0; r <= n; r++) {
      // r === n is the end of input: s = Infinity closes every prefix still open.
      let s = Infinity;
      let v = NONE;
      if (r < n) {
        s = starts[r]!;
        const p = aux[r]! & 63;
        // Stable order: among equal prefixes the last inserted comes last and wins.
        if (r + 1 < n && starts[r + 1] === s && (aux[r + 1]! & 63) === p) {
          dups.push([aux[r]! >>> 6, aux[r + 1]! >>> 6]);
          continue;
        }
        distinct++;
        v = aux[r]! >>> 6;
      }
      // close prefixes that end at or before s
      while (sp > 0 && stackEnd[sp - 1]! <= s) {
        sp--;
        const pos = stackEnd[sp]!;
        const val = sp > 0 ? stackVal[sp - 1]! : NONE;
        if (pos < 4294967296) {
          if (bounds[len - 1] === pos) {
            vals[len - 1] = val;
            if (len > 1 && vals[len - 2] === val) len--;
          } else if (vals[len - 1] !== val) { bounds[len] = pos; vals[len] = val; len++; }
        }
      }
      if (r === n) break;
      stackEnd[sp] = s + BLOCK_SIZE[aux[r]! & 63]!;
      stackVal[sp] = v;
      sp++;
      if (bounds[len - 1] === s) {
        vals[len - 1] = v;
        if (len > 1 && vals[len - 2] === v) len--;
      } else if (vals[len - 1] !== v) { bounds[len] = s; vals[len] = v; len++; }
    }
    this.distinct += distinct;
    this.v4Bounds = bounds.slice(0, len);
    this.v4Vals = vals.slice(0, len);
    this.v4Len = len;
  }

  private buildV6(): void {
    const entries = this.v6.slice().sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.prefix - b.prefix || a.seq - b.seq));
    const bounds: bigint[] = [0n];
    const vals: number[] = [NONE];
    const LIMIT = 1n << 128n;
    const emit = (pos: bigint, val: number): void => {
      if (pos >= LIMIT) return;
      const len = bounds.length;
      if (bounds[len - 1] === pos) {
        vals[len - 1] = val;
        if (len > 1 && vals[len - 2] === val) { bounds.pop(); vals.pop(); }
      } else if (vals[len - 1] !== val) {
        bounds.push(pos);
        vals.push(val);
      }
    };
    const stack: { end: bigint; val: number }[] = [];
    for (let r = 0; r < entries.length; r++) {
      const e = entries[r]!;
      const nx = entries[r + 1];
      if (nx && nx.start === e.start && nx.prefix === e.prefix) {
        this.dupPairs.push([e.seq, nx.seq]);
        continue;
      }
      this.distinct++;
      while (stack.length > 0 && stack[stack.length - 1]!.end <= e.start) {
        const top = stack.pop()!;
        emit(top.end, stack.length > 0 ? stack[stack.length - 1]!.val : NONE);
      }
      stack.push({ end: e.start + (1n << BigInt(128 - e.prefix)), val: e.value });
      emit(e.start, e.value);
    }
    while (stack.length > 0) {
      const top = stack.pop()!;
      emit(top.end, stack.length > 0 ? stack[stack.length - 1]!.val : NONE);
    }
    const words = new Uint32Array(bounds.length * 4);
    for (let i = 0; i < bounds.length; i++) {
      const v = bounds[i]!;
      words[i * 4] = Number((v >> 96n) & 0xffffffffn);
      words[i * 4 + 1] = Number((v >> 64n) & 0xffffffffn);
      words[i * 4 + 2] = Number((v >> 32n) & 0xffffffffn);
      words[i * 4 + 3] = Number(v & 0xffffffffn);
    }
    this.v6Bounds = words;
    this.v6Vals = Int32Array.from(vals);
    this.v6Len = bounds.length;
  }
}

/**
 * Stable LSD radix sort of (start, aux) pairs where aux = valueIndex << 6 | prefix: counting sorts by
 * prefix, then the low 16 bits of start, then the high 16 bits. Data is moved rather than an index
 * permutation so that every pass, and the sweep after it, reads memory sequentially (random
 * gathers over million-entry arrays cost more than the sort itself). Stability keeps insertion
 * order among equal keys. Returns the sorted arrays (which may be the input buffers).
 */
function sortV4(start: Uint32Array, aux: Uint32Array, n: number): { start: Uint32Array; aux: Uint32Array } {
  let s1: Uint32Array = start.subarray(0, n);
  let a1: Uint32Array = aux.subarray(0, n);
  let s2: Uint32Array = new Uint32Array(n);
  let a2: Uint32Array = new Uint32Array(n);
  const count = new Uint32Array(65537);
  for (let pass = 0; pass < 3; pass++) {
    count.fill(0);
    if (pass === 0) {
      for (let r = 0; r < n; r++) count[(a1[r]! & 63) + 1]!++;
      for (let k = 0; k < 33; k++) count[k + 1]! += count[k]!;
      for (let r = 0; r < n; r++) {
        const d = count[a1[r]! & 63]!++;
        s2[d] = s1[r]!; a2[d] = a1[r]!;
      }
    } else {
      const shift = pass === 1 ? 0 : 16;
      for (let r = 0; r < n; r++) count[((s1[r]! >>> shift) & 0xffff) + 1]!++;
      for (let k = 0; k < 65536; k++) count[k + 1]! += count[k]!;
      for (let r = 0; r < n; r++) {
        const d = count[(s1[r]! >>> shift) & 0xffff]!++;
        s2[d] = s1[r]!; a2[d] = a1[r]!;
      }
    }
    const ts = s1; s1 = s2; s2 = pass === 0 ? new Uint32Array(n) : ts;
    const ta = a1; a1 = a2; a2 = pass === 0 ? new Uint32Array(n) : ta;
  }
  return { start: s1, aux: a1 };
}

/**
 * The per-client key of an address, as the connection guard keys clients (edge/pipeline/identity.ts): IPv4
 * (and IPv4-mapped IPv6) by address, IPv6 by its `v6prefix` network ("2001:db8:1:2::/64"; the bare
 * address at /128). One client, one key, whatever spelling it arrived in.
 */
export function clientKeyOf(b: Uint8Array, v6prefix = 64): string {
  if (b.length === 4) return formatIp(b);
  return v6prefix >= 128 ? formatIp(b) : `${formatIp(maskBytes(b, v6prefix))}/${v6prefix}`;
}
