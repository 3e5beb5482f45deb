// Deleting a run moves it to the user's trash, from where the desktop can restore it: on Linux the
// freedesktop.org home trash (files/NAME and info/NAME.trashinfo), on macOS ~/.Trash, and where the trash
// cannot take it (another device, a trash that cannot be written) the workspace's .bert-studio/trash.
// Nothing is ever deleted.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { moveToTrash } from "../../server/util/trash.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "trash-"));

/** A run folder with a file in it, under a fresh workspace. */
function runFolder(name: string): { dir: string; fallback: string } {
  const ws = mkdtempSync(path.join(tmp, "ws-"));
  const dir = path.join(ws, ".bert-studio", "runs", name);
  mkdirSync(path.join(dir, "best"), { recursive: true });
  writeFileSync(path.join(dir, "best", "model.safetensors"), "weights");
  return { dir, fallback: path.join(ws, ".bert-studio", "trash") };
}

test("Linux: the folder goes to $XDG_DATA_HOME/Trash/files with a .trashinfo naming where it was and when; a second of the same name is kept beside it", async () => {
  const data = mkdtempSync(path.join(tmp, "xdg-"));
  const env = { XDG_DATA_HOME: data };
  const now = new Date(2024, 2, 5, 14, 7, 9);
  const { dir, fallback } = runFolder("my run%1");
  const to = await moveToTrash(dir, fallback, { env, platform: "linux", now });
  assert.equal(to, path.join(data, "Trash", "files", "my run%1"));
  assert.equal(existsSync(dir), false);
  assert.equal(readFileSync(path.join(to, "best", "model.safetensors"), "utf8"), "weights", "moved whole, not copied or deleted");
  const info = readFileSync(path.join(data, "Trash", "info", "my run%1.trashinfo"), "utf8");
  const encoded = dir.split(path.sep).map(encodeURIComponent).join("/");
  assert.equal(info, `[Trash Info]\nPath=${encoded}\nDeletionDate=2024-03-05T14:07:09\n`);
  assert.ok(info.includes("my%20run%251"), "the path is URL-escaped");

  const again = runFolder("my run%1");
  const to2 = await moveToTrash(again.dir, again.fallback, { env, platform: "linux", now });
  assert.equal(to2, path.join(data, "Trash", "files", "my run%1.2"));
  assert.ok(existsSync(path.join(data, "Trash", "info", "my run%1.2.trashinfo")));
  assert.ok(existsSync(path.join(to, "best", "model.safetensors")), "the first one is still in the trash");
  assert.equal(existsSync(fallback), false, "the workspace's fallback is not used");
});

test("Linux without XDG_DATA_HOME (or a relative one): ~/.local/share/Trash", async () => {
  const home = mkdtempSync(path.join(tmp, "home-"));
  for (const env of [{}, { XDG_DATA_HOME: "relative/data" }]) {
    const { dir, fallback } = runFolder("run");
    const to = await moveToTrash(dir, fallback, { env, home, platform: "linux" });
    assert.equal(path.dirname(to), path.join(home, ".local", "share", "Trash", "files"));
    assert.ok(existsSync(path.join(to, "best", "model.safetensors")));
  }
});

test("macOS: ~/.Trash", async () => {
  const home = mkdtempSync(path.join(tmp, "mac-"));
  mkdirSync(path.join(home, ".Trash"));
  const first = runFolder("run");
  assert.equal(await moveToTrash(first.dir, first.fallback, { home, platform: "darwin" }), path.join(home, ".Trash", "run"));
  const second = runFolder("run");
  assert.equal(await moveToTrash(second.dir, second.fallback, { home, platform: "darwin" }), path.join(home, ".Trash", "run 2"));
});

test("a trash that cannot be written, or another system: the workspace's .bert-studio/trash/NAME-<timestamp>", async () => {
  const data = mkdtempSync(path.join(tmp, "xdg-"));
  writeFileSync(path.join(data, "Trash"), "a file where the trash folder should be");
  const now = new Date(Date.UTC(2024, 2, 5, 14, 7, 9, 123));
  const { dir, fallback } = runFolder("run");
  const to = await moveToTrash(dir, fallback, { env: { XDG_DATA_HOME: data }, platform: "linux", now });
  assert.equal(to, path.join(fallback, "run-2024-03-05T14-07-09-123Z"));
  assert.ok(existsSync(path.join(to, "best", "model.safetensors")));
  assert.equal(existsSync(dir), false);

  const win = runFolder("run");
  const toWin = await moveToTrash(win.dir, win.fallback, { platform: "win32", now });
  assert.equal(path.dirname(toWin), win.fallback);
  assert.ok(existsSync(path.join(toWin, "best", "model.safetensors")));
});

test("a trash on another device (EXDEV): the fallback, with nothing copied into the trash", { skip: !existsSync("/dev/shm") || statSync("/dev/shm").dev === statSync(tmp).dev ? "needs /dev/shm on another device than the temp folder" : false }, async () => {
  const data = mkdtempSync(path.join("/dev/shm", "trash-test-"));
  try {
    const { dir, fallback } = runFolder("run");
    const to = await moveToTrash(dir, fallback, { env: { XDG_DATA_HOME: data }, platform: "linux" });
    assert.equal(path.dirname(to), fallback);
    assert.ok(existsSync(path.join(to, "best", "model.safetensors")));
    assert.deepEqual(readdirSync(path.join(data, "Trash", "files")), []);
    assert.deepEqual(readdirSync(path.join(data, "Trash", "info")), [], "the .trashinfo written first is taken back");
  } finally {
    rmSync(data, { recursive: true, force: true }); // this test's own folder in /dev/shm
  }
});

test("a folder that is not there is an error, and nothing is created for it", async () => {
  const data = mkdtempSync(path.join(tmp, "xdg-"));
  const { dir, fallback } = runFolder("run");
  await assert.rejects(moveToTrash(path.join(path.dirname(dir), "gone"), fallback, { env: { XDG_DATA_HOME: data }, platform: "linux" }), /ENOENT/);
  assert.deepEqual(readdirSync(data), []);
  assert.equal(existsSync(fallback), false);
});
