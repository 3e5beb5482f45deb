// A fine-tuning run reports how good its model is: without an eval file it holds out a seeded share of the
// training file (the same on resume), scores its best checkpoint there against the majority class, and every
// run says in outcome.json how it ended (done, stopped, diverged), with the score.
import "./isolated-cache.js";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import type { FinetuneTask, RunOutcome } from "../../common/protocol.js";
import { finetuneDefaults } from "../../common/settings.js";
import { scoreLines } from "../../server/cli/tasks.js";
import { TaskModel } from "../../server/inference/task-model.js";
import { finetune, holdOut, type FinetuneOptions } from "../../server/tasks/finetune.js";
import { TASK_SPECS } from "../../server/tasks/tasks.js";
import { BertTokenizer } from "../../server/text/tokenizer.js";
import { randomModelFolder } from "./random-model.js";

const DATA = path.resolve(process.cwd(), "data");
const tmp = mkdtempSync(path.join(os.tmpdir(), "finetune-score-"));

/** A small "pretrained" model folder (random weights, the real bert-base-uncased vocabulary). */
async function pretrainedFolder(): Promise<string> {
  const tok = await BertTokenizer.fromVocabFile(path.join(DATA, "bert-base-uncased-vocab.txt"));
  return randomModelFolder(path.join(tmp, "pretrained"), tok, { head: "pretraining", seed: 3, numHiddenLayers: 1, maxPositionEmbeddings: 64 });
}

/** The header and the first 160 rows of the bundled SST-2 slice (79 negative, 81 positive). */
const SST = path.join(tmp, "reviews.tsv");
writeFileSync(SST, readFileSync(path.join(DATA, "finetune/sst2-train.tsv"), "utf8").split("\n").slice(0, 161).join("\n") + "\n");

async function options(out: string, extra: Partial<FinetuneOptions> = {}): Promise<FinetuneOptions> {
  const task: FinetuneTask = "classify";
  return { task, train: SST, model: await pretrainedFolder(), out: path.join(tmp, out), epochs: 1, batch: 16, maxLength: 32, lr: 5e-4, schedule: "linear", logEvery: 5, seed: 42, resume: false, device: "cpu", ...extra };
}

const outcome = (out: string): RunOutcome => JSON.parse(readFileSync(path.join(tmp, out, "outcome.json"), "utf8"));

test("without an eval file a classify run holds out a seeded 10%, scores its best checkpoint there against the majority class, and writes outcome.json", async () => {
  assert.equal(finetuneDefaults.evalSplit, 0.1);
  const messages: string[] = [];
  const r = await finetune(await options("held", { onMessage: (m) => messages.push(m) }));
  assert.ok(messages.includes("held out 10% of reviews.tsv for evaluation (16 of 160 examples, seed 42; pass an eval file to choose them)"), messages.join("\n"));
  assert.ok(messages.some((m) => m.startsWith("classify: 144 training examples (144 features), 16 evaluation examples")), messages.join("\n"));

  // One epoch of 144 examples in batches of 16 is 9 steps: the end of the run is evaluated, and its row carries it.
  const last = r.metrics.at(-1)!;
  assert.equal(last.step, 9);
  assert.ok(Number.isFinite(last.eval_accuracy));

  // The held-out rows are the same 16 for the seed, whatever the run; evaluate on them gives the score.
  const examples = await TASK_SPECS.classify.read(SST, { labelled: true });
  const split = holdOut(examples, 0.1, 42, (_, i) => String(i))!;
  assert.equal(split.held.length, 16);
  const rows = readFileSync(SST, "utf8").split("\n");
  const heldFile = path.join(tmp, "held.tsv");
  writeFileSync(heldFile, [rows[0], ...split.held.map((e) => rows[(e as { line: number }).line - 1])].join("\n") + "\n");
  const model = await TaskModel.load(path.join(tmp, "held"));
  const scores = await model.evaluate(heldFile);
  await model.release();
  const count = (label: string, xs: unknown[]) => xs.filter((e) => (e as { label: string }).label === label).length;
  const first = (split.kept[0] as { label: string }).label; // a tie goes to the label seen first
  const other = first === "0" ? "1" : "0";
  const majorityLabel = count(other, split.kept) > count(first, split.kept) ? other : first;
  assert.deepEqual(r.score, { metric: "accuracy", value: scores.accuracy, step: r.best!.step, on: "held-out", examples: 16, majority: count(majorityLabel, split.held) / 16 });

  const o = outcome("held");
  assert.equal(o.state, "done");
  assert.equal(o.step, 9);
  assert.equal(o.steps, 9);
  assert.deepEqual(o.score, r.score);
  assert.ok(Math.abs(Date.parse(o.ended) - Date.now()) < 60_000, o.ended);
});

