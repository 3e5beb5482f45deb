// The Runs view's list (bert/listRuns): what each folder of a workspace's runs folder is, how its run ended
// or that it trains, its step and its best score, newest first; a broken run is listed with its reason and
// never hides the others. And which selection slot a model takes.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, utimesSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import type { RunInfo, RunOutcome } from "../../common/protocol.js";
import { listRuns, modelSlot } from "../../server/inference/runs.js";
import { RunLock } from "../../server/training/run-lock.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "runs-"));
let clock = Date.UTC(2024, 0, 1) / 1000;

/** A run folder with these files (objects as JSON, arrays as JSON lines), each a minute newer than the last folder's. */
function run(runs: string, name: string, files: Record<string, unknown>): string {
  const dir = path.join(runs, name);
  mkdirSync(dir, { recursive: true });
  clock += 60;
  for (const [file, body] of Object.entries(files)) {
    const f = path.join(dir, file);
    mkdirSync(path.dirname(f), { recursive: true });
    writeFileSync(f, typeof body === "string" ? body : Array.isArray(body) ? body.map((r) => JSON.stringify(r)).join("\n") + "\n" : JSON.stringify(body));
    utimesSync(f, clock, clock);
  }
  return dir;
}

const config = (architecture: string, extra: Record<string, unknown> = {}) => ({ model_type: "bert", architectures: [architecture], vocab_size: 100, hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 64, ...extra });
const done = (o: Partial<RunOutcome>): RunOutcome => ({ state: "done", step: 40, steps: 40, ended: "2024-01-01T00:00:00Z", ...o });
const byName = (runs: RunInfo[]) => Object.fromEntries(runs.map((r) => [r.name, r]));

test("a pretraining run, a fine-tuning run, an imported model: kind, state, step and best score, newest first", async () => {
  const runs = path.join(tmp, "a", ".bert-studio", "runs");
  run(runs, "pretrain-tiny", {
    "config.json": config("BertForPreTraining"),
    "trainer_state.json": { step: 40 },
    "metrics.jsonl": [
      { step: 10, loss: 6.1, mlm_acc: 0.05 },
      { step: 20, loss: 5.2, mlm_acc: 0.1, eval_mlm_acc: 0.12, eval_loss: 5.5 },
      { step: 30, loss: 4.8, mlm_acc: 0.2 },
      { step: 40, loss: 4.5, mlm_acc: 0.22, eval_mlm_acc: 0.19, eval_loss: 4.9 },
    ],
    "outcome.json": done({}),
  });
  run(runs, "imported-bert", { "config.json": config("BertForMaskedLM"), "model.safetensors": "" });
  run(runs, "sst2", {
    "config.json": config("BertForSequenceClassification", { finetuning_task: "classify", id2label: { 0: "neg", 1: "pos" } }),
    "trainer_state.json": { step: 120 },
    "metrics.jsonl": [{ step: 60, loss: 0.6, eval_accuracy: 0.8 }, { step: 120, loss: 0.3, eval_accuracy: 0.78 }],
    "outcome.json": done({ step: 120, steps: 120, score: { metric: "accuracy", value: 0.81, step: 60, on: "held-out", examples: 100, majority: 0.52 } }),
    "best/config.json": config("BertForSequenceClassification", { finetuning_task: "classify" }),
    "best/trainer_state.json": { step: 60 },
  });
  run(runs, "not-a-run", { "notes.txt": "hello" });

  const list = await listRuns([runs]);
  assert.deepEqual(list.map((r) => r.name), ["sst2", "imported-bert", "pretrain-tiny"], "newest first; best/ and a folder of other files are not runs");
  const r = byName(list);
  assert.deepEqual(
    { ...r["pretrain-tiny"], modified: 0 },
    { dir: path.join(runs, "pretrain-tiny"), name: "pretrain-tiny", kind: "pretrain", architecture: "BertForPreTraining", state: "done", step: 40, steps: 40, best: { metric: "mlm_accuracy", value: 0.19 }, modified: 0 },
    "pretraining's best is its latest held-out masked-token accuracy, not its highest",
  );
  assert.equal(r.sst2.kind, "finetune");
  assert.equal(r.sst2.task, "classify");
  assert.equal(r.sst2.state, "done");
  assert.deepEqual([r.sst2.step, r.sst2.steps], [120, 120]);
  assert.deepEqual(r.sst2.best, { metric: "accuracy", value: 0.81 }, "outcome.json's score of the best checkpoint");
  assert.equal(r["imported-bert"].kind, "model");
  assert.equal(r["imported-bert"].state, "model");
  assert.equal(r["imported-bert"].architecture, "BertForMaskedLM");
  assert.equal(r["imported-bert"].best, undefined);
  assert.equal(r["imported-bert"].step, undefined);
  assert.ok(r.sst2.modified > r["imported-bert"].modified);
});

