// Fine-tuning end to end on the bundled data (data/finetune): each task trains, evaluates and predicts through the
// commands' code; a run resumes exactly; the best checkpoint is what `evaluate` scores; the heads
// fixtures of Hugging Face pass through the same feature/collate/forward path; bad input is an error.
import "./isolated-cache.js";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { headFromArchitectures } from "../../server/model/heads.js";
import { createInferenceSession } from "../../server/inference/inference-graph.js";
import { loadParams, ParamStore, paramShapes } from "../../server/model/params.js";
import { readSafetensors, toFloat32 } from "../../server/model/safetensors.js";
import { feedsFromBatch } from "../../server/dev/parity.js";
import { forwardFeatures } from "../../server/tasks/task-config.js";
import { TaskModel } from "../../server/inference/task-model.js";
import { collateFeatures, TASK_SPECS, type Feature } from "../../server/tasks/tasks.js";
import type { FinetuneTask } from "../../common/protocol.js";
import { finetune, type FinetuneOptions } from "../../server/tasks/finetune.js";
import { randomModelFolder } from "./random-model.js";
import { BertTokenizer } from "../../server/text/tokenizer.js";

const DATA = path.resolve(process.cwd(), "data");
const tmp = mkdtempSync(path.join(os.tmpdir(), "finetune-"));

/** A small "pretrained" model folder (random weights, the real bert-base-uncased vocabulary). */
async function pretrainedFolder(): Promise<string> {
  const tok = await BertTokenizer.fromVocabFile(path.join(DATA, "bert-base-uncased-vocab.txt"));
  return randomModelFolder(path.join(tmp, "pretrained"), tok, { head: "pretraining", seed: 3 });
}

function slice(name: string, text: string): string {
  const f = path.join(tmp, name);
  writeFileSync(f, text);
  return f;
}
const lines = (file: string, from: number, to: number) => readFileSync(file, "utf8").split("\n").slice(from, to).join("\n") + "\n";

async function options(task: FinetuneTask, train: string, evalFile: string | undefined, out: string, extra: Partial<FinetuneOptions> = {}): Promise<FinetuneOptions> {
  return { task, train, eval: evalFile, model: await pretrainedFolder(), out: path.join(tmp, out), epochs: 1, batch: 8, maxLength: 64, lr: 5e-4, schedule: "linear", logEvery: 2, seed: 11, resume: false, device: "cpu", ...extra };
}

