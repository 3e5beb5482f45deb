// The levers of the pretraining recipe (docs/RECIPES.md): masked LM without NSP, the mask rate, AdamW's
// beta2, the warmup ratio, the model's shape and sinusoidal position starts, each checked where it lands
// (the examples, the saved config and weights, the metrics), and bad values refused with one message.
import "./isolated-cache.js";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { FillMaskPipeline } from "../../server/inference/fill-mask.js";
import { evaluateOnText } from "../../server/pretraining/mlm-eval.js";
import { pretrain } from "../../server/pretraining/pretrain.js";
import { finetune } from "../../server/tasks/finetune.js";
import { createInstances, pretrainingOptions, specialIds } from "../../server/pretraining/pretraining-data.js";
import { readSafetensors, toFloat32 } from "../../server/model/safetensors.js";
import { tokenizeCorpus } from "../../server/text/token-cache.js";
import { BertTokenizer } from "../../server/text/tokenizer.js";
import { Rng } from "../../server/util/rng.js";
import { DATA, tinyRun, VOCAB, workspace } from "./pretrain-workspace.js";

const rowsOf = (run: string) => readFileSync(path.join(run, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
const configOf = (run: string) => JSON.parse(readFileSync(path.join(run, "config.json"), "utf8"));

test("without NSP, examples are single [CLS] text [SEP] segments of consecutive sentences of one document", async () => {
  const dir = workspace("segments-");
  const tok = await BertTokenizer.fromVocabFile(VOCAB);
  const { docs } = await tokenizeCorpus(path.join(dir, "corpus"), tok);
  const special = specialIds(tok);
  const data = { ...pretrainingOptions(64), nextSentence: false };
  const instances = createInstances(docs, data, special, new Rng(1));
  assert.ok(instances.length > 100);
  let tokens = 0;
  for (const inst of instances) {
    const ids = Array.from(inst.ids);
    assert.ok(ids.length <= 64 && ids.length >= 3);
    assert.equal(ids[0], special.cls);
    assert.equal(ids.at(-1), special.sep);
    assert.equal(ids.filter((t) => t === special.sep).length, 1, "one segment");
    assert.equal(inst.bStart, ids.length, "no segment B: every token type is 0");
    assert.equal(inst.isRandomNext, 0);
    tokens += ids.length;
  }
  // A segment ends at a sentence boundary (or is cut at 64 tokens), so it fills the sequence only in part.
  assert.ok(tokens / instances.length > 32, `segments of ${tokens / instances.length} tokens on average`);
  // The text of a segment is the document's, in order: it occurs in the concatenation of its sentences.
  const all = Array.from({ length: docs.length }, (_, d) => Array.from({ length: docs.sentences(d) }, (_, i) => Array.from(docs.sentence(d, i))).flat().join(" "));
  const inner = Array.from(instances[0].ids.slice(1, -1)).join(" ");
  assert.ok(all.some((doc) => doc.includes(inner)), "a segment is contiguous text of one document");
});

test("the mask rate sets the share of predicted tokens and max_predictions_per_seq", () => {
  assert.equal(pretrainingOptions(128).maxPredictionsPerSeq, 19); // round(0.15 × 128)
  const d = pretrainingOptions(128, 0.3);
  assert.equal(d.maskedLmProb, 0.3);
  assert.equal(d.maxPredictionsPerSeq, 38);
});

test("--no-nsp trains a BertForMaskedLM (no NSP head, no NSP figures); fill-mask, evaluate and resume take it", async () => {
  const dir = workspace("no-nsp-");
  const r = await pretrain(tinyRun(dir, { nsp: false, maskRate: 0.3, beta2: 0.98 }));
  const run = path.join(dir, "run");
  assert.deepEqual(configOf(run).architectures, ["BertForMaskedLM"]);
  const names = [...(await readSafetensors(path.join(run, "model.safetensors"))).tensors.keys()];
  assert.ok(names.includes("cls.predictions.transform.dense.weight"));
  assert.ok(!names.some((n) => n.startsWith("cls.seq_relationship") || n.startsWith("bert.pooler")), names.join());
  const last = rowsOf(run).at(-1);
  assert.ok(Number.isFinite(last.mlm_loss) && Number.isFinite(last.eval_mlm_acc));
  assert.equal(last.nsp_loss, undefined);
  assert.equal(last.eval_nsp_acc, undefined);
  assert.equal(r.metrics.length, 2);
  const fm = await FillMaskPipeline.load(run);
  assert.equal((await fm.predict("the [MASK] of the city .", 2))[0].length, 2);
  await fm.release();
  const score = await evaluateOnText(run, path.join(dir, "corpus"), { device: "cpu", seq: 32, batch: 4, maxSequences: 16 });
  assert.equal(score.nsp_acc, undefined);
  assert.ok(score.mlm_acc >= 0 && score.masked_tokens > 0);
  const resumed = await pretrain(tinyRun(dir, { nsp: false, resume: true, steps: 9 }));
  assert.deepEqual(resumed.metrics.map((m) => m.step), [9]);
  assert.deepEqual(configOf(run).architectures, ["BertForMaskedLM"]);
});

test("--from a BertForMaskedLM continues masked LM only; --from a BertForPreTraining keeps NSP", async () => {
  const dir = workspace("from-mlm-");
  await pretrain(tinyRun(dir, { nsp: false, out: path.join(dir, "mlm") }));
  await pretrain(tinyRun(dir, { vocab: undefined, from: path.join(dir, "mlm"), out: path.join(dir, "cont") }));
  assert.deepEqual(configOf(path.join(dir, "cont")).architectures, ["BertForMaskedLM"]);
  await pretrain(tinyRun(dir, { nsp: true, out: path.join(dir, "pre") }));
  await pretrain(tinyRun(dir, { vocab: undefined, from: path.join(dir, "pre"), out: path.join(dir, "cont2") }));
  assert.deepEqual(configOf(path.join(dir, "cont2")).architectures, ["BertForPreTraining"]);
});

test("the recipe's defaults: 30% masked, no dropout, initializer_range 0.05, sinusoidal positions; BERT's on request", async () => {
  const dir = workspace("defaults-");
  await pretrain(tinyRun(dir, { steps: 1, evalEvery: 1, checkpointEvery: 1, out: path.join(dir, "new") }));
  const cfg = configOf(path.join(dir, "new"));
  assert.deepEqual([cfg.hidden_dropout_prob, cfg.attention_probs_dropout_prob, cfg.initializer_range], [0, 0, 0.05]);
  const pos = toFloat32((await readSafetensors(path.join(dir, "new", "model.safetensors"))).tensors.get("bert.embeddings.position_embeddings.weight")!);
  assert.ok(Math.abs(pos[1] - 0.05 * Math.SQRT2) < 0.01, `cos(0) row at amplitude 0.05·√2: ${pos[1]}`);
  // BERT's recipe, flag by flag: random positions with BERT's 0.02, dropout 0.1.
  await pretrain(tinyRun(dir, { steps: 1, evalEvery: 1, checkpointEvery: 1, dropout: 0.1, initStd: 0.02, positionInit: "normal", maskRate: 0.15, out: path.join(dir, "bert") }));
  const bert = configOf(path.join(dir, "bert"));
  assert.deepEqual([bert.hidden_dropout_prob, bert.initializer_range], [0.1, 0.02]);
  const bpos = toFloat32((await readSafetensors(path.join(dir, "bert", "model.safetensors"))).tensors.get("bert.embeddings.position_embeddings.weight")!);
  assert.ok(Math.abs(bpos[1]) < 0.08 && Math.abs(bpos[1] - 0.05 * Math.SQRT2) > 1e-3, "a random start");
});

test("the model's shape flags and sinusoidal position starts land in config.json and the weights", async () => {
  const dir = workspace("shape-");
  await pretrain(tinyRun(dir, { steps: 1, evalEvery: 1, checkpointEvery: 1, layers: 1, hidden: 64, initStd: 0.02, positionInit: "sinusoidal", out: path.join(dir, "sin") }));
  const cfg = configOf(path.join(dir, "sin"));
  assert.deepEqual([cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size], [1, 64, 1, 256]);
  const pos = toFloat32((await readSafetensors(path.join(dir, "sin", "model.safetensors"))).tensors.get("bert.embeddings.position_embeddings.weight")!);
  // After one small step the rows are still close to sin/cos: row 0 is (0, a, 0, a, ...) with a = 0.02·√2.
  const a = 0.02 * Math.SQRT2;
  for (let i = 0; i < 64; i += 2) {
    assert.ok(Math.abs(pos[i]) < 0.01, `pos 0 dim ${i}: ${pos[i]}`);
    assert.ok(Math.abs(pos[i + 1] - a) < 0.01, `pos 0 dim ${i + 1}: ${pos[i + 1]}`);
  }
  const std = Math.sqrt(pos.reduce((s, x) => s + x * x, 0) / pos.length);
  assert.ok(Math.abs(std - 0.02) < 0.004, `position embeddings' standard deviation ${std}`);
});

test("a model pretrained without dropout fine-tunes with BERT's 0.1; one that names a dropout keeps it", async () => {
  const dir = workspace("ft-dropout-");
  const train = path.join(DATA, "finetune/sst2-dev.tsv");
  const tune = (model: string, out: string) =>
    finetune({ task: "classify", train, model, out: path.join(dir, out), steps: 1, epochs: 1, batch: 4, maxLength: 32, lr: 5e-5, schedule: "linear", resume: false, device: "cpu" });
  await pretrain(tinyRun(dir, { dropout: 0, steps: 1, evalEvery: 1, checkpointEvery: 1, out: path.join(dir, "nodrop") }));
  await tune(path.join(dir, "nodrop"), "a");
  assert.equal(configOf(path.join(dir, "a")).hidden_dropout_prob, 0.1);
  assert.equal(configOf(path.join(dir, "a")).attention_probs_dropout_prob, 0.1);
  await pretrain(tinyRun(dir, { dropout: 0.2, steps: 1, evalEvery: 1, checkpointEvery: 1, out: path.join(dir, "drop") }));
  await tune(path.join(dir, "drop"), "b");
  assert.equal(configOf(path.join(dir, "b")).hidden_dropout_prob, 0.2);
});

test("bad recipe values are one clear message each, before any work", () => {
  const dir = workspace("bad-recipe-");
  const cli = (...args: string[]) => spawnSync(process.execPath, ["bin/bert-studio.js", "pretrain", path.join(dir, "corpus"), "--out", path.join(dir, "run"), "--vocab", VOCAB, ...args], { encoding: "utf8" });
  const cases: [string[], RegExp][] = [
    [["--mask-rate", "0"], /--mask-rate must be in \(0, 1\), got 0/],
    [["--mask-rate", "1.5"], /--mask-rate must be in \(0, 1\), got 1.5/],
    [["--beta2", "1"], /--beta2 must be in \(0, 1\), got 1/],
    [["--warmup-ratio=-0.1"], /--warmup-ratio must be in \[0, 1\), got -0.1/],
    [["--warmup-ratio", "0.1", "--warmup", "5"], /--warmup \(steps\) or --warmup-ratio, not both/],
    [["--position-init", "zeros"], /--position-init must be normal or sinusoidal, got zeros/],
    [["--layers", "0"], /--layers/],
  ];
  for (const [args, message] of cases) {
    const r = cli(...args);
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  const shaped = spawnSync(process.execPath, ["bin/bert-studio.js", "pretrain", path.join(dir, "corpus"), "--out", path.join(dir, "run2"), "--from", path.join(dir, "x"), "--layers", "4"], { encoding: "utf8" });
  assert.equal(shaped.status, 2);
  assert.match(shaped.stderr, /--init-std and --position-init shape a new model: not with --from or --resume/);
});
