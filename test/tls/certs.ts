// Test certificates made at test time with the openssl CLI: a throw-away CA and leaf certificates
// signed by it (nothing is committed). Each call gets its own temp directory.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCa {
  dir: string;
  /** PEM of the CA certificate (give it to clients as `ca`). */
  ca: Buffer;
  /** Issues a leaf certificate for `names` (DNS SANs, first one also the CN); returns file paths. */
  issue(file: string, names: string[], opts?: { noSan?: boolean }): { cert: string; key: string };
  cleanup(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A throw-away CA; with a test context `t`, its directory is removed when the test ends. */
export function createTestCa(t?: { after(fn: () => unknown): void }): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'pc-tls-test-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=Portcullis Test CA'], dir);
  let serial = 1000;
  const ca: TestCa = {
    dir,
    ca: readFileSync(join(dir, 'ca.crt')),
    issue(file, names, opts = {}) {
      const key = join(dir, `${file}.key`);
      const cert = join(dir, `${file}.crt`);
      const tmpKey = join(dir, `${file}.tmp.key`);
      const tmpCert = join(dir, `${file}.tmp.crt`);
      openssl(['req', ...ec, '-keyout', tmpKey, '-out', `${file}.csr`, '-subj', `/CN=${names[0]}`], dir);
      const ext = opts.noSan ? 'basicConstraints=CA:FALSE\n' : `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\nbasicConstraints=CA:FALSE\n`;
      writeFileSync(join(dir, `${file}.ext`), ext);
      openssl(['x509', '-req', '-in', `${file}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', String(++serial), '-out', tmpCert, '-days', '2', '-extfile', `${file}.ext`], dir);
      // Replace both files at once-ish (as a renewal tool would): write then rename.
      writeFileSync(key, readFileSync(tmpKey));
      writeFileSync(cert, readFileSync(tmpCert));
      return { cert, key };
    },
    cleanup() { rmSync(dir, { recursive: true, force: true }); },
  };
  t?.after(() => ca.cleanup());
  return ca;
}
