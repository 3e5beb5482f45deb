// Pretraining end to end on real text: checkpoints, metrics, resume, bad input, fill-mask on the result.
import "./isolated-cache.js";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync, statSync, mkdirSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { FillMaskPipeline } from "../../server/inference/fill-mask.js";
import { pretrain } from "../../server/pretraining/pretrain.js";
import { tinyRun, workspace } from "./pretrain-workspace.js";

const options = tinyRun;

test("pretrain writes an HF run folder with metrics, resumes, and fill-mask reads it (with NSP: a BertForPreTraining)", async () => {
  const dir = workspace();
  const first = await pretrain(options(dir, { nsp: true }));
  assert.equal(first.metrics.length, 2);
  const run = path.join(dir, "run");
  for (const f of ["config.json", "model.safetensors", "vocab.txt", "tokenizer.json", "optimizer.safetensors", "trainer_state.json", "metrics.jsonl"]) {
    assert.ok(statSync(path.join(run, f)).size > 0, f);
  }
  const rows = readFileSync(path.join(run, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(rows.map((r) => r.step), [3, 6]);
  for (const k of ["loss", "mlm_loss", "nsp_loss", "mlm_acc", "nsp_acc", "lr", "tokens_per_s", "eval_mlm_acc", "eval_nsp_acc", "eval_mlm_perplexity"]) assert.ok(Number.isFinite(rows[1][k]), k);
  assert.deepEqual(JSON.parse(readFileSync(path.join(run, "config.json"), "utf8")).architectures, ["BertForPreTraining"]);

  await assert.rejects(pretrain(options(dir, { nsp: true })), /already holds a training run: pass --resume/);
  const resumed = await pretrain(options(dir, { resume: true, steps: 9 }));
  assert.deepEqual(resumed.metrics.map((m) => m.step), [9]);
  assert.equal(JSON.parse(readFileSync(path.join(run, "trainer_state.json"), "utf8")).step, 9);

  const fm = await FillMaskPipeline.load(run);
  const preds = await fm.predict("the [MASK] was built in [MASK] .", 3);
  assert.equal(preds.length, 2);
  for (const p of preds) {
    assert.equal(p.length, 3);
    assert.ok(p[0].score >= p[1].score && p[1].score >= p[2].score && p[0].score <= 1);
  }
  await assert.rejects(fm.predict("no mask here"), /no \[MASK\]/);
  await fm.release();
});

test("a run stopped at a checkpoint and resumed continues the same loss curve (dropout on)", async () => {
  const a = workspace();
  const whole = await pretrain(options(a, { dropout: 0.1, nsp: true }));
  const b = workspace();
  const controller = new AbortController();
  const first = await pretrain(options(b, { dropout: 0.1, nsp: true, signal: controller.signal, onProgress: (p) => p.step === 3 && controller.abort() }));
  assert.ok(first.stopped);
  assert.deepEqual(first.metrics.map((m) => m.step), [3]);
  const rest = await pretrain(options(b, { resume: true }));
  assert.deepEqual(rest.metrics.map((m) => m.step), [6]);
  for (const k of ["loss", "mlm_loss", "nsp_loss", "eval_loss"]) {
    assert.ok(Math.abs(rest.metrics[0][k] - whole.metrics[1][k]) < 1e-5, `${k}: resumed ${rest.metrics[0][k]} vs uninterrupted ${whole.metrics[1][k]}`);
  }
  assert.notEqual(whole.metrics[0].loss, whole.metrics[1].loss);
});

test("--dropout 0 (the default) is saved in config.json and takes the randomness out of training steps", async () => {
  // With dropout on, a checkpoint reseeds the dropout masks, so the checkpoint cadence changes the curve;
  // with dropout off the curve is the same whatever the cadence.
  const dir = workspace();
  const a = await pretrain(options(dir, { out: path.join(dir, "a") }));
  const b = await pretrain(options(dir, { dropout: 0, out: path.join(dir, "b"), checkpointEvery: 2 }));
  assert.deepEqual(a.metrics.map((m) => m.loss), b.metrics.map((m) => m.loss));
  const cfg = JSON.parse(readFileSync(path.join(dir, "a", "config.json"), "utf8"));
  assert.equal(cfg.hidden_dropout_prob, 0);
  assert.equal(cfg.attention_probs_dropout_prob, 0);
  const c = await pretrain(options(dir, { dropout: 0.1, out: path.join(dir, "c") }));
  const d = await pretrain(options(dir, { dropout: 0.1, out: path.join(dir, "d"), checkpointEvery: 2 }));
  assert.notDeepEqual(c.metrics.map((m) => m.loss), d.metrics.map((m) => m.loss));
});

test("resume on a corrupt checkpoint is one clear error and keeps the files", async () => {
  const dir = workspace();
  await pretrain(options(dir, { steps: 3 }));
  const run = path.join(dir, "run");
  const model = readFileSync(path.join(run, "model.safetensors"));
  writeFileSync(path.join(run, "optimizer.safetensors"), "not a safetensors file");
  await assert.rejects(pretrain(options(dir, { resume: true, steps: 6 })), /cannot resume from .*optimizer\.safetensors.*left as it is/);
  assert.deepEqual(readFileSync(path.join(run, "model.safetensors")), model);
});

test("--train-vocab trains a WordPiece vocabulary on the corpus; resume uses the run's own", async () => {
  const dir = workspace();
  await pretrain(options(dir, { vocab: undefined, trainVocab: 600, steps: 3 }));
  const vocab = readFileSync(path.join(dir, "run/vocab.txt"), "utf8").split("\n").filter(Boolean);
  assert.equal(vocab.length, 600);
  assert.deepEqual(vocab.slice(0, 5), ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]);
  assert.equal(JSON.parse(readFileSync(path.join(dir, "run/config.json"), "utf8")).vocab_size, 600);
  const resumed = await pretrain(options(dir, { vocab: undefined, resume: true, steps: 6 }));
  assert.deepEqual(resumed.metrics.map((m) => m.step), [6]);
});

test("an empty folder or a folder of binaries is a clear error", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "empty-"));
  mkdirSync(path.join(dir, "corpus"));
  await assert.rejects(pretrain(options(dir)), /no text found/);
  writeFileSync(path.join(dir, "corpus/a.bin"), Buffer.from([0, 1, 2, 3, 0, 0, 255]));
  writeFileSync(path.join(dir, "corpus/b.txt"), Buffer.from([0xff, 0xfe, 0, 0x41]));
  await assert.rejects(pretrain(options(dir)), /no text found/);
});
