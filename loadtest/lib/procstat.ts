// CPU time and memory of a process tree from /proc, so "proxy CPU per request" covers master and
// worker processes (nginx) and all threads (Portcullis workers) alike.
import { readFileSync, readdirSync } from 'node:fs';
import { execSync } from 'node:child_process';

let ticksPerSecond = 0;
function clockTicks(): number {
  if (ticksPerSecond === 0) {
    try { ticksPerSecond = Number(execSync('getconf CLK_TCK', { encoding: 'utf8' }).trim()) || 100; } catch { ticksPerSecond = 100; }
  }
  return ticksPerSecond;
}

/** Parses the fields after the parenthesised command name of /proc/<pid>/stat. */
export function parseStat(text: string): { ppid: number; utime: number; stime: number } {
  const close = text.lastIndexOf(')');
  const fields = text.slice(close + 2).split(' ');
  // fields[0] is state (field 3); ppid is field 4, utime 14, stime 15.
  return { ppid: Number(fields[1]), utime: Number(fields[11]), stime: Number(fields[12]) };
}

/** pid plus all descendants. */
export function processTree(rootPid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const { ppid } = parseStat(readFileSync(`/proc/${name}/stat`, 'utf8'));
      const list = children.get(ppid);
      if (list) list.push(Number(name)); else children.set(ppid, [Number(name)]);
    } catch { /* process went away */ }
  }
  const out: number[] = [];
  const stack = [rootPid];
  while (stack.length) {
    const pid = stack.pop() as number;
    out.push(pid);
    for (const c of children.get(pid) ?? []) stack.push(c);
  }
  return out;
}

export interface TreeUsage { cpuSeconds: number; rssMB: number; pids: number }

/** Sum of user+system CPU seconds and resident memory over the tree. */
export function treeUsage(rootPid: number): TreeUsage {
  let ticks = 0;
  let rssKB = 0;
  const pids = processTree(rootPid);
  for (const pid of pids) {
    try {
      const s = parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      ticks += s.utime + s.stime;
      const m = /^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) rssKB += Number(m[1]);
    } catch { /* exited meanwhile */ }
  }
  return { cpuSeconds: ticks / clockTicks(), rssMB: rssKB / 1024, pids: pids.length };
}

/** Pins a running process and all its threads to the given CPU list ("1", "0-1"). */
export function pin(pid: number, cpuList: string): void {
  for (const p of processTree(pid)) {
    try { execSync(`taskset -a -p -c ${cpuList} ${p}`, { stdio: 'ignore' }); } catch { /* exited */ }
  }
}
