// Moving a folder to the user's trash, from where they can restore it: nothing is ever deleted. Linux
// follows the freedesktop.org Trash specification 1.0 (the home trash, $XDG_DATA_HOME/Trash: the folder goes
// to files/NAME and info/NAME.trashinfo says where it came from and when, so the desktop's trash can put it
// back); macOS uses ~/.Trash. A rename is the only move: when the trash is on another device (EXDEV), cannot
// be written, or on another system, the folder goes to a fallback folder the caller names (the workspace's
// .bert-studio/trash) instead. A copy-and-delete is never attempted: a folder half copied would be half lost.
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface TrashOptions {
  env?: NodeJS.ProcessEnv;
  home?: string;
  platform?: NodeJS.Platform;
  /** The time of the deletion (for the tests). */
  now?: Date;
}

/**
 * Moves `dir` (a file or folder) into the user's trash, or else into `fallback`/NAME-<timestamp> (created);
 * returns where it went. Throws, having moved nothing, when neither rename works (e.g. `dir` is gone).
 */
export async function moveToTrash(dir: string, fallback: string, o: TrashOptions = {}): Promise<string> {
  const from = path.resolve(dir);
  await fs.lstat(from); // a missing folder is an error of its own, not a reason to try the fallback
  const platform = o.platform ?? process.platform;
  const home = o.home ?? os.homedir();
  const now = o.now ?? new Date();
  let why: string;
  try {
    if (platform === "linux") return await freedesktopTrash(from, freedesktopHome(o.env ?? process.env, home), now);
    if (platform === "darwin") return await renameUnique(from, path.join(home, ".Trash"), path.basename(from), (n) => `${path.basename(from)} ${n}`);
    why = `no trash on ${platform}`;
  } catch (e) {
    why = (e as Error).message;
  }
  try {
    const stamp = now.toISOString().replace(/[:.]/g, "-");
    const name = `${path.basename(from)}-${stamp}`;
    await fs.mkdir(fallback, { recursive: true });
    return await renameUnique(from, fallback, name, (n) => `${name}-${n}`);
  } catch (e) {
    throw new Error(`cannot move ${from} to the trash (${why}) nor into ${fallback} (${(e as Error).message}); nothing was deleted`);
  }
}

/** The home trash: $XDG_DATA_HOME/Trash, where XDG_DATA_HOME is ~/.local/share when unset, empty or relative. */
export function freedesktopHome(env: NodeJS.ProcessEnv, home: string): string {
  const data = env.XDG_DATA_HOME && path.isAbsolute(env.XDG_DATA_HOME) ? env.XDG_DATA_HOME : path.join(home, ".local", "share");
  return path.join(data, "Trash");
}

/**
 * The spec's order: info/NAME.trashinfo is created first with O_EXCL (which reserves NAME against another
 * program trashing the same name), then the folder is renamed to files/NAME; a failed rename takes back the
 * .trashinfo this call wrote.
 */
async function freedesktopTrash(from: string, trash: string, now: Date): Promise<string> {
  const files = path.join(trash, "files");
  const info = path.join(trash, "info");
  await fs.mkdir(files, { recursive: true, mode: 0o700 });
  await fs.mkdir(info, { recursive: true, mode: 0o700 });
  const base = path.basename(from);
  const body = `[Trash Info]\nPath=${trashInfoPath(from)}\nDeletionDate=${deletionDate(now)}\n`;
  for (let n = 1; ; n++) {
    const name = n === 1 ? base : `${base}.${n}`;
    const infoFile = path.join(info, `${name}.trashinfo`);
    try {
      await fs.writeFile(infoFile, body, { flag: "wx", mode: 0o600 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") continue;
      throw e;
    }
    const to = path.join(files, name);
    // An entry in files/ without its .trashinfo (left by another program) is not overwritten either.
    const taken = await fs.lstat(to).then(() => true, () => false);
    if (!taken) {
      const error = await fs.rename(from, to).then(() => undefined, (e: Error) => e);
      if (!error) return to;
      await fs.unlink(infoFile).catch(() => undefined);
      throw error;
    }
    await fs.unlink(infoFile).catch(() => undefined);
  }
}

/** The spec's Path: the absolute path with each segment URL-escaped (RFC 2396), '/' kept. */
export function trashInfoPath(abs: string): string {
  return abs.split(path.sep).map(encodeURIComponent).join("/");
}

/** The spec's DeletionDate: local time, YYYY-MM-DDThh:mm:ss. */
export function deletionDate(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Renames `from` to `folder`/`name`, or the first free `again(2)`, `again(3)`, ...; never over an existing entry. */
async function renameUnique(from: string, folder: string, name: string, again: (n: number) => string): Promise<string> {
  await fs.access(folder);
  for (let n = 1; ; n++) {
    const to = path.join(folder, n === 1 ? name : again(n));
    if (await fs.lstat(to).then(() => true, () => false)) continue;
    await fs.rename(from, to);
    return to;
  }
}
