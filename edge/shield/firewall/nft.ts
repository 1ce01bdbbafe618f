// Runs `nft` to install, inspect and remove our table. Every change goes through `nft -f -` as one
// transaction: either the whole new table is in place or the old state is untouched.
import { spawn } from 'node:child_process';
import { FIREWALL_TABLE_REF } from './render.js';

export interface NftOptions {
  /** nft binary (default "nft", found on PATH; Debian installs /usr/sbin/nft). */
  nft?: string;
  /** Run inside this network namespace (`ip netns exec NAME nft …`); used by tests and containers. */
  netns?: string;
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
}

export interface ApplyOptions extends NftOptions {
  /** Only ask the kernel to validate (`nft -c`): nothing changes. */
  check?: boolean;
}

export class NftError extends Error {
  constructor(message: string, readonly exitCode: number | null, readonly stderr: string) {
    super(message);
    this.name = 'NftError';
  }
}

interface NftResult { code: number; stdout: string; stderr: string }

function runNft(args: string[], stdin: string | null, opts: NftOptions): Promise<NftResult> {
  const nft = opts.nft ?? 'nft';
  const [cmd, argv] = opts.netns === undefined ? [nft, args] : ['ip', ['netns', 'exec', opts.netns, nft, ...args]];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); }, opts.timeoutMs ?? 10_000);
    child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const hint = err.code === 'ENOENT' ? ` (is nftables installed? Debian: apt-get install nftables)` : '';
      reject(new NftError(`cannot run ${cmd}: ${err.message}${hint}`, null, ''));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (signal !== null) reject(new NftError(`${cmd} ${argv.join(' ')} killed by ${signal}`, null, stderr));
      else resolve({ code: code ?? 1, stdout, stderr });
    });
    child.stdin.on('error', () => { /* nft exited early; its exit code and stderr tell why */ });
    child.stdin.end(stdin ?? '');
  });
}

const PROLOGUE = `table ${FIREWALL_TABLE_REF} {}\ndelete table ${FIREWALL_TABLE_REF}\n`;

/**
 * Refuses a ruleset that would touch anything but our table (`flush ruleset`, other tables,
 * `include`). Checked on top-level statements: inside our table's braces everything is ours.
 */
export function assertOnlyOurTable(ruleset: string): void {
  const ours = new RegExp(
    `^(?:(?:add|create|delete|flush|insert|replace|reset)\\s+)?(?:table|chain|set|map|rule|element|counter|quota|limit|flowtable|ct\\s+\\S+)\\s+${FIREWALL_TABLE_REF.replace(' ', '\\s+')}(?:\\s|\\{|$)`,
  );
  let depth = 0;
  ruleset.split('\n').forEach((rawLine, i) => {
    const line = rawLine.replace(/#.*$/, '').trim();
    if (line === '') return;
    if (depth === 0 && !ours.test(line)) {
      throw new Error(`firewall: ruleset line ${i + 1} is outside table ${FIREWALL_TABLE_REF}: ${JSON.stringify(line)}`);
    }
    for (const ch of line) {
      if (ch === '{') depth++;
      else if (ch === '}') depth--;
    }
    if (depth < 0) throw new Error(`firewall: ruleset line ${i + 1}: unbalanced "}"`);
  });
  if (depth !== 0) throw new Error('firewall: ruleset has unbalanced braces');
}

function failure(what: string, r: NftResult): NftError {
  const perm = /Operation not permitted/i.test(r.stderr) ? ' (needs root or CAP_NET_ADMIN)' : '';
  return new NftError(`${what} failed (nft exit ${r.code})${perm}:\n${r.stderr.trim()}`, r.code, r.stderr);
}

/**
 * Installs a full ruleset for our table (renderFirewall output) atomically. If the text lacks the
 * create-then-delete prologue it is added, so re-applying never appends duplicate rules.
 */
export async function applyFirewall(ruleset: string, opts: ApplyOptions = {}): Promise<void> {
  assertOnlyOurTable(ruleset);
  const text = ruleset.includes(`delete table ${FIREWALL_TABLE_REF}\n`) ? ruleset : PROLOGUE + ruleset;
  const r = await runNft(opts.check === true ? ['-c', '-f', '-'] : ['-f', '-'], text, opts);
  if (r.code !== 0) throw failure(opts.check === true ? 'nft -c (check)' : 'nft -f (apply)', r);
}

/** Deletes our table and nothing else. Succeeds when it is already gone (one transaction). */
export async function removeFirewall(opts: NftOptions = {}): Promise<void> {
  const r = await runNft(['-f', '-'], PROLOGUE, opts);
  if (r.code !== 0) throw failure('nft delete table', r);
}

/** `nft list table inet portcullis` (with counters), or null when our table is not installed. */
export async function listFirewall(opts: NftOptions = {}): Promise<string | null> {
  const r = await runNft(['list', 'table', ...FIREWALL_TABLE_REF.split(' ')], null, opts);
  if (r.code === 0) return r.stdout;
  if (/No such file or directory/.test(r.stderr)) return null;
  throw failure('nft list table', r);
}
