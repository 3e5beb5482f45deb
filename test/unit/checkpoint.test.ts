// Checkpoints in HF format: load an HF folder (tied weights, other heads), save and load back, errors.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { readConfig } from "../../server/model/config.js";
import { CheckpointError, loadParams, ParamStore, paramShapes, requireComplete, saveParams } from "../../server/model/params.js";
import { readSafetensors, type NamedTensor } from "../../server/model/safetensors.js";

const PRETRAINING = path.resolve(process.cwd(), "test/fixtures/hf/pretraining");

async function fixture() {
  const cfg = await readConfig(PRETRAINING);
  const { tensors } = await readSafetensors(path.join(PRETRAINING, "model.safetensors"));
  return { cfg, tensors };
}

test("an HF BertForPreTraining folder loads completely, the tied decoder from the word embeddings", async () => {
  const { cfg, tensors } = await fixture();
  const store = ParamStore.fromShapes(paramShapes(cfg, "pretraining"));
  const report = loadParams(store, tensors, "model.safetensors");
  assert.deepEqual(report.missing, []);
  assert.deepEqual(report.unexpected, []);
  assert.ok(!store.byName.has("cls.predictions.decoder.weight"), "decoder shares the word embeddings");
});

test("loading a pretraining checkpoint into a classifier reports new head and ignored tensors", async () => {
  const { cfg, tensors } = await fixture();
  const store = ParamStore.fromShapes(paramShapes({ ...cfg, id2label: { 0: "neg", 1: "pos" } }, "sequence_classification"));
  const report = loadParams(store, tensors, "model.safetensors");
  assert.deepEqual(report.missing.sort(), ["classifier.bias", "classifier.weight"]);
  assert.ok(report.unexpected.includes("cls.seq_relationship.weight"));
  assert.throws(() => requireComplete(report, "ckpt"), /missing tensor classifier\./);
});

test("a base-model checkpoint without the bert. prefix and with legacy LayerNorm names loads", async () => {
  const { cfg, tensors } = await fixture();
  const renamed = new Map<string, NamedTensor>();
  for (const [name, t] of tensors) {
    if (!name.startsWith("bert.")) continue;
    renamed.set(name.slice(5).replace(/LayerNorm\.weight$/, "LayerNorm.gamma").replace(/LayerNorm\.bias$/, "LayerNorm.beta"), t);
  }
  const store = ParamStore.fromShapes(paramShapes(cfg, "pretraining"));
  const report = loadParams(store, renamed, "bert-model.safetensors");
  assert.ok(report.missing.every((n) => n.startsWith("cls.")), report.missing.join());
  assert.deepEqual(report.unexpected, []);
});

test("a tensor of the wrong shape is an error that names it", async () => {
  const { cfg, tensors } = await fixture();
  const bad = new Map(tensors);
  const t = bad.get("bert.pooler.dense.weight")!;
  bad.set("bert.pooler.dense.weight", { ...t, shape: [16, 64] });
  const store = ParamStore.fromShapes(paramShapes(cfg, "pretraining"));
  assert.throws(() => loadParams(store, bad, "bad.safetensors"), (e: Error) => e instanceof CheckpointError && /bert\.pooler\.dense\.weight has shape \[16,64\], the model expects \[32,32\]/.test(e.message));
});

test("a missing tensor is an error that names it", async () => {
  const { cfg, tensors } = await fixture();
  const bad = new Map(tensors);
  bad.delete("bert.encoder.layer.1.output.dense.bias");
  const store = ParamStore.fromShapes(paramShapes(cfg, "pretraining"));
  assert.throws(() => requireComplete(loadParams(store, bad, "bad"), "bad"), /missing tensor bert\.encoder\.layer\.1\.output\.dense\.bias/);
});

test("save then load gives the same parameters, in HF names", async () => {
  const { cfg, tensors } = await fixture();
  const store = ParamStore.fromShapes(paramShapes(cfg, "pretraining"));
  loadParams(store, tensors, "in");
  const dir = mkdtempSync(path.join(os.tmpdir(), "ckpt-"));
  await saveParams(store, path.join(dir, "model.safetensors"));
  const saved = (await readSafetensors(path.join(dir, "model.safetensors"))).tensors;
  assert.deepEqual([...saved.keys()].sort(), [...tensors.keys()].sort(), "same tensor names as HF's save_pretrained");
  const back = store.like();
  requireComplete(loadParams(back, saved, "out"), "out");
  assert.deepEqual(back.data, store.data);
});