test("a run without outcome.json (or with an earlier one) is stopped; its best comes from metrics.jsonl; failed and diverged runs say why", async () => {
  const runs = path.join(tmp, "b", ".bert-studio", "runs");
  run(runs, "ner-old", {
    "config.json": config("BertForTokenClassification", { finetuning_task: "ner" }),
    "trainer_state.json": { step: 30 },
    "metrics.jsonl": [{ step: 10, loss: 1, eval_f1: 0.4 }, { step: 20, loss: 0.8, eval_f1: 0.55 }, { step: 30, loss: 0.7, eval_f1: 0.5 }, "{\"step\": 31, \"lo"].map((x) => (typeof x === "string" ? x : JSON.stringify(x))).join("\n"),
  });
  run(runs, "pretrain-nan", {
    "config.json": config("BertForMaskedLM"),
    "trainer_state.json": { step: 100 },
    "outcome.json": done({ state: "diverged", step: 117, steps: 1000, message: "training diverged: loss is NaN at step 117" }),
  });
  run(runs, "resumed-killed", { "config.json": config("BertForPreTraining"), "trainer_state.json": { step: 60 }, "outcome.json": done({ state: "stopped", step: 40 }) });
  run(runs, "no-checkpoint", { "outcome.json": done({ state: "failed", step: 3, message: "out of memory" }), "metrics.jsonl": [{ step: 1, loss: 7, mlm_loss: 7 }] });
  const r = byName(await listRuns([runs]));
  assert.equal(r["ner-old"].state, "stopped");
  assert.equal(r["ner-old"].step, 30);
  assert.deepEqual(r["ner-old"].best, { metric: "f1", value: 0.55 }, "the best eval f1, the row cut short by a kill skipped");
  assert.deepEqual([r["pretrain-nan"].kind, r["pretrain-nan"].state, r["pretrain-nan"].step, r["pretrain-nan"].message], ["pretrain", "diverged", 117, "training diverged: loss is NaN at step 117"]);
  assert.deepEqual([r["resumed-killed"].state, r["resumed-killed"].step], ["stopped", 60], "an outcome.json older than the checkpoint is not the run's end");
  assert.deepEqual([r["no-checkpoint"].kind, r["no-checkpoint"].state, r["no-checkpoint"].message], ["pretrain", "failed", "out of memory"]);
});

test("a broken run is listed as failed with the reason, and the others are still listed", async () => {
  const runs = path.join(tmp, "c", ".bert-studio", "runs");
  run(runs, "good", { "config.json": config("BertForMaskedLM") });
  run(runs, "bad-state", { "config.json": config("BertForPreTraining"), "trainer_state.json": "{ step: 4" });
  run(runs, "bad-config", { "config.json": "not json", "trainer_state.json": { step: 4 } });
  run(runs, "wrong-model", { "config.json": { model_type: "gpt2" } });
  const r = byName(await listRuns([runs, path.join(tmp, "missing", "runs")]));
  assert.deepEqual(Object.keys(r).sort(), ["bad-config", "bad-state", "good", "wrong-model"]);
  assert.equal(r.good.state, "model");
  for (const name of ["bad-state", "bad-config", "wrong-model"]) {
    assert.equal(r[name].state, "failed", name);
    assert.ok(r[name].message?.includes(path.join(runs, name)), `${name}: ${r[name].message}`);
  }
  assert.match(r["bad-state"].message!, /trainer_state\.json: invalid JSON/);
  assert.match(r["wrong-model"].message!, /"gpt2" is not "bert"/);
});

test("a run in training: by a job of this server (its id, live step and total) or by another process holding its lock", async () => {
  const runs = path.join(tmp, "d", ".bert-studio", "runs");
  const mine = run(runs, "mine", { "config.json": config("BertForPreTraining"), "trainer_state.json": { step: 20 } });
  const theirs = run(runs, "theirs", { "config.json": config("BertForSequenceClassification", { finetuning_task: "classify" }), "trainer_state.json": { step: 5 }, "outcome.json": done({}) });
  const fresh = path.join(runs, "fresh");
  mkdirSync(fresh);
  const lock = await RunLock.acquire(theirs, "finetune");
  try {
    const r = byName(await listRuns([runs], [{ id: "pretrain-1", kind: "pretrain", out: mine, step: 27, steps: 200 }, { id: "finetune-2", kind: "finetune", out: fresh, step: 0, steps: 0 }]));
    assert.deepEqual([r.mine.state, r.mine.job, r.mine.step, r.mine.steps], ["training", "pretrain-1", 27, 200]);
    assert.deepEqual([r.theirs.state, r.theirs.job, r.theirs.kind], ["training", undefined, "finetune"], "an earlier run's outcome.json does not hide the training");
    assert.deepEqual([r.fresh.state, r.fresh.kind, r.fresh.job], ["training", "finetune", "finetune-2"], "a job that has not written a checkpoint yet is listed");
  } finally {
    await lock.release();
  }
  assert.equal(byName(await listRuns([runs])).theirs.state, "done");
});

test("selection slots: a task head or a fine-tuning task is the fine-tuned model, a pretraining or masked-LM head the language model", () => {
  assert.equal(modelSlot({ architecture: "BertForPreTraining" }), "model");
  assert.equal(modelSlot({ architecture: "BertForMaskedLM" }), "model");
  assert.equal(modelSlot({ architecture: "BertModel" }), "model");
  assert.equal(modelSlot({ architecture: "BertModel", task: "classify" }), "taskModel");
  assert.equal(modelSlot({ architecture: "BertForSequenceClassification" }), "taskModel");
  assert.equal(modelSlot({ architecture: "BertForQuestionAnswering", task: "qa" }), "taskModel");
});
