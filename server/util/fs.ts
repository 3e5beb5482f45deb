// File helpers: atomic writes (write a temporary file, fsync, rename), so a crash never leaves half a file;
// whether a path lies inside a folder.
import { promises as fs } from "node:fs";
import * as path from "node:path";

/** Whether `child` lies strictly inside `parent` (both absolute). */
export function inside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel);
}

/** Whether `child` is `parent` or lies inside it. */
export const sameOrInside = (child: string, parent: string) => path.resolve(child) === path.resolve(parent) || inside(path.resolve(child), path.resolve(parent));

export async function writeFileAtomic(file: string, data: string | Uint8Array | Uint8Array[]): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  const handle = await fs.open(tmp, "w");
  try {
    for (const chunk of Array.isArray(data) ? data : [data]) {
      if (typeof chunk === "string") await handle.writeFile(chunk, "utf8");
      else await handle.write(chunk);
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, file);
}

export async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(() => true, () => false);
}

/** Bytes of the files under `dir`, subfolders included (0 for what cannot be read). */
export async function folderBytes(dir: string): Promise<number> {
  let bytes = 0;
  for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const f = path.join(dir, e.name);
    bytes += e.isDirectory() ? await folderBytes(f) : ((await fs.stat(f).catch(() => undefined))?.size ?? 0);
  }
  return bytes;
}