test("classify: trains with evaluation, keeps the best checkpoint, evaluate and predict agree with it", async () => {
  const train = slice("sst-train.tsv", lines(path.join(DATA, "finetune/sst2-train.tsv"), 0, 161));
  const dev = slice("sst-dev.tsv", lines(path.join(DATA, "finetune/sst2-dev.tsv"), 0, 81));
  const messages: string[] = [];
  const r = await finetune(await options("classify", train, dev, "sst", { steps: 8, evalEvery: 4, onMessage: (m) => messages.push(m) }));
  assert.match(messages[0], /^loaded 39 tensors from .*; new \(initialised\): classifier\.weight, classifier\.bias; not used: cls\.predictions\.bias/);
  const rows = readFileSync(path.join(tmp, "sst/metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const evals = rows.filter((x) => "eval_accuracy" in x);
  assert.deepEqual(evals.map((x) => x.step), [4, 8]);
  assert.ok(rows.every((x) => Number.isFinite(x.loss) && x.lr >= 0));
  const best = evals.reduce((a, b) => (b.eval_accuracy > a.eval_accuracy ? b : a));
  assert.deepEqual(r.best, { step: best.step, metric: "accuracy", value: best.eval_accuracy });
  const cfg = JSON.parse(readFileSync(path.join(tmp, "sst/best/config.json"), "utf8"));
  assert.deepEqual(cfg.architectures, ["BertForSequenceClassification"]);
  assert.deepEqual(cfg.label2id, { "0": 0, "1": 1 });
  assert.equal(cfg.finetuning_task, "classify");

  const model = await TaskModel.load(path.join(tmp, "sst"));
  assert.equal(model.dir, path.join(tmp, "sst/best"));
  const scores = await model.evaluate(dev);
  assert.equal(scores.accuracy, best.eval_accuracy); // the inference graph scores the best checkpoint as the trainer did
  assert.equal(scores.examples, 80);
  const [p] = await model.predictExamples(model.fromText("a gorgeous, witty film", {}));
  assert.ok(p.label === "0" || p.label === "1");
  const probs = p.probabilities as Record<string, number>;
  assert.ok(Math.abs(probs["0"] + probs["1"] - 1) < 1e-6);
  await model.release();
});

test("a run stopped at a checkpoint and resumed continues the same loss curve", async () => {
  const mnli = path.join(DATA, "finetune/mnli-train.txt");
  const train = slice("mnli-train.txt", lines(mnli, 0, 96));
  const full = await finetune(await options("pair", train, undefined, "full", { steps: 8, checkpointEvery: 4 }));
  const controller = new AbortController();
  const part = await finetune(await options("pair", train, undefined, "part", { steps: 8, checkpointEvery: 4, signal: controller.signal, onProgress: (p) => p.step === 4 && controller.abort() }));
  assert.equal(part.stopped, true);
  await assert.rejects(finetune(await options("pair", train, undefined, "part", { steps: 8 })), /already holds a training run: pass --resume/);
  const resumed = await finetune(await options("pair", train, undefined, "part", { steps: 8, checkpointEvery: 4, resume: true }));
  const curve = [...part.metrics, ...resumed.metrics].map((m) => [m.step, m.loss]);
  assert.deepEqual(curve.map((c) => c[0]), full.metrics.map((m) => m.step));
  curve.forEach(([, loss], i) => assert.ok(Math.abs(loss - full.metrics[i].loss) < 1e-5, `step ${curve[i][0]}: ${loss} vs ${full.metrics[i].loss}`));
});

test("choice, qa and ner train, evaluate and predict through the same commands' code", async () => {
  const swag = path.join(DATA, "finetune/swag-train.csv");
  const squad = JSON.parse(readFileSync(path.join(DATA, "finetune/squad-train.json"), "utf8"));
  const ner = path.join(DATA, "finetune/chinese-ner-train.txt");
  const nerText = readFileSync(ner, "utf8").split(/\n\s*\n/);
  const cases: [FinetuneTask, string, string][] = [
    ["choice", slice("swag.csv", lines(swag, 0, 33)), slice("swag-dev.csv", lines(swag, 0, 1) + lines(swag, 80, 92))],
    ["qa", slice("squad.json", JSON.stringify({ data: [{ ...squad.data[0], paragraphs: squad.data[0].paragraphs.slice(0, 6) }] })), slice("squad-dev.json", JSON.stringify({ data: [{ ...squad.data[1], paragraphs: squad.data[1].paragraphs.slice(0, 3) }] }))],
    ["ner", slice("ner.txt", nerText.slice(0, 40).join("\n\n") + "\n"), slice("ner-dev.txt", nerText.slice(40, 60).join("\n\n") + "\n")],
  ];
  for (const [task, train, dev] of cases) {
    const r = await finetune(await options(task, train, dev, `run-${task}`, { steps: 4, evalEvery: 2 }));
    const last = r.metrics[r.metrics.length - 1];
    const main = TASK_SPECS[task].mainMetric;
    assert.ok(Number.isFinite(last.loss) && Number.isFinite(last[`eval_${main}`]), `${task}: ${JSON.stringify(last)}`);
    const model = await TaskModel.load(path.join(tmp, `run-${task}`));
    assert.equal(model.task, task);
    const scores = await model.evaluate(dev);
    assert.equal(scores[main], r.best!.value, `${task}: evaluate gives the trainer's best ${main}`);
    const examples = await model.readFile(dev, { labelled: false });
    const preds = await model.predictExamples(examples);
    assert.equal(preds.length, examples.length);
    if (task === "qa") {
      const p = preds[0] as { answer: string; start: number; end: number };
      const context = (examples[0] as { context: string }).context;
      assert.equal([...context].slice(p.start, p.end).join(""), p.answer);
    }
    if (task === "ner") {
      const [one] = await model.predictExamples(model.fromText("张三在北京工作。", {}));
      assert.equal((one.tags as string[]).length, 8);
      for (const e of one.entities as { text: string; start: number; end: number }[]) assert.equal([..."张三在北京工作。"].slice(e.start, e.end).join(""), e.text);
    }
    await model.release();
  }
});

test("the heads fixtures of Hugging Face go through the fine-tuning feature path unchanged", async () => {
  const fixtures: [string, FinetuneTask][] = [
    ["sequence_classification", "classify"],
    ["token_classification", "ner"],
    ["question_answering", "qa"],
    ["multiple_choice", "choice"],
  ];
  for (const [name, task] of fixtures) {
    const dir = path.resolve(process.cwd(), "test/fixtures/hf/heads", name);
    const batch = JSON.parse(readFileSync(path.join(dir, "batch.json"), "utf8"));
    const cfg = (await import("../../server/model/config.js")).configFromJson(JSON.parse(readFileSync(path.join(dir, "config.json"), "utf8")));
    const head = headFromArchitectures(cfg.architectures)!;
    const rowsOf = (r: number[][] | number[][][]) => (task === "choice" ? (r as number[][][]) : (r as number[][]).map((x) => [x]));
    const ids = rowsOf(batch.input_ids), types = rowsOf(batch.token_type_ids), masks = rowsOf(batch.attention_mask);
    // Features as the readers' encoders make them: unpadded rows, labels per task.
    const features: Feature[] = ids.map((choices, b) => ({
      example: b,
      inputs: choices.map((row, c) => {
        const n = masks[b][c].filter((m) => m === 1).length;
        return { ids: row.slice(0, n), typeIds: types[b][c].slice(0, n) };
      }),
      label: task === "classify" || task === "choice" ? batch.labels[b] : undefined,
      tokenLabels: task === "ner" ? batch.labels[b] : undefined,
      start: task === "qa" ? batch.start_positions[b] : undefined,
      end: task === "qa" ? batch.end_positions[b] : undefined,
    }));
    const ours = collateFeatures(task, features, cfg.padTokenId, true);
    const { feeds } = feedsFromBatch(head, batch);
    for (const [k, t] of Object.entries(ours)) {
      assert.deepEqual(t.dims, feeds[k].dims, `${name} ${k} shape`);
      assert.deepEqual(Array.from(t.data as BigInt64Array), Array.from(feeds[k].data as BigInt64Array), `${name} ${k}`);
    }
    // And the batched, length-sorted forward pass returns each feature's own rows of the expected outputs.
    const params = ParamStore.fromShapes(paramShapes(cfg, head));
    loadParams(params, (await readSafetensors(path.join(dir, "model.safetensors"))).tensors, dir);
    const session = await createInferenceSession(cfg, head, params, { outputs: TASK_SPECS[task].outputs });
    const out = await forwardFeatures(task, features, (f) => session.run(f), { batchSize: 2, padId: cfg.padTokenId, labelled: false });
    const expected = (await readSafetensors(path.join(dir, "expected.safetensors"))).tensors;
    for (const output of TASK_SPECS[task].outputs) {
      const want = toFloat32(expected.get(output)!);
      const per = want.length / features.length;
      const T = ids[0][0].length;
      features.forEach((f, b) => {
        const got = out.get(f)![output];
        const n = f.inputs[0].ids.length;
        // Token outputs hold their batch's padded length: compare the feature's own n tokens.
        const labelsPerToken = task === "ner" ? per / T : 1;
        const count = task === "qa" || task === "ner" ? n * labelsPerToken : per;
        for (let i = 0; i < count; i++) {
          assert.ok(Math.abs(got[i] - want[b * per + i]) < 1e-4, `${name} ${output} row ${b} [${i}]: ${got[i]} vs ${want[b * per + i]}`);
        }
      });
    }
    await session.release();
  }
});

test("bad input: a model folder without weights, a file with no usable row, a missing file, prose, text in the label column", async () => {
  const empty = path.join(tmp, "nomodel");
  (await import("node:fs")).mkdirSync(empty, { recursive: true });
  (await import("node:fs")).copyFileSync(path.join(await pretrainedFolder(), "config.json"), path.join(empty, "config.json"));
  (await import("node:fs")).copyFileSync(path.join(await pretrainedFolder(), "vocab.txt"), path.join(empty, "vocab.txt"));
  const good = slice("good.tsv", "sentence\tlabel\nnice\t1\nbad\t0\n");
  await assert.rejects(finetune({ ...(await options("classify", good, undefined, "x1")), model: empty }), /model\.safetensors/);
  await assert.rejects(finetune(await options("classify", slice("none.tsv", "sentence\tlabel\n\t1\n\t0\n"), undefined, "x2")), /no labelled examples \(2 bad rows\)/);
  await assert.rejects(finetune(await options("classify", slice("one.tsv", "sentence\tlabel\nnice\t1\ngood\t1\n"), undefined, "x3")), /at least 2 labels/);
  await assert.rejects(finetune(await options("qa", path.join(tmp, "missing.json"), undefined, "x4")), /missing\.json: not a SQuAD JSON file \(ENOENT/);
  // Prose is no labelled file: most of its "rows" do not parse, and what does parse has text for labels.
  const prose = lines(path.join(DATA, "wikitext-2-slice/wiki.train.tokens"), 0, 300);
  await assert.rejects(finetune(await options("classify", slice("title.txt", prose), undefined, "x5")), /title\.txt:2: expected 2 columns \(text, label\), found 1/);
  const paragraphs = prose.split("\n").filter((l) => l.includes(",")).join("\n");
  await assert.rejects(finetune(await options("classify", slice("prose.txt", paragraphs), undefined, "x5")), /rows are not in classify's layout/);
  const swapped = lines(path.join(DATA, "finetune/sst2-train.tsv"), 1, 201)
    .trim()
    .split("\n")
    .map((l) => l.split("\t").reverse().join("\t"));
  await assert.rejects(finetune(await options("classify", slice("swapped.tsv", swapped.join("\n") + "\n"), undefined, "x6")), /distinct labels in 200 rows/);
});
