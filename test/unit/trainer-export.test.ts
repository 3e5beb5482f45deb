// A run handed over to PyTorch: `bert-studio export RUN --format trainer --out DIR` writes a folder in which
// Hugging Face's Trainer continues it (the model, its Adam moments, the data the run trains on, its recipe,
// train.py), and refuses, writing nothing, what it cannot hand over. No Python here: the exported train.py
// is run by scripts/test-trainer-handoff.sh.
import "./isolated-cache.js";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import type { TrainerRecipe } from "../../server/inference/trainer-export.js";
import { exportTrainer, instanceRow } from "../../server/inference/trainer-export.js";
import { evalSet } from "../../server/pretraining/mlm-eval.js";
import { BatchStream, pretrain, splitHeldOut, TOKENS_PER_SHARD, trainingData } from "../../server/pretraining/pretrain.js";
import { pretrainingOptions, shards, specialIds } from "../../server/pretraining/pretraining-data.js";
import { finetune, holdOut } from "../../server/tasks/finetune.js";
import { tokenizeCorpus } from "../../server/text/token-cache.js";
import { BertTokenizer } from "../../server/text/tokenizer.js";
import { Rng } from "../../server/util/rng.js";
import { DATA, tinyRun, VOCAB, workspace } from "./pretrain-workspace.js";
import { randomModelFolder } from "./random-model.js";

const cli = (...args: string[]) => spawnSync(process.execPath, ["bin/bert-studio.js", ...args], { encoding: "utf8" });
const dir = workspace("trainer-export-");
const corpus = path.join(dir, "corpus");
/** A tiny pretraining run with NSP and whole-word masking (seed 7, batch 4, seq 32, 6 steps, 10% held out). */
const run = path.join(dir, "run");
const readJson = (file: string) => JSON.parse(readFileSync(file, "utf8"));
const jsonl = (file: string) => readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l));
const filesOf = (d: string) => readdirSync(d, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.relative(d, path.join(e.parentPath, e.name))).sort();
const lines = (file: string, from: number, to: number) => readFileSync(file, "utf8").split("\n").slice(from, to).join("\n") + "\n";

before(async () => {
  await pretrain(tinyRun(dir, { nsp: true, wholeWordMask: true }));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test("a pretraining run becomes a folder Hugging Face's Trainer continues it in: the model, its moments, train.py and the run's recipe", () => {
  const out = path.join(dir, "trainer");
  const r = cli("export", run, "--format", "trainer", "--out", out);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /next: python .*train\.py, or torchrun --nproc_per_node N/);
  const files = ["README.md", "data/held_out.jsonl", "data/train.jsonl", "model/config.json", "model/model.safetensors", "model/tokenizer.json", "model/tokenizer_config.json", "model/vocab.txt", "optimizer.safetensors", "recipe.json", "requirements.txt", "train.py"];
  assert.deepEqual(filesOf(out), files);
  assert.deepEqual(r.stdout.trim().split("\n").map((f) => path.relative(out, f)), files);
  for (const f of ["config.json", "model.safetensors", "vocab.txt", "tokenizer.json"]) assert.deepEqual(readFileSync(path.join(out, "model", f)), readFileSync(path.join(run, f)), f);
  assert.deepEqual(readFileSync(path.join(out, "optimizer.safetensors")), readFileSync(path.join(run, "optimizer.safetensors")));

  // The run recorded what it trained with; recipe.json hands it to train.py.
  assert.equal(readJson(path.join(run, "trainer_state.json")).recipe.seq, 32);
  const recipe = readJson(path.join(out, "recipe.json")) as TrainerRecipe;
  const last = jsonl(path.join(run, "metrics.jsonl")).at(-1);
  assert.deepEqual(
    { kind: recipe.kind, architecture: recipe.architecture, step: recipe.step, finished: recipe.finished, default_max_steps: recipe.default_max_steps, batch: recipe.batch, seed: recipe.seed, seq: recipe.seq, nsp: recipe.nsp, corpus: recipe.corpus },
    { kind: "pretraining", architecture: "BertForPreTraining", step: 6, finished: true, default_max_steps: 6, batch: 4, seed: 7, seq: 32, nsp: true, corpus },
  );
  assert.deepEqual(recipe.schedule, { name: "linear", lr: 1e-3, warmup_steps: 1, total_steps: 6 });
  assert.deepEqual(recipe.masking, { rate: 0.3, max_predictions: 10, whole_word: true });
  assert.deepEqual(recipe.eval_masking, { rate: 0.15, max_predictions: 5 });
  assert.deepEqual(recipe.adamw, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01, max_grad_norm: 1, no_decay: ["bias", "LayerNorm.weight"] });
  assert.deepEqual(recipe.local, { step: 6, loss: last.loss, lr: last.lr });
  assert.deepEqual(recipe.notes, []);

  const script = readFileSync(path.join(out, "train.py"), "utf8");
  assert.ok(script.startsWith("#!/usr/bin/env python3\n"));
  for (const flag of ["--max_steps", "--per_device_train_batch_size", "--learning_rate", "--output_dir"]) assert.ok(script.includes(`"${flag}"`), flag);
  assert.match(readFileSync(path.join(out, "requirements.txt"), "utf8"), /^torch==2\.13\.0\ntransformers==5\.18\.0\naccelerate==\S+\ndatasets==\S+$/m);
  const readme = readFileSync(path.join(out, "README.md"), "utf8");
  for (const said of ["torchrun --nproc_per_node 8 train.py", "#SBATCH --nodes", "accelerate launch", "bert-studio import output --out", "Adam moments"]) assert.ok(readme.includes(said), said);
});

