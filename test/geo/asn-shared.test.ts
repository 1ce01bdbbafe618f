// The bundled ASN table (issue 16, item 8): parsed once per process into compact SharedArrayBuffer-
// backed arrays; a worker thread given the edge's shared record reads the main thread's table (it
// does not parse or hold its own copy), and the table keeps no per-line strings alive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { bundledAsnFiles, SHARED_ASN_KEY, type AsnTable } from '../../geo/asn-bundled.js';
import { openGeo } from '../../geo/index.js';

const GEO_INDEX = new URL('../../geo/index.js', import.meta.url).href;

test('a worker thread answers geo.asn from the table the main thread parsed (shared memory, no second parse)', async () => {
  assert.ok(bundledAsnFiles() !== null, '@ip-location-db/asn is installed');
  const shared: Record<string, unknown> = {};
  const geo = await openGeo({ countryDb: 'off', watch: false, shared });
  try {
    assert.equal(geo.lookup('8.8.8.8').asn, 15169);
    const table = shared[SHARED_ASN_KEY] as AsnTable;
    for (const a of [table.v4Start, table.v4End, table.v4Asn, table.v4Org, table.v6Start, table.v6End, table.v6Asn, table.v6Org, table.orgStart, table.orgBytes]) {
      assert.ok(a.buffer instanceof SharedArrayBuffer, 'every array is shared memory');
    }
    // Mark the main thread's copy: a worker that parsed its own table would not see the mark.
    let lo = 0, hi = table.v4Count - 1, at = -1;
    const x = (8 << 24 | 8 << 16 | 8 << 8 | 8) >>> 0;
    while (lo <= hi) { const mid = (lo + hi) >> 1; if (table.v4Start[mid] <= x) { at = mid; lo = mid + 1; } else hi = mid - 1; }
    table.v4Asn[at] = 64512;
    const code = `
      const { workerData, parentPort } = require('node:worker_threads');
      import(workerData.url).then(async ({ openGeo }) => {
        const geo = await openGeo({ countryDb: 'off', watch: false, shared: workerData.shared });
        parentPort.postMessage({ v4: geo.lookup('8.8.8.8').asn, v6: geo.lookup('2001:4860:4860::8888').asn, org: geo.lookup('1.1.1.1').asOrg });
        geo.close();
      });`;
    const w = new Worker(code, { eval: true, workerData: { url: GEO_INDEX, shared } });
    const answer = await new Promise<{ v4: number; v6: number; org: string }>((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
    await w.terminate();
    assert.deepEqual(answer, { v4: 64512, v6: 15169, org: 'Cloudflare, Inc.' });
  } finally {
    geo.close();
  }
});

test('the parsed table is compact: ≈ 14 MB of typed arrays and almost no JavaScript heap', () => {
  const script = `
    const { parseBundledAsn, bundledAsnFiles, BundledAsn } = await import(${JSON.stringify(new URL('../../geo/asn-bundled.js', import.meta.url).href)});
    global.gc(); const before = process.memoryUsage().heapUsed;
    const t = parseBundledAsn(bundledAsnFiles());
    global.gc(); const after = process.memoryUsage().heapUsed;
    let bytes = 0; for (const v of Object.values(t)) if (ArrayBuffer.isView(v)) bytes += v.byteLength;
    const a = new BundledAsn(t);
    console.log(JSON.stringify({ heap: after - before, bytes, ranges: a.ranges, rec: a.get('193.0.6.139') }));`;
  const out = JSON.parse(execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8', cwd: fileURLToPath(new URL('.', import.meta.url)) }).trim()) as { heap: number; bytes: number; ranges: number; rec: { autonomous_system_number: number; autonomous_system_organization: string } };
  assert.ok(out.ranges > 400_000, `${out.ranges} ranges`);
  assert.equal(out.rec.autonomous_system_number, 3333);
  assert.match(out.rec.autonomous_system_organization, /RIPE NCC/);
  assert.ok(out.bytes < 16e6, `${out.bytes} bytes of arrays`);
  assert.ok(out.heap < 8e6, `${out.heap} bytes of JavaScript heap kept (the CSV text and a string per organisation used to stay alive: ≈ 40 MB)`);
});
