// Every pretraining run says in RUN/outcome.json how it ended (fine-tuning's: finetune-score.test.ts): done or
// stopped with its steps, diverged with the trainer's message; input refused before training writes nothing.
import "./isolated-cache.js";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import type { RunOutcome } from "../../common/protocol.js";
import { pretrain } from "../../server/pretraining/pretrain.js";
import { tinyRun, workspace } from "./pretrain-workspace.js";

const outcome = (dir: string): RunOutcome => JSON.parse(readFileSync(path.join(dir, "run/outcome.json"), "utf8"));

test("a pretraining run writes outcome.json when it is stopped, and again when it is resumed to the end", async () => {
  const dir = workspace();
  const controller = new AbortController();
  await pretrain(tinyRun(dir, { signal: controller.signal, onProgress: (p) => p.step === 3 && controller.abort() }));
  const stopped = outcome(dir);
  assert.deepEqual({ ...stopped, ended: undefined }, { state: "stopped", step: 3, steps: 6, ended: undefined });
  assert.ok(!Number.isNaN(Date.parse(stopped.ended)));
  let inTraining: boolean | undefined;
  await pretrain(tinyRun(dir, { resume: true, onProgress: () => (inTraining ??= existsSync(path.join(dir, "run/outcome.json"))) }));
  assert.equal(inTraining, false, "a run in training has no outcome.json");
  assert.deepEqual({ ...outcome(dir), ended: undefined }, { state: "done", step: 6, steps: 6, ended: undefined });
});

test("a diverging pretraining run says so in outcome.json; a refused one writes nothing", async () => {
  const dir = workspace();
  await assert.rejects(pretrain(tinyRun(dir, { lr: 1e30, warmupSteps: 0 })), /diverged/);
  const o = outcome(dir);
  assert.equal(o.state, "diverged");
  assert.match(o.message!, /diverged/);
  assert.equal(o.steps, 6);
  const other = workspace();
  await assert.rejects(pretrain(tinyRun(other, { vocab: undefined })), /give a vocabulary/);
  assert.ok(!existsSync(path.join(other, "run")), "bad input leaves no run folder");
});