test("the data files hold what the pretraining pipeline makes of the corpus: the run's epoch of instances, the held-out documents' pairs", async () => {
  const out = path.join(dir, "trainer");
  const tok = await BertTokenizer.fromDir(run);
  const special = specialIds(tok);
  const { docs } = await tokenizeCorpus(corpus, tok);
  const { train, held } = splitHeldOut(docs, 0.1);
  const data = trainingData({ seq: 32, maskRate: 0.3, wholeWordMask: true, nsp: true });
  const epoch = readJson(path.join(run, "trainer_state.json")).epoch;
  assert.equal(epoch, 0); // 6 batches of 4 are a small part of the corpus's epoch
  const expected = shards(train, TOKENS_PER_SHARD).flatMap((range, i) => BatchStream.shardInstances(train, data, special, 7, epoch, i, range));
  const rows: { input_ids: number[]; token_type_ids: number[]; next_sentence_label: number }[] = jsonl(path.join(out, "data/train.jsonl"));
  assert.deepEqual(rows, expected.map((inst) => instanceRow(inst, true)));
  assert.deepEqual(jsonl(path.join(out, "data/held_out.jsonl")), evalSet(held, pretrainingOptions(32), special, 8, Infinity, { pairs: true }).pairs.map((inst) => instanceRow(inst, true)));

  // Rows as HF's BertForPreTraining takes them, unmasked ([CLS] A [SEP] B [SEP], segment ids, the NSP label).
  for (const row of rows) {
    const sep = row.input_ids.indexOf(tok.sepId);
    assert.equal(row.input_ids[0], tok.clsId);
    assert.equal(row.input_ids.at(-1), tok.sepId);
    assert.ok(!row.input_ids.includes(tok.maskId) && row.input_ids.length <= 32);
    assert.deepEqual(row.token_type_ids, row.input_ids.map((_, t) => (t > sep ? 1 : 0)));
    assert.ok(row.next_sentence_label === 0 || row.next_sentence_label === 1);
  }
  // The run's first batch was the first four rows, masked (epoch 0 is the one it trained in).
  const first = new BatchStream(train, data, special, 4, 7, { epoch: 0, shard: 0, next: 0 }, new Rng(7)).next();
  const ids = first.input_ids.data as BigInt64Array;
  const labels = new Map(Array.from(first.masked_positions.data as BigInt64Array, (p, i) => [Number(p), Number((first.masked_lm_labels.data as BigInt64Array)[i])]));
  rows.slice(0, 4).forEach((row, b) =>
    row.input_ids.forEach((id, t) => {
      const flat = b * 32 + t;
      assert.equal(labels.has(flat) && labels.get(flat)! >= 0 ? labels.get(flat) : Number(ids[flat]), id, `row ${b} token ${t}`);
    }),
  );
});

