// The lock of a run folder: a process that trains into RUN holds RUN/.bert-studio.lock (its pid, host,
// start time and what it runs), created with O_EXCL so that exactly one process gets it. A second
// pretrain/finetune into the same folder, from the CLI or from another VS Code window, is refused naming
// the holder. A lock whose process is gone (same host, pid not running, or running but started later than
// the lock: a recycled pid) is stale and taken over. A lock from another host cannot be checked: it is
// refused with the file to delete.
import { openSync, closeSync, readFileSync, writeSync, unlinkSync, promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { procStat } from "../util/proc.js";

export const LOCK_FILE = ".bert-studio.lock";

export interface LockHolder {
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  since: string;
  /** What holds it, e.g. "pretrain". */
  what: string;
  /** The process's start time in clock ticks since boot (/proc/PID/stat field 22), to tell a recycled pid. */
  procStart?: number;
}

export class RunLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly holder: LockHolder,
  ) {
    super(`${dir} is in use: ${describeHolder(holder)}`);
  }
}

export function describeHolder(h: LockHolder): string {
  const here = h.host === os.hostname();
  return `${h.what} (pid ${h.pid}${here ? "" : ` on ${h.host}`}) has been training into it since ${h.since}`;
}

/** State and start time (field 22, clock ticks since boot) of a process; undefined elsewhere or when it is gone. */
function procState(pid: number): { state: string; start: number } | undefined {
  const fields = procStat(pid);
  return fields && { state: fields[0], start: Number(fields[19]) };
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by another user
  }
}

/** Whether the holder's process is still alive (always assumed for another host's). */
function alive(h: LockHolder): boolean {
  if (h.host !== os.hostname()) return true;
  if (!running(h.pid)) return false;
  const stat = procState(h.pid);
  if (stat && (stat.state === "Z" || stat.state === "X")) return false; // killed, not yet reaped
  return h.procStart === undefined || stat === undefined || stat.start === h.procStart;
}

function readHolder(file: string): LockHolder | undefined {
  try {
    const h = JSON.parse(readFileSync(file, "utf8")) as LockHolder;
    return typeof h.pid === "number" && typeof h.host === "string" ? h : undefined;
  } catch {
    return undefined;
  }
}

/** The live holder of `dir`'s lock, if any (a stale lock reads as none). */
export async function runLockHolder(dir: string): Promise<LockHolder | undefined> {
  const h = readHolder(path.join(dir, LOCK_FILE));
  return h && alive(h) ? h : undefined;
}

export class RunLock {
  private released = false;
  private readonly onExit = () => this.releaseSync();

  private constructor(readonly file: string) {
    process.once("exit", this.onExit);
  }

  /**
   * Takes `dir`'s lock (creating `dir`), or throws RunLockedError naming the live holder. A stale lock is
   * taken over. An unreadable lock file (being written this instant, or damaged) counts as held for a
   * moment, then as stale.
   */
  static async acquire(dir: string, what: string): Promise<RunLock> {
    await fs.mkdir(dir, { recursive: true });
    const file = path.join(dir, LOCK_FILE);
    const me: LockHolder = { pid: process.pid, host: os.hostname(), since: new Date().toISOString(), what, procStart: procState(process.pid)?.start };
    for (let attempt = 0; ; attempt++) {
      try {
        const fd = openSync(file, "wx");
        try {
          writeSync(fd, JSON.stringify(me) + "\n");
        } finally {
          closeSync(fd);
        }
        return new RunLock(file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      }
      const holder = readHolder(file);
      if (holder && alive(holder)) throw new RunLockedError(dir, holder);
      if (!holder && attempt < 5) {
        await new Promise((r) => setTimeout(r, 50)); // a holder writing its file right now
        continue;
      }
      if (attempt > 8) throw new Error(`${file}: cannot take the lock (removed and recreated repeatedly)`);
      // Stale: move it aside (one process wins the rename), then try again.
      await fs.rename(file, `${file}.stale-${process.pid}`).then(() => fs.rm(`${file}.stale-${process.pid}`, { force: true }), () => undefined);
    }
  }

  private releaseSync(): void {
    if (this.released) return;
    this.released = true;
    process.removeListener("exit", this.onExit);
    try {
      const h = readHolder(this.file);
      if (h?.pid === process.pid) unlinkSync(this.file);
    } catch {
      // already gone with its folder
    }
  }

  async release(): Promise<void> {
    this.releaseSync();
  }
}