test("a run stopped and resumed holds out the same examples and ends with the score of one that was not stopped; outcome.json says stopped, then done", async () => {
  const run = { steps: 6, evalEvery: 3, checkpointEvery: 3 };
  const whole = await finetune(await options("whole", run));
  const controller = new AbortController();
  const part = await finetune(await options("part", { ...run, signal: controller.signal, onProgress: (p) => p.step === 3 && controller.abort() }));
  assert.equal(part.stopped, true);
  const stopped = outcome("part");
  assert.equal(stopped.state, "stopped");
  assert.equal(stopped.step, 3);
  assert.equal(stopped.steps, 6);
  assert.deepEqual(stopped.score, part.score);

  // Input refused before training begins leaves the run as it was: its outcome too.
  await assert.rejects(finetune(await options("part", { ...run, resume: true, train: path.join(tmp, "missing.tsv") })), /missing\.tsv/);
  assert.deepEqual(outcome("part"), stopped);

  const messages: string[] = [];
  let inTraining: boolean | undefined;
  const resumed = await finetune(await options("part", { ...run, resume: true, onMessage: (m) => messages.push(m), onProgress: () => (inTraining ??= existsSync(path.join(tmp, "part/outcome.json"))) }));
  assert.equal(inTraining, false, "a run in training has no outcome.json");
  assert.ok(messages.includes("held out 10% of reviews.tsv for evaluation (16 of 160 examples, seed 42; pass an eval file to choose them)"), messages.join("\n"));
  assert.deepEqual(resumed.score, whole.score);
  // The same examples were trained on, in the same order, and evaluated on: the same last row.
  const [a, b] = [resumed.metrics.at(-1)!, whole.metrics.at(-1)!];
  for (const k of ["loss", "eval_accuracy", "eval_macro_f1"]) assert.ok(Math.abs(a[k] - b[k]) < 1e-5, `${k}: resumed ${a[k]} vs uninterrupted ${b[k]}`);
  assert.equal(resumed.score!.step, whole.best!.step);
  const done = outcome("part");
  assert.equal(done.state, "done");
  assert.equal(done.step, 6);
  assert.deepEqual(done.score, whole.score);
});

test("a diverging run (learning rate 1e30) stops with an error and outcome.json says diverged, and why", async () => {
  await assert.rejects(finetune(await options("diverged", { steps: 6, lr: 1e30, warmupSteps: 0 })), /diverged/);
  const o = outcome("diverged");
  assert.equal(o.state, "diverged");
  assert.match(o.message!, /training diverged at step \d+: .* is (NaN|-?Infinity)/);
  assert.ok(o.step < 6);
  assert.equal(o.steps, 6);
});

test("--eval-split 0 trains on every example and reports no score", async () => {
  const messages: string[] = [];
  const r = await finetune(await options("all", { steps: 3, evalSplit: 0, onMessage: (m) => messages.push(m) }));
  assert.equal(r.score, undefined);
  assert.ok(!messages.some((m) => m.includes("held out")));
  assert.ok(messages.some((m) => m.startsWith("classify: 160 training examples (160 features), labels 0, 1")), messages.join("\n"));
  assert.ok(r.metrics.every((m) => !("eval_accuracy" in m)));
  const o = outcome("all");
  assert.equal(o.state, "done");
  assert.equal(o.score, undefined);
  await assert.rejects(finetune(await options("bad-split", { evalSplit: 1 })), /eval split must be in \[0, 1\), got 1/);
  assert.ok(!existsSync(path.join(tmp, "bad-split")), "a refused run writes nothing");
});

test("the held-out split: seeded, whole groups (a QA question id with all its windows), at least one held out and one kept", () => {
  const xs = Array.from({ length: 30 }, (_, i) => ({ id: `q${Math.floor(i / 3)}` })); // 10 ids, 3 examples each
  const a = holdOut(xs, 0.2, 42, (e) => e.id)!;
  assert.deepEqual(holdOut(xs, 0.2, 42, (e) => e.id), a);
  assert.equal(new Set(a.held.map((e) => e.id)).size, 2);
  assert.equal(a.held.length, 6);
  for (const e of a.held) assert.ok(!a.kept.some((k) => k.id === e.id), `${e.id} is on both sides`);
  assert.notDeepEqual(holdOut(xs, 0.2, 43, (e) => e.id)!.held, a.held);
  const two = holdOut([1, 2], 0.01, 42, (_, i) => String(i))!;
  assert.equal(two.held.length, 1);
  assert.equal(two.kept.length, 1);
  assert.equal(holdOut([1, 2], 0.99, 42, (_, i) => String(i))!.kept.length, 1);
  assert.equal(holdOut([1], 0.1, 42, (_, i) => String(i)), undefined);
  assert.equal(holdOut([1, 2, 3], 0, 42, (_, i) => String(i)), undefined);
});

test("the command line prints the score, and a warning when the model does not beat the majority class", () => {
  assert.deepEqual(scoreLines({ metric: "accuracy", value: 0.8121, step: 9, on: "held-out", examples: 16, majority: 0.5625 }), ["accuracy 0.812 on 16 held-out examples (majority class 0.563)"]);
  const [line, warning] = scoreLines({ metric: "accuracy", value: 0.5, step: 9, on: "eval", examples: 80, majority: 0.5 });
  assert.equal(line, "accuracy 0.500 on 80 evaluation examples (majority class 0.500)");
  assert.match(warning, /^warning: the model did not beat the majority class \(.*\): more data, more epochs, or a better pretrained model$/);
  assert.deepEqual(scoreLines({ metric: "f1", value: 0.25, step: 4, on: "held-out", examples: 3 }), ["f1 0.250 on 3 held-out examples"]);
  assert.deepEqual(scoreLines(undefined), []);
});