test("classify and pair runs become folders of their labelled rows: the run's held-out split, the label ids of its id2label", async () => {
  const tok = await BertTokenizer.fromVocabFile(VOCAB);
  const model = await randomModelFolder(path.join(dir, "pretrained"), tok, { head: "pretraining", seed: 3 });
  const files = {
    classify: path.join(dir, "sst.tsv"),
    pair: path.join(dir, "mnli.txt"),
  };
  writeFileSync(files.classify, lines(path.join(DATA, "finetune/sst2-train.tsv"), 0, 61));
  writeFileSync(files.pair, lines(path.join(DATA, "finetune/mnli-train.txt"), 0, 60));
  for (const task of ["classify", "pair"] as const) {
    const out = path.join(dir, `${task}-run`);
    await finetune({ task, train: files[task], model, out, epochs: 1, steps: 2, batch: 8, maxLength: 32, lr: 5e-4, schedule: "linear", logEvery: 1, seed: 11, resume: false, device: "cpu" });
    const dest = path.join(dir, `${task}-trainer`);
    mkdirSync(dest); // an empty folder, as a dialog makes it, is taken
    const { files: written } = await exportTrainer(out, dest);
    assert.ok(written.includes(path.join(dest, "train.py")));
    const recipe = readJson(path.join(dest, "recipe.json")) as TrainerRecipe;
    const labels = Object.values(readJson(path.join(out, "config.json")).id2label as Record<string, string>);
    assert.deepEqual(
      { kind: recipe.kind, task: recipe.task, architecture: recipe.architecture, labels: recipe.labels, max_length: recipe.max_length, task_data: recipe.task_data, step: recipe.step, seed: recipe.seed, batch: recipe.batch },
      { kind: "finetuning", task, architecture: "BertForSequenceClassification", labels, max_length: 32, task_data: files[task], step: 2, seed: 11, batch: 8 },
    );
    // The rows the run trained on and held out (a seeded 10%), each with its label's id and its token ids.
    const { TASK_SPECS } = await import("../../server/tasks/tasks.js");
    const examples = (await TASK_SPECS[task].read(files[task], { labelled: true })) as { text: string; pair?: string; label?: string }[];
    const split = holdOut(examples, 0.1, 11, (_e, i) => String(i))!;
    for (const [name, part] of [["train.jsonl", split.kept], ["held_out.jsonl", split.held]] as const) {
      const rows = jsonl(path.join(dest, "data", name));
      assert.deepEqual(rows.map((r) => [r.text, r.text_pair, r.label]), part.map((e) => [e.text, e.pair, labels.indexOf(e.label!)]), name);
      for (const [i, row] of rows.entries()) {
        const e = await tok.encode(part[i].text, part[i].pair, { maxLength: 32 });
        assert.deepEqual([row.input_ids, row.token_type_ids], [e.ids, e.typeIds]);
      }
    }
    assert.equal(jsonl(path.join(dest, "data/held_out.jsonl")).length, 6);
  }
});

