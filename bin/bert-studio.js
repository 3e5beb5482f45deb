#!/usr/bin/env node
"use strict";
// On Linux, glibc's malloc is asked to back large allocations with transparent huge pages: a training
// step allocates and frees gigabytes, and 4 KB page faults alone cost ~10% of a step. glibc reads the
// tunable only at start-up, so the CLI re-runs itself once with it set.
const TUNABLE = "glibc.malloc.hugetlb=1";
if (process.platform === "linux" && !(process.env.GLIBC_TUNABLES || "").includes("glibc.malloc.hugetlb")) {
  const { spawn } = require("node:child_process");
  const tunables = [process.env.GLIBC_TUNABLES, TUNABLE].filter(Boolean).join(":");
  const child = spawn(process.execPath, [...process.execArgv, __filename, ...process.argv.slice(2)], {
    stdio: "inherit",
    env: { ...process.env, GLIBC_TUNABLES: tunables },
  });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => child.kill(sig));
  child.on("exit", (code, signal) => {
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
} else {
  require("../dist/cli.js").run(process.argv.slice(2));
}
