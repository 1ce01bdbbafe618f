// The default ASN data: the openly licensed `@ip-location-db/asn` package (RouteViews and DB-IP data,
// CC BY 4.0 — attribution: "IP to ASN data by RouteViews and DB-IP (db-ip.com)"), so `geo.asn` works
// on a default install. Its `asn-ipv4-num.csv` / `asn-ipv6-num.csv` (start,end,asn,organisation as
// decimal integers) are read once into sorted typed arrays and searched by binary search: ≈ 0.7 M
// ranges, ≈ 15 MB, about a second at start-up, and only when a rule reads geo.asn. A configured
// GeoLite2-ASN file (geo.asn_db) still wins.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseIp } from '../lib/ip.js';

export const BUNDLED_ASN_PACKAGE = '@ip-location-db/asn';
/** `sources.asn` of a lookup that uses the bundled data. */
export const BUNDLED_ASN_SOURCE = `bundled:${BUNDLED_ASN_PACKAGE}`;

/** Paths of the package's two CSV files, or null when the package is not installed. */
export function bundledAsnFiles(): { v4: string; v6: string } | null {
  try {
    const req = createRequire(import.meta.url);
    return { v4: req.resolve(`${BUNDLED_ASN_PACKAGE}/asn-ipv4-num.csv`), v6: req.resolve(`${BUNDLED_ASN_PACKAGE}/asn-ipv6-num.csv`) };
  } catch {
    return null;
  }
}

/** Splits one CSV line: start,end,asn,organisation (the organisation may be quoted, with "" escapes). */
function fields(line: string): [string, string, string, string] | null {
  const a = line.indexOf(','), b = a < 0 ? -1 : line.indexOf(',', a + 1), c = b < 0 ? -1 : line.indexOf(',', b + 1);
  if (c < 0) return null;
  let org = line.slice(c + 1);
  if (org.startsWith('"') && org.endsWith('"')) org = org.slice(1, -1).replace(/""/g, '"');
  return [line.slice(0, a), line.slice(a + 1, b), line.slice(b + 1, c), org];
}

interface Loaded { count: number; asn: Uint32Array; org: Uint32Array }

/** An ASN record as mmdb readers return it (geo/lookup.ts reads this shape). */
export interface AsnRecord { readonly autonomous_system_number: number; readonly autonomous_system_organization: string }

export class BundledAsn {
  private readonly orgs: string[] = [];
  private readonly records: (AsnRecord | undefined)[] = [];
  private readonly v4: Loaded & { start: Uint32Array; end: Uint32Array };
  private readonly v6: Loaded & { startHi: BigUint64Array; startLo: BigUint64Array; endHi: BigUint64Array; endLo: BigUint64Array };

  constructor(files: { v4: string; v6: string }) {
    const orgIndex = new Map<string, number>();
    const orgOf = (name: string): number => {
      let i = orgIndex.get(name);
      if (i === undefined) { i = this.orgs.length; this.orgs.push(name); orgIndex.set(name, i); }
      return i;
    };
    const v4Lines = readFileSync(files.v4, 'latin1').split('\n');
    const n4 = v4Lines.length;
    const start = new Uint32Array(n4), end = new Uint32Array(n4), asn4 = new Uint32Array(n4), org4 = new Uint32Array(n4);
    let k = 0;
    for (const line of v4Lines) {
      const f = fields(line);
      if (f === null) continue;
      start[k] = Number(f[0]); end[k] = Number(f[1]); asn4[k] = Number(f[2]); org4[k] = orgOf(f[3]); k++;
    }
    this.v4 = { count: k, start, end, asn: asn4, org: org4 };
    const v6Lines = readFileSync(files.v6, 'latin1').split('\n');
    const n6 = v6Lines.length;
    const sh = new BigUint64Array(n6), sl = new BigUint64Array(n6), eh = new BigUint64Array(n6), el = new BigUint64Array(n6);
    const asn6 = new Uint32Array(n6), org6 = new Uint32Array(n6);
    const M = (1n << 64n) - 1n;
    k = 0;
    for (const line of v6Lines) {
      const f = fields(line);
      if (f === null) continue;
      const s = BigInt(f[0]), e = BigInt(f[1]);
      sh[k] = s >> 64n; sl[k] = s & M; eh[k] = e >> 64n; el[k] = e & M; asn6[k] = Number(f[2]); org6[k] = orgOf(f[3]); k++;
    }
    this.v6 = { count: k, startHi: sh, startLo: sl, endHi: eh, endLo: el, asn: asn6, org: org6 };
  }

  get ranges(): number { return this.v4.count + this.v6.count; }

  /** The ASN record of an address (text), or null. Same contract as a maxmind Reader's get(). */
  get(ip: string): AsnRecord | null {
    const b = parseIp(ip);
    if (b === null) return null;
    if (b.length === 4) {
      const x = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
      const t = this.v4;
      let lo = 0, hi = t.count - 1, at = -1;
      while (lo <= hi) { const mid = (lo + hi) >> 1; if (t.start[mid]! <= x) { at = mid; lo = mid + 1; } else hi = mid - 1; }
      return at >= 0 && x <= t.end[at]! ? this.record(t.asn[at]!, t.org[at]!) : null;
    }
    const dv = new DataView(b.buffer, b.byteOffset, 16);
    const xh = dv.getBigUint64(0), xl = dv.getBigUint64(8);
    const t = this.v6;
    let lo = 0, hi = t.count - 1, at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const sh = t.startHi[mid]!;
      if (sh < xh || (sh === xh && t.startLo[mid]! <= xl)) { at = mid; lo = mid + 1; } else hi = mid - 1;
    }
    if (at < 0) return null;
    const eh = t.endHi[at]!;
    return xh < eh || (xh === eh && xl <= t.endLo[at]!) ? this.record(t.asn[at]!, t.org[at]!) : null;
  }

  private record(asn: number, org: number): AsnRecord {
    // One frozen record per organisation index (ASN and organisation go together in this data).
    let r = this.records[org];
    if (r === undefined || r.autonomous_system_number !== asn) {
      r = Object.freeze({ autonomous_system_number: asn, autonomous_system_organization: this.orgs[org]! });
      this.records[org] = r;
    }
    return r;
  }
}
