#!/usr/bin/env node
"use strict";
// glibc reads its malloc tunables only at start-up: on Linux the CLI re-runs itself once with the ones a
// training step wants (common/malloc.ts says which and why).
const env = require("../dist/malloc.js").mallocEnv(process.env, "batch");
if (env) {
  const { spawn } = require("node:child_process");
  const child = spawn(process.execPath, [...process.execArgv, __filename, ...process.argv.slice(2)], { stdio: "inherit", env });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => child.kill(sig));
  child.on("exit", (code, signal) => {
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
} else {
  require("../dist/cli.js").run(process.argv.slice(2));
}
