// The eval graphs that fill-mask and Predict run are ONNX Runtime's fused ops once ORT has optimized them
// (EmbedLayerNormalization and one Attention per layer; SkipLayerNormalization and BiasGelu with fusion
// "all"), the plain-op graph stays selectable and is what export writes, and the training graphs keep the
// plain ops their gradients are written for; the masked LM's last layer is computed at the masks alone.
// That every fusion gives HF's outputs on every head, padding and segments included, is parity.test.ts's
// check.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import * as ort from "onnxruntime-node";
import { bertConfig } from "../../server/model/config.js";
import { HEADS } from "../../server/model/heads.js";
import { opTypeCounts } from "../../server/model/onnx.js";
import { initParams, ParamStore, paramShapes } from "../../server/model/params.js";
import { sessionOptions } from "../../server/model/session.js";
import { buildInferenceGraph, sessionGraph } from "../../server/inference/inference-graph.js";
import { buildTrainGraph } from "../../server/training/train-graph.js";

const cfg = bertConfig({ numHiddenLayers: 3, hiddenSize: 32, numAttentionHeads: 4, intermediateSize: 64, vocabSize: 50, maxPositionEmbeddings: 16 });
const tmp = mkdtempSync(path.join(os.tmpdir(), "fused-"));

/** The op types of the model as ONNX Runtime optimized it for the CPU, read from the file it writes. */
async function optimizedOps(model: Uint8Array, name: string): Promise<Map<string, number>> {
  const file = path.join(tmp, `${name}.onnx`);
  const session = await ort.InferenceSession.create(model, { ...sessionOptions({}, ["cpu"]), optimizedModelFilePath: file, logSeverityLevel: 3 });
  await session.release();
  return opTypeCounts(readFileSync(file));
}

test("fill-mask's graph runs as one EmbedLayerNormalization and one Attention per layer after ORT's optimization; fusion all adds SkipLayerNormalization and BiasGelu", async () => {
  // The pretraining head's MLM logits: every layer whole (the masked LM's own graph computes its last
  // layer at the masks alone, with plain ops: the test after this one).
  const params = ParamStore.fromShapes(paramShapes(cfg, "pretraining"));
  initParams(params, cfg, 1);
  const L = cfg.numHiddenLayers;
  const ops = (fusion: "none" | "attention" | "all") => optimizedOps(buildInferenceGraph(cfg, "pretraining", params, { outputs: ["prediction_logits"], fusion }), fusion);

  const attention = await ops("attention"); // what the sessions of fill-mask and Predict run
  assert.equal(attention.get("com.microsoft.EmbedLayerNormalization"), 1);
  assert.equal(attention.get("com.microsoft.Attention"), L);
  assert.equal(attention.get("LayerNormalization"), 2 * L + 1); // the residual ones and the MLM head's
  for (const op of ["Softmax", "MatMul", "Transpose", "com.microsoft.FusedMatMul", "Erf"]) assert.equal(attention.get(op), undefined, `${op} left: ${[...attention]}`);

  const all = await ops("all");
  assert.equal(all.get("com.microsoft.Attention"), L);
  assert.equal(all.get("com.microsoft.SkipLayerNormalization"), 2 * L);
  assert.equal(all.get("com.microsoft.BiasGelu"), L + 1); // and the MLM head's transform
  assert.equal(all.get("LayerNormalization"), 1); // the MLM head's, which has no residual to fold in
  for (const op of ["Softmax", "MatMul", "Transpose", "Add", "Gelu"]) assert.equal(all.get(op), undefined, `${op} left: ${[...all]}`);

  const none = await ops("none");
  assert.equal(none.get("Softmax"), L);
  assert.equal(none.get("LayerNormalization"), 2 * L + 2);
  for (const op of ["Attention", "SkipLayerNormalization", "BiasGelu", "EmbedLayerNormalization"]) assert.equal(none.get(`com.microsoft.${op}`), undefined);
});

