// File helpers: atomic writes (write a temporary file, fsync, rename), so a crash never leaves half a file.
import { promises as fs } from "node:fs";

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
