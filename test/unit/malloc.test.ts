import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { MALLOC_TUNABLES, mallocEnv } from "../../server/util/malloc.js";

test("mallocEnv adds the tunables on Linux, after the user's own", () => {
  assert.equal(mallocEnv({ PATH: "/bin" }, "linux")?.GLIBC_TUNABLES, MALLOC_TUNABLES);
  assert.equal(mallocEnv({ GLIBC_TUNABLES: "glibc.rtld.optional_static_tls=4096" }, "linux")?.GLIBC_TUNABLES, `glibc.rtld.optional_static_tls=4096:${MALLOC_TUNABLES}`);
  assert.equal(mallocEnv({ PATH: "/bin" }, "linux")?.PATH, "/bin");
});

test("mallocEnv leaves a user's malloc tunables and other platforms alone", () => {
  assert.equal(mallocEnv({ GLIBC_TUNABLES: "glibc.malloc.hugetlb=0" }, "linux"), undefined);
  assert.equal(mallocEnv({}, "darwin"), undefined);
  assert.equal(mallocEnv({}, "win32"), undefined);
});

// glibc ignores tunables it does not know; its dynamic loader lists the values it actually took.
const ldso = "/lib64/ld-linux-x86-64.so.2";
test("glibc takes every tunable", { skip: !existsSync(ldso) && `no ${ldso}` }, () => {
  const listed = execFileSync(ldso, ["--list-tunables"], { env: { GLIBC_TUNABLES: MALLOC_TUNABLES }, encoding: "utf8" });
  for (const t of MALLOC_TUNABLES.split(":")) {
    const [name, value] = t.split("=");
    const line = listed.split("\n").find((l) => l.startsWith(`${name}:`));
    assert.ok(line, `${name} is not a tunable of this glibc`);
    assert.equal(Number(line.split(/\s+/)[1]), Number(value), line);
  }
});