test("bad input is refused with one clear message each, and nothing is written", () => {
  const out = path.join(dir, "refused");
  const nothingWritten = () => assert.ok(!existsSync(out) && !readdirSync(dir).some((f) => f.includes(".partial")), "nothing written");
  const refused = (pattern: RegExp, ...args: string[]) => {
    const r = cli("export", ...args, "--format", "trainer", "--out", out);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    nothingWritten();
  };
  refused(/pretrained is not a BERT Studio run \(it has no trainer_state\.json.*export the model with --format hf/, path.join(dir, "pretrained"));
  refused(/corpus is not a model or a run: it has no config\.json/, corpus);
  refused(/nowhere: no such folder \(the corpus/, run, "--corpus", path.join(dir, "nowhere"));
  refused(/missing\.tsv: no such file \(the labelled file/, path.join(dir, "classify-run"), "--task-data", path.join(dir, "missing.tsv"));
  const inCorpus = cli("export", run, "--format", "trainer", "--out", path.join(corpus, "trainer"));
  assert.equal(inCorpus.status, 1);
  assert.match(inCorpus.stderr, /cannot export into .*corpus\/trainer: it is inside the corpus .*; choose a folder outside it/);
  assert.deepEqual(readdirSync(corpus), ["wiki.tokens"]);

  // A corpus that fails while the data is written (too few documents): the folder made for it goes too.
  const small = path.join(dir, "small-corpus");
  mkdirSync(small);
  writeFileSync(path.join(small, "one.txt"), "One document is not a corpus . It has two sentences .\n");
  const deep = path.join(dir, "new-parent", "trainer");
  const tooSmall = cli("export", run, "--format", "trainer", "--out", deep, "--corpus", small);
  assert.equal(tooSmall.status, 1);
  assert.match(tooSmall.stderr, /small-corpus: a pretraining corpus needs at least 4 documents/);
  assert.ok(!existsSync(path.join(dir, "new-parent")), "nothing written");

  // A question-answering run: only the classification heads are handed over.
  const qa = path.join(dir, "qa-run");
  cpSync(path.join(dir, "classify-run"), qa, { recursive: true });
  const cfg = readJson(path.join(qa, "config.json"));
  writeFileSync(path.join(qa, "config.json"), JSON.stringify({ ...cfg, architectures: ["BertForQuestionAnswering"], finetuning_task: "qa" }));
  refused(/qa-run is a qa run: --format trainer hands over pretraining runs and classify or pair fine-tuning runs/, qa);

  // An existing folder that holds something is left as it was.
  const full = path.join(dir, "full");
  mkdirSync(full);
  writeFileSync(path.join(full, "notes.txt"), "mine\n");
  const r = cli("export", run, "--format", "trainer", "--out", full);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /cannot export into .*full: it exists and is not an empty folder/);
  assert.deepEqual(readdirSync(full), ["notes.txt"]);
});

test("a run from before recipes were recorded is exported with the defaults, said in notes, and needs its corpus named", () => {
  const old = path.join(dir, "old-run");
  cpSync(run, old, { recursive: true });
  const state = readJson(path.join(old, "trainer_state.json"));
  delete state.recipe;
  writeFileSync(path.join(old, "trainer_state.json"), JSON.stringify(state));
  const out = path.join(dir, "old-trainer");
  const r = cli("export", old, "--format", "trainer", "--out", out);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /does not record its corpus: give it with --corpus DIR/);
  assert.ok(!existsSync(out));

  const ok = cli("export", old, "--format", "trainer", "--out", out, "--corpus", corpus);
  assert.equal(ok.status, 0, ok.stderr);
  const recipe = readJson(path.join(out, "recipe.json")) as TrainerRecipe;
  assert.match(recipe.notes[0], /trained before runs recorded their recipe: the defaults are assumed \(--seq 128 --batch 32 --mask-rate 0\.3 --lr 0\.002/);
  // The run logged its own learning rate (1e-3 at a 6-step schedule): the assumed schedule is said not to match it.
  assert.match(recipe.notes.at(-1)!, /logged a learning rate of .* at step 6, the schedule in recipe\.json gives/);
  assert.ok(readFileSync(path.join(out, "README.md"), "utf8").includes("trained before runs recorded their recipe"));
});
