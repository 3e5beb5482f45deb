import "./isolated-cache.js";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { MALLOC_TUNABLES, mallocEnv, switchMallocEnv, type MallocProfile } from "../../common/malloc.js";

test("mallocEnv adds the profile's tunables on Linux, after the user's own", () => {
  assert.equal(mallocEnv({ PATH: "/bin" }, "batch", "linux")?.GLIBC_TUNABLES, MALLOC_TUNABLES.batch);
  assert.equal(mallocEnv({ PATH: "/bin" }, "resident", "linux")?.GLIBC_TUNABLES, MALLOC_TUNABLES.resident);
  assert.equal(mallocEnv({ GLIBC_TUNABLES: "glibc.rtld.optional_static_tls=4096" }, "batch", "linux")?.GLIBC_TUNABLES, `glibc.rtld.optional_static_tls=4096:${MALLOC_TUNABLES.batch}`);
  assert.equal(mallocEnv({ PATH: "/bin" }, "batch", "linux")?.PATH, "/bin");
});

test("mallocEnv leaves a user's malloc tunables and other platforms alone", () => {
  assert.equal(mallocEnv({ GLIBC_TUNABLES: "glibc.malloc.hugetlb=0" }, "batch", "linux"), undefined);
  assert.equal(mallocEnv({}, "batch", "darwin"), undefined);
  assert.equal(mallocEnv({}, "resident", "win32"), undefined);
});

test("a job forked by the resident server gets the batch profile instead; the user's own tunables stay", () => {
  const server = mallocEnv({ GLIBC_TUNABLES: "glibc.rtld.optional_static_tls=4096" }, "resident", "linux")!;
  assert.equal(switchMallocEnv(server, "resident", "batch", "linux")?.GLIBC_TUNABLES, `glibc.rtld.optional_static_tls=4096:${MALLOC_TUNABLES.batch}`);
  assert.equal(switchMallocEnv(mallocEnv({}, "resident", "linux")!, "resident", "batch", "linux")?.GLIBC_TUNABLES, MALLOC_TUNABLES.batch);
  assert.equal(switchMallocEnv({ GLIBC_TUNABLES: "glibc.malloc.hugetlb=0" }, "resident", "batch", "linux"), undefined, "a user's malloc tunables are left alone");
  assert.equal(switchMallocEnv({}, "resident", "batch", "darwin"), undefined);
});

// glibc ignores tunables it does not know; its dynamic loader lists the values it actually took.
const ldso = "/lib64/ld-linux-x86-64.so.2";
for (const profile of Object.keys(MALLOC_TUNABLES) as MallocProfile[]) {
  test(`glibc takes every tunable of "${profile}"`, { skip: !existsSync(ldso) && `no ${ldso}` }, () => {
    const listed = execFileSync(ldso, ["--list-tunables"], { env: { GLIBC_TUNABLES: MALLOC_TUNABLES[profile] }, encoding: "utf8" });
    for (const t of MALLOC_TUNABLES[profile].split(":")) {
      const [name, value] = t.split("=");
      const line = listed.split("\n").find((l) => l.startsWith(`${name}:`));
      assert.ok(line, `${name} is not a tunable of this glibc`);
      assert.equal(Number(line.split(/\s+/)[1]), Number(value), line);
    }
  });
}

test("the CLI re-runs itself with the batch profile", { skip: process.platform !== "linux" && "Linux only" }, () => {
  // A preload script reports each Node process's GLIBC_TUNABLES: the launcher's is unset, its child's is set.
  const dir = mkdtempSync(path.join(os.tmpdir(), "malloc-"));
  const preload = path.join(dir, "report.cjs");
  writeFileSync(preload, `process.stderr.write("tunables=" + (process.env.GLIBC_TUNABLES ?? "") + "\\n");`);
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: `--require ${preload}` };
  delete env.GLIBC_TUNABLES;
  const r = spawnSync(process.execPath, ["bin/bert-studio.js", "--help"], { env, encoding: "utf8" });
  rmSync(dir, { recursive: true });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.stderr.trim().split("\n"), ["tunables=", `tunables=${MALLOC_TUNABLES.batch}`]);
});
