// --profile for a scenario: run a Portcullis target under `node --cpu-prof`, then stop it (the profile
// is written at exit), keep its .cpuprofile next to the results and summarise each measured variant's
// rounds. Shared by the throughput and h2 scenarios.
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { RoundSample } from './harness.js';
import type { ScenarioContext } from './scenario.js';
import { stopProxy, type RunningProxy } from './proxies.js';
import { formatProfile, profilesIn, readProfile, summarizeProfile, type ProfileSummary } from './cpuprofile.js';
import { sleep } from './util.js';
import { timestampForFile } from './report.js';

/** A profiled target's summary of its measured rounds, and the kept .cpuprofile (null if not kept). */
export interface ProfileResult { file: string | null; summary: ProfileSummary }

/** Node flags (and the directory they write to) for target `label`; none when `on` is false. */
export function profileFlags(ctx: ScenarioContext, label: string, on: boolean): { profileDir: string | null; flags: string[] } {
  if (!on) return { profileDir: null, flags: [] };
  const profileDir = join(ctx.workDir, `${label}-cpuprofile`);
  mkdirSync(profileDir, { recursive: true });
  return { profileDir, flags: ['--cpu-prof', '--cpu-prof-dir', profileDir] };
}

/**
 * Stops each profiled target, keeps its profile as `<scenario>-<time>-<label>.cpuprofile` in the
 * results folder (git-ignored) and summarises, per variant label it served (`labelsOf`), the samples
 * of that variant's measured rounds.
 */
export async function collectProfiles<T extends { label: string; proxy: RunningProxy; profileDir: string | null }>(
  ctx: ScenarioContext, scenario: string, targets: readonly T[], labelsOf: (t: T) => readonly string[], samples: readonly RoundSample[],
): Promise<Record<string, ProfileResult>> {
  const out: Record<string, ProfileResult> = {};
  const stamp = timestampForFile(ctx.startedAt ?? new Date());
  for (const t of targets) {
    if (t.profileDir === null) continue;
    await stopProxy(t.proxy);
    let files = profilesIn(t.profileDir);
    for (let i = 0; i < 50 && files.length === 0; i++) { await sleep(100); files = profilesIn(t.profileDir); }
    if (files.length === 0) { ctx.note(`${t.label}: no .cpuprofile was written (did it exit cleanly on SIGTERM?)`); continue; }
    const profile = readProfile(files[0]);
    let kept: string | null = join(ctx.opts.outDir, `${scenario}-${stamp}-${t.label}.cpuprofile`);
    try { mkdirSync(ctx.opts.outDir, { recursive: true }); copyFileSync(files[0], kept); } catch { kept = null; }
    for (const label of labelsOf(t)) {
      const windows = samples.filter((s) => s.label === label && s.startedAtUs !== undefined && s.endedAtUs !== undefined).map((s) => [s.startedAtUs as number, s.endedAtUs as number] as const);
      const summary = summarizeProfile(profile, { windows, top: 25 });
      out[label] = { file: kept !== null && existsSync(kept) ? kept : null, summary };
      ctx.log(`profile of ${label} (self time over its measured rounds):\n${formatProfile(summary).join('\n')}`);
    }
  }
  return out;
}