test("the masked LM's inference graph computes the last layer at the masks alone, with the logits of the whole layer, for every fusion, padding and several sequences included", async () => {
  const params = ParamStore.fromShapes(paramShapes(cfg, "pretraining"));
  initParams(params, cfg, 4);
  const i64 = (xs: number[], d: number[]) => new ort.Tensor("int64", BigInt64Array.from(xs.map(BigInt)), d);
  const feeds = {
    input_ids: i64([2, 7, 9, 3, 11, 4, 5, 8, 9, 1, 0, 0], [2, 6]),
    token_type_ids: i64([0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0], [2, 6]),
    attention_mask: i64([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0], [2, 6]),
    masked_positions: i64([2, 4, 7, 9], [4]), // two in each sequence
  };
  for (const fusion of ["none", "attention", "all"] as const) {
    const opts = { outputs: ["prediction_logits"], fusion };
    const ops = opTypeCounts(buildInferenceGraph(cfg, "masked_lm", params, opts));
    assert.equal(ops.get("Softmax"), fusion === "none" ? cfg.numHiddenLayers : 1, `${fusion}: ${[...ops]}`); // the last layer's plain attention
    const whole = await ort.InferenceSession.create(buildInferenceGraph(cfg, "pretraining", params, opts), sessionOptions({}, ["cpu"]));
    const atMasks = await ort.InferenceSession.create(buildInferenceGraph(cfg, "masked_lm", params, opts), sessionOptions({}, ["cpu"]));
    const [a, b] = [(await whole.run(feeds)).prediction_logits.data as Float32Array, (await atMasks.run(feeds)).prediction_logits.data as Float32Array];
    assert.equal(b.length, 4 * cfg.vocabSize);
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-6, `${fusion}: logit ${i} ${b[i]} against ${a[i]}`);
    await Promise.all([whole.release(), atMasks.release()]);
  }
});

test("every head's eval graph can be fused; export's model.onnx and the training graphs have no fused op", () => {
  for (const task of HEADS) {
    const params = ParamStore.fromShapes(paramShapes(cfg, task));
    const ops = opTypeCounts(buildInferenceGraph(cfg, task, params, { fusion: "attention" }));
    assert.equal(ops.get("com.microsoft.Attention"), cfg.numHiddenLayers - (task === "masked_lm" ? 1 : 0), task); // the masked LM's last layer: at the masks alone
    const portable = opTypeCounts(buildInferenceGraph(cfg, task, params)); // what export --format onnx writes
    assert.ok(![...portable.keys()].some((op) => op.startsWith("com.microsoft.")), `${task}: ${[...portable.keys()]}`);
    const train = opTypeCounts(buildTrainGraph(cfg, task, { mode: "step", dims: { batch: 2, seq: 8, predictions: 3, choices: 2 }, dropout: true }).model);
    assert.ok(![...train.keys()].some((op) => op.startsWith("com.microsoft.")), `${task}: ${[...train.keys()]}`);
  }
});

test("a session's graph holds no float weights (ONNX Runtime reads them from the ParamStore's buffer as external data) and answers as the inline graph does", async () => {
  const params = ParamStore.fromShapes(paramShapes(cfg, "masked_lm"));
  initParams(params, cfg, 2);
  const opts = { outputs: ["prediction_logits"], fusion: "attention" as const };
  const inline = buildInferenceGraph(cfg, "masked_lm", params, opts);
  const { model, externalData } = sessionGraph(cfg, "masked_lm", params, opts);
  assert.ok(model.length < inline.length / 5, `${model.length} bytes against ${inline.length} inline`);
  assert.equal(externalData?.length, 1);
  assert.equal(externalData![0].data.buffer, params.data.buffer, "the ParamStore's own buffer, not a copy");
  const i64 = (xs: number[], dims: number[]) => new ort.Tensor("int64", BigInt64Array.from(xs.map(BigInt)), dims);
  const feeds = { input_ids: i64([2, 7, 9, 3, 11, 4], [1, 6]), token_type_ids: i64([0, 0, 0, 1, 1, 1], [1, 6]), attention_mask: i64([1, 1, 1, 1, 1, 1], [1, 6]), masked_positions: i64([2, 4], [2]) };
  const a = await ort.InferenceSession.create(inline, sessionOptions({}, ["cpu"]));
  const b = await ort.InferenceSession.create(model, { ...sessionOptions({}, ["cpu"]), externalData });
  try {
    assert.deepEqual((await b.run(feeds)).prediction_logits.data, (await a.run(feeds)).prediction_logits.data);
  } finally {
    await Promise.all([a.release(), b.release()]);
  }
});
