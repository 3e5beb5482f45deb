// Models in and out of the command line, as a user runs it (bin/bert-studio.js over the built bundle, which
// npm test builds first): an HF-made folder imported and filling masks, exported as ONNX (fp32 and int8)
// and run by ONNX Runtime with the same predictions, and never written over a model or a run.
import "./isolated-cache.js";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import * as ort from "onnxruntime-node";
import { opTypeCounts } from "../../server/model/onnx.js";
import { BertTokenizer, SPECIAL_TOKENS } from "../../server/text/tokenizer.js";

const cli = (...args: string[]) => spawnSync(process.execPath, ["bin/bert-studio.js", ...args], { encoding: "utf8" });
const tmp = mkdtempSync(path.join(os.tmpdir(), "cli-models-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const SENTENCE = "the cat sat on the [MASK] .";
const FIXTURE = "test/fixtures/hf/pretraining";
const VOCAB_SIZE = (JSON.parse(readFileSync(path.join(FIXTURE, "config.json"), "utf8")) as { vocab_size: number }).vocab_size;

/**
 * test/fixtures/hf/pretraining (a BertForPreTraining made by HF, without a tokenizer) with a vocab.txt of
 * its vocab_size: the special tokens, the sentence's words, then filler.
 */
function hfFolder(): string {
  const dir = path.join(tmp, "hf");
  mkdirSync(dir);
  for (const f of ["config.json", "model.safetensors"]) copyFileSync(path.join(FIXTURE, f), path.join(dir, f));
  const words = [...SPECIAL_TOKENS, "the", "cat", "sat", "on", "mat", "."];
  writeFileSync(path.join(dir, "vocab.txt"), [...words, ...Array.from({ length: VOCAB_SIZE - words.length }, (_, i) => `w${i}`)].join("\n") + "\n");
  return dir;
}

/** A folder's files and their contents, to show it was left as it was. */
const snapshot = (dir: string) => readdirSync(dir).map((f) => `${f}:${readFileSync(path.join(dir, f)).toString("base64")}`).join("\n");

const hf = hfFolder();
const imported = path.join(tmp, "runs", "imported");

test("an HF-made folder is imported by loading it and copying its files; fill-mask then reads the copy", () => {
  const r = cli("import", hf, "--out", imported);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /BertForPreTraining/);
  for (const f of ["config.json", "model.safetensors", "vocab.txt"]) assert.deepEqual(readFileSync(path.join(imported, f)), readFileSync(path.join(hf, f)), f);
  const fill = cli("fill-mask", "--model", imported, SENTENCE, "--json");
  assert.equal(fill.status, 0, fill.stderr);
  assert.equal((JSON.parse(fill.stdout) as { masks: unknown[][] }).masks[0].length, 5);
});

/**
 * Exports `imported` as ONNX into `out` (with `flags`) and checks that ONNX Runtime, given the exported
 * folder alone (its tokenizer, its graph), gives the probabilities of every token that fill-mask (with the
 * same flags) gives; returns the op types of the exported graph.
 */
async function exportMatchesFillMask(out: string, flags: string[]): Promise<Map<string, number>> {
  const r = cli("export", imported, "--format", "onnx", "--out", out, ...flags);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readdirSync(out).sort(), ["config.json", "model.onnx", "vocab.txt"]);

  // fill-mask's probabilities of every token of the vocabulary (a random model's are close to uniform).
  const fill = cli("fill-mask", "--model", imported, SENTENCE, "--json", "--top-k", String(VOCAB_SIZE), ...flags);
  assert.equal(fill.status, 0, fill.stderr);
  const expected = (JSON.parse(fill.stdout) as { masks: { id: number; score: number }[][] }).masks[0];

  const tok = await BertTokenizer.fromDir(out);
  const { ids, typeIds } = await tok.encode(SENTENCE);
  const i64 = (xs: number[], dims: number[]) => new ort.Tensor("int64", BigInt64Array.from(xs.map(BigInt)), dims);
  const session = await ort.InferenceSession.create(path.join(out, "model.onnx"));
  const outputs = await session.run({
    input_ids: i64(ids, [1, ids.length]),
    token_type_ids: i64(typeIds, [1, ids.length]),
    attention_mask: i64(ids.map(() => 1), [1, ids.length]),
    masked_positions: i64([ids.indexOf(tok.maskId)], [1]),
  });
  await session.release();
  const logits = Array.from(outputs.prediction_logits.data as Float32Array);
  assert.equal(logits.length, tok.vocabSize);
  const max = Math.max(...logits);
  const sum = logits.reduce((s, x) => s + Math.exp(x - max), 0);
  const scores = logits.map((x) => Math.exp(x - max) / sum);
  assert.equal(expected.length, scores.length);
  for (const { id, score } of expected) assert.ok(Math.abs(scores[id] - score) <= 1e-5 * score, `token ${id}: ${scores[id]} vs ${score}`);
  assert.equal(scores.indexOf(Math.max(...scores)), expected[0].id);
  return opTypeCounts(readFileSync(path.join(out, "model.onnx")));
}

