// Watching files for changes (rule files, lists, geo databases).
import { statSync, watch, type FSWatcher } from 'node:fs';
import { dirname, resolve } from 'node:path';

export interface WatchOptions {
  /** Quiet time after the last change before onChange runs. Default 100 ms. */
  debounceMs?: number;
}

function fileSignature(p: string): string {
  try {
    const st = statSync(p); // follows symlinks, so a swapped symlink target counts as a change
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

/**
 * Calls onChange (debounced) when any of `paths` changes. Watches the parent directories rather
 * than the files, so editors that write a temp file and rename it over the original, and
 * Kubernetes-style symlink swaps, are seen. Changes are confirmed by comparing inode, size and
 * mtime, so unrelated files in the same directory do not trigger reloads. Watchers do not keep
 * the process alive. Returns a function that stops watching.
 */
export function watchFiles(paths: string[], onChange: () => void, opts: WatchOptions = {}): () => void {
  const debounceMs = opts.debounceMs ?? 100;
  const files = [...new Set(paths.map((p) => resolve(p)))];
  const sigs = new Map<string, string>(files.map((f) => [f, fileSignature(f)]));
  const watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | null = null;
  let closed = false;

  const check = (): void => {
    timer = null;
    if (closed) return;
    let changed = false;
    for (const f of files) {
      const sig = fileSignature(f);
      if (sig !== sigs.get(f)) { sigs.set(f, sig); changed = true; }
    }
    if (changed) onChange();
  };
  const poke = (): void => {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(check, debounceMs);
  };
  for (const dir of new Set(files.map((f) => dirname(f)))) {
    try {
      const w = watch(dir, { persistent: false }, poke);
      w.on('error', () => { /* directory removed: nothing more to watch; signatures stay */ });
      watchers.push(w);
    } catch {
      // Directory missing: the caller already reported the missing file when loading.
    }
  }
  return () => {
    closed = true;
    if (timer) clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}
