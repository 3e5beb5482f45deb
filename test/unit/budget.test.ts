// A training budget in minutes: the schedule follows the elapsed time, evaluations and checkpoints come every
// tenth of it, the run ends near the budget with a checkpoint, and a resumed run spends only what is left.
import "./isolated-cache.js";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { pretrain } from "../../server/pretraining/pretrain.js";
import { tinyRun, VOCAB, workspace } from "./pretrain-workspace.js";

const rows = (run: string) => readFileSync(path.join(run, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, number>);
const state = (run: string) => JSON.parse(readFileSync(path.join(run, "trainer_state.json"), "utf8")) as { step: number; minutes?: number; seconds?: number };

// Not a speed test: the bounds are wide, they check that the run ends by the clock rather than by steps.
test("--minutes: warmup and decay by elapsed time, an evaluation every tenth, the end near the budget", async () => {
  const dir = workspace("budget-");
  const run = path.join(dir, "run");
  const t = Date.now();
  const r = await pretrain(tinyRun(dir, { minutes: 0.1, steps: 1_000_000, logEvery: 1, evalEvery: undefined, checkpointEvery: undefined, warmupSteps: undefined }));
  const loopSeconds = state(run).seconds!;
  assert.equal(state(run).minutes, 0.1);
  assert.ok(loopSeconds > 3 && loopSeconds < 9, `the loop ran ${loopSeconds} s of a 6 s budget`);
  assert.ok((Date.now() - t) / 1000 < 30);
  assert.ok(r.step >= 5 && r.step < 1_000_000, `${r.step} steps`); // the clock ends it, however slow the machine
  const lr = rows(run).map((x) => x.lr);
  const peak = Math.max(...lr);
  assert.ok(lr[0] < peak / 2, "warmup");
  assert.ok(lr[lr.length - 1] < peak * 0.3, `decayed to ${lr[lr.length - 1]} of ${peak} by the end`);
  const evaluations = rows(run).filter((x) => "eval_mlm_acc" in x).length;
  assert.ok(evaluations >= 4 && evaluations <= 12, `${evaluations} evaluations`);
});

test("a budget run stopped and resumed spends only the rest of its budget", async () => {
  const dir = workspace("budget-");
  const run = path.join(dir, "run");
  const controller = new AbortController();
  const first = await pretrain(tinyRun(dir, { minutes: 0.1, steps: 1_000_000, logEvery: 1, warmupSteps: undefined, signal: controller.signal, onProgress: (p) => p.step >= 3 && controller.abort() }));
  assert.ok(first.stopped);
  const spent = state(run).seconds!;
  assert.ok(spent > 0 && spent < 6);
  const rest = await pretrain(tinyRun(dir, { resume: true, steps: 1_000_000, logEvery: 1, warmupSteps: undefined }));
  assert.equal(state(run).minutes, 0.1, "the run keeps its budget");
  assert.ok(state(run).seconds! > 3 && state(run).seconds! < 9, `${state(run).seconds} s in all`);
  assert.ok(rest.step > first.step);
});

test("the CLI refuses a budget that is not one", () => {
  const dir = workspace("budget-");
  const cli = (...args: string[]) => spawnSync(process.execPath, ["bin/bert-studio.js", "pretrain", path.join(dir, "corpus"), "--out", path.join(dir, "run"), "--vocab", VOCAB, ...args], { encoding: "utf8" });
  for (const m of ["0", "-1", "soon"]) {
    const r = cli(`--minutes=${m}`);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`--minutes must be a positive number, got ${m}`));
  }
  assert.match(cli("--minutes", "1", "--steps", "10").stderr, /give --minutes, --steps or --epochs, one of them/);
  assert.match(cli("--minutes", "1", "--warmup", "10").stderr, /--warmup counts steps/);
});