test("export onnx writes a model.onnx that ONNX Runtime runs with the masked-LM predictions of fill-mask", async () => {
  const ops = await exportMatchesFillMask(path.join(tmp, "onnx"), []);
  assert.ok(![...ops.keys()].some((op) => op.startsWith("com.microsoft.")), `${[...ops.keys()]}`);
});

test("export onnx --int8: int8 dense layers (DynamicQuantizeMatMul), a smaller file, the predictions of fill-mask --int8", async () => {
  const ops = await exportMatchesFillMask(path.join(tmp, "onnx-int8"), ["--int8"]);
  const layers = (JSON.parse(readFileSync(path.join(FIXTURE, "config.json"), "utf8")) as { num_hidden_layers: number }).num_hidden_layers;
  assert.equal(ops.get("com.microsoft.DynamicQuantizeMatMul"), 6 * layers + 1); // and the MLM transform's
  const size = (dir: string) => statSync(path.join(tmp, dir, "model.onnx")).size;
  assert.ok(size("onnx-int8") < size("onnx"), `${size("onnx-int8")} vs ${size("onnx")}`);
  const bad = cli("export", imported, "--format", "hf", "--int8", "--out", path.join(tmp, "hf-int8"));
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--int8 is for --format onnx/);
  assert.ok(!existsSync(path.join(tmp, "hf-int8")));
});

test("export hf copies the model's files, which fill-mask loads", () => {
  const out = path.join(tmp, "hf-export");
  const r = cli("export", imported, "--format", "hf", "--out", out);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readdirSync(out).sort(), ["config.json", "model.safetensors", "vocab.txt"]);
  assert.equal(cli("fill-mask", "--model", out, SENTENCE).status, 0);
});

test("import and export never write over a model or a run: the folder is named, exit status 1, nothing changes", () => {
  const run = path.join(tmp, "runs", "pretrain-tiny");
  mkdirSync(run, { recursive: true });
  writeFileSync(path.join(run, "trainer_state.json"), JSON.stringify({ step: 3 }));
  const before = [snapshot(imported), snapshot(run), snapshot(hf)];
  const refusals: [string[], RegExp][] = [
    [["import", hf, "--out", imported], /cannot import into .*imported: it holds a model; choose another --out/],
    [["import", hf, "--out", run], /cannot import into .*pretrain-tiny: it holds a training run/],
    [["export", imported, "--format", "onnx", "--out", imported], /cannot export into .*imported: it is the model itself/],
    [["export", imported, "--format", "hf", "--out", hf], /cannot export into .*hf: it holds a model/],
    [["export", imported, "--format", "onnx", "--out", run], /cannot export into .*pretrain-tiny: it holds a training run/],
  ];
  for (const [args, message] of refusals) {
    const r = cli(...args);
    assert.equal(r.status, 1, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  assert.deepEqual([snapshot(imported), snapshot(run), snapshot(hf)], before);
});

test("a folder that does not load is not imported, and a format that does not exist is a usage error", () => {
  const broken = path.join(tmp, "no-tokenizer");
  mkdirSync(broken);
  for (const f of ["config.json", "model.safetensors"]) copyFileSync(path.join(hf, f), path.join(broken, f));
  const out = path.join(tmp, "runs", "broken");
  const r = cli("import", broken, "--out", out);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /no tokenizer\.json or vocab\.txt/);
  assert.ok(!existsSync(out), "nothing written for a model that does not load");

  const bad = cli("export", imported, "--format", "tflite", "--out", path.join(tmp, "tflite"));
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /export needs --format hf, onnx or trainer, got tflite/);
});
