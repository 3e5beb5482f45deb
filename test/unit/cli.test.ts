// The command line as a user runs it: bin/bert-studio.js over the built bundle (npm test builds first).
import "./isolated-cache.js";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";

const cli = (...args: string[]) => spawnSync(process.execPath, ["bin/bert-studio.js", ...args], { encoding: "utf8" });
const tinyBench = ["bench", "train", "--preset", "tiny", "--batch", "2", "--seq", "16", "--steps", "1", "--warmup", "1", "--json"];

test("--help prints the usage", () => {
  const r = cli("--help");
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /bert-studio bench train/);
});

test("an unknown device is a usage error naming the choices", () => {
  const r = cli(...tinyBench, "--device", "tpu");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--device must be one of cpu, webgpu, cuda, auto, got tpu/);
});

test("a CUDA provider that cannot start falls back to CPU with one line on stderr", (t) => {
  const r = cli(...tinyBench, "--device", "cuda");
  assert.equal(r.status, 0, r.stderr);
  const { provider } = JSON.parse(r.stdout) as { provider: string };
  if (provider === "cuda") {
    t.skip("this machine has ONNX Runtime's CUDA binaries and a GPU: nothing to fall back from");
    return;
  }
  assert.equal(provider, "cpu");
  assert.deepEqual(r.stderr.trim().split("\n"), ["bert-studio: cuda: cuda could not start (its libraries are not installed; onnxruntime-node downloads them when installed with ONNXRUNTIME_NODE_INSTALL=cuda12); running on cpu"]);
});

test("bench train --profile: ONNX Runtime's profile of the timed steps, their kernels' time by op type", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "profile-"));
  try {
    const r = cli("bench", "train", "--preset", "tiny", "--batch", "2", "--seq", "16", "--steps", "2", "--warmup", "1", "--json", "--profile", dir);
    assert.equal(r.status, 0, r.stderr);
    const { profile, ...result } = JSON.parse(r.stdout) as { step_s: number; step_s_median: number; step_s_min: number; profile: { file: string; runs: number; run_ms: number; ops: { op: string; ms: number; share: number; nodes: number }[] } };
    assert.ok(result.step_s_min > 0 && result.step_s_min <= result.step_s_median && result.step_s_min <= result.step_s, JSON.stringify(result));
    assert.equal(path.dirname(profile.file), dir);
    assert.ok(existsSync(profile.file));
    assert.equal(profile.runs, 2, "the warm-up step is left out");
    assert.ok(profile.run_ms > 0);
    const gemm = profile.ops.find((o) => o.op === "Gemm");
    assert.ok(gemm && gemm.nodes > 0 && gemm.ms > 0, JSON.stringify(profile.ops.slice(0, 5)));
    assert.ok(Math.abs(profile.ops.reduce((a, o) => a + o.share, 0) - 1) < 1e-9);
    assert.ok(profile.ops.every((o, i) => i === 0 || o.ms <= profile.ops[i - 1].ms));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
