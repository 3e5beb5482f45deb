// The user's cache folder, shared by the caches (tokenized corpora, optimized inference sessions), and the
// rule that keeps each one under its cap.
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** `$BERT_STUDIO_CACHE`, else `$XDG_CACHE_HOME/bert-studio`, else `~/.cache/bert-studio`. */
export function cacheRoot(): string {
  return process.env.BERT_STUDIO_CACHE || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache"), "bert-studio");
}

/** The cap on each cache's size: `$BERT_STUDIO_CACHE_MB` megabytes, default 2 GiB (a 1 GB corpus tokenizes to ~0.5 GB; BERT-Base's session is 0.44 GB). */
export function cacheCapBytes(): number {
  const mb = Number(process.env.BERT_STUDIO_CACHE_MB || NaN);
  return (Number.isFinite(mb) && mb >= 0 ? mb : 2048) * 1024 * 1024;
}

/**
 * Removes the least recently used entries of `dir` (files ending in `suffix`, by modification time, which
 * a hit renews) from the first one that would take the cache over `cap` bytes; `keep`, just written, stays
 * whatever its size. Temporary files an interrupted write left behind (writeFileAtomic's `.tmp-PID`) over
 * an hour ago go too.
 */
export async function evictLeastRecent(dir: string, suffix: string, keep: string, cap: number): Promise<void> {
  const entries: { file: string; size: number; used: number }[] = [];
  for (const name of await fs.readdir(dir)) {
    const file = path.join(dir, name);
    const stat = await fs.stat(file).catch(() => undefined); // another process may be evicting too
    if (!stat?.isFile()) continue;
    if (name.includes(`${suffix}.tmp-`) && Date.now() - stat.mtimeMs > 3600_000) await fs.rm(file, { force: true });
    else if (name.endsWith(suffix)) entries.push({ file, size: stat.size, used: file === keep ? Infinity : stat.mtimeMs });
  }
  entries.sort((a, b) => b.used - a.used);
  let total = 0;
  let full = false;
  for (const e of entries) {
    total += e.size;
    full ||= e.file !== keep && total > cap;
    if (full) await fs.rm(e.file, { force: true });
  }
}
