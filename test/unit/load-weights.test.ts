// A model folder's weights are read straight into the parameters' buffer (one pass over fresh memory
// instead of a read and a copy); what lands there is what copying tensor by tensor gives, with the
// checkpoint's legacy names, a float64 tensor and a name given twice (the first one counts). For a
// session, ONNX Runtime reads float32 weights from the file itself, at the offsets of those tensors.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { bertConfig } from "../../server/model/config.js";
import { loadWeights } from "../../server/model/folder.js";
import * as ort from "onnxruntime-node";
import { loadParams, ParamStore, paramFileRanges, paramShapes } from "../../server/model/params.js";
import { readSafetensors, readSafetensorsLayout, writeSafetensors, type TensorInput } from "../../server/model/safetensors.js";
import { createInferenceSession } from "../../server/inference/inference-graph.js";

const cfg = bertConfig({ numHiddenLayers: 1, hiddenSize: 8, numAttentionHeads: 2, intermediateSize: 16, vocabSize: 20, maxPositionEmbeddings: 8 });
const shapes = paramShapes(cfg, "masked_lm");
const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
/** Deterministic values in [-0.5, 0.5) (Lehmer's generator from `seed`). */
function randomValues(seed: number): (n: number) => Float32Array {
  return (n) => Float32Array.from({ length: n }, () => (seed = (seed * 48271) % 2147483647) / 2147483647 - 0.5);
}

test("weights read into the parameters equal the tensor-by-tensor copy, legacy names, float64 and duplicates included", async () => {
  const values = randomValues(1);
  const entries: [string, TensorInput][] = [];
  for (const { name, shape } of shapes) {
    const data = values(size(shape));
    if (name === "bert.embeddings.LayerNorm.weight") entries.push(["bert.embeddings.LayerNorm.gamma", { dtype: "F32", shape, data }]);
    else if (name === "cls.predictions.bias") entries.push(["cls.predictions.decoder.bias", { dtype: "F32", shape, data }]);
    else if (name === "bert.encoder.layer.0.output.dense.weight") entries.push([name, { dtype: "F64", shape, data: new Uint8Array(Float64Array.from(data).buffer) }]);
    else if (name === "bert.embeddings.position_embeddings.weight") {
      entries.push([name, { dtype: "F32", shape, data }]); // first in the file (tensors are sorted by name)
      entries.push(["embeddings.position_embeddings.weight", { dtype: "F32", shape, data: values(size(shape)) }]); // the same parameter again: unexpected
    } else entries.push([name, { dtype: "F32", shape, data }]);
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), "load-weights-"));
  await writeSafetensors(path.join(dir, "model.safetensors"), entries);

  const read = ParamStore.fromShapes(shapes);
  const { report } = await loadWeights(dir, read);
  const copied = ParamStore.fromShapes(shapes);
  const copyReport = loadParams(copied, (await readSafetensors(path.join(dir, "model.safetensors"))).tensors, "copy");
  assert.deepEqual(read.data, copied.data);
  assert.deepEqual(report, copyReport);
  assert.deepEqual(report.unexpected, ["embeddings.position_embeddings.weight"]);
  assert.deepEqual(read.view("bert.embeddings.position_embeddings.weight"), entries.find(([n]) => n === "bert.embeddings.position_embeddings.weight")![1].data);
});

test("ONNX Runtime reads float32 weights from model.safetensors itself: where loadWeights' tensors lie in the file, the same answers; a float64 tensor leaves the weights to loadWeights", async () => {
  const values = randomValues(7);
  const entries: [string, TensorInput][] = shapes.map(({ name, shape }) => [name === "bert.embeddings.LayerNorm.weight" ? "bert.embeddings.LayerNorm.gamma" : name, { dtype: "F32", shape, data: values(size(shape)) }]);
  entries.push(["embeddings.position_embeddings.weight", { dtype: "F32", shape: [8, 8], data: values(64) }]); // the same parameter again, after it: unexpected
  const dir = mkdtempSync(path.join(os.tmpdir(), "weights-file-"));
  const file = path.join(dir, "model.safetensors");
  await writeSafetensors(file, entries);

  const ranges = paramFileRanges(shapes, await readSafetensorsLayout(file))!;
  assert.ok(ranges, "every parameter is a float32 tensor of its shape");
  const bytes = readFileSync(file);
  const params = ParamStore.fromShapes(shapes);
  await loadWeights(dir, params);
  for (const { name } of shapes) {
    const r = ranges.get(name)!;
    const view = params.view(name);
    assert.deepEqual(new Uint8Array(bytes.buffer, bytes.byteOffset + r.offset, r.length), new Uint8Array(view.buffer, view.byteOffset, view.byteLength), name);
  }

  const i64 = (xs: number[]) => new ort.Tensor("int64", BigInt64Array.from(xs.map(BigInt)), [1, xs.length]);
  const feeds = { input_ids: i64([2, 5, 7, 3]), token_type_ids: i64([0, 0, 1, 1]), attention_mask: i64([1, 1, 1, 1]), masked_positions: new ort.Tensor("int64", BigInt64Array.of(1n, 2n), [2]) };
  const opts = { outputs: ["prediction_logits"] };
  const fromFile = await createInferenceSession(cfg, "masked_lm", { dir, ranges }, opts);
  const fromStore = await createInferenceSession(cfg, "masked_lm", params, opts);
  assert.deepEqual((await fromFile.run(feeds)).prediction_logits.data, (await fromStore.run(feeds)).prediction_logits.data);
  await Promise.all([fromFile.release(), fromStore.release()]);

  const f64 = entries.map(([n, t]): [string, TensorInput] => (n === "bert.encoder.layer.0.output.dense.weight" ? [n, { dtype: "F64", shape: t.shape, data: new Uint8Array(Float64Array.from(t.data as Float32Array).buffer) }] : [n, t]));
  await writeSafetensors(file, f64);
  assert.equal(paramFileRanges(shapes, await readSafetensorsLayout(file)), undefined);
  assert.equal(paramFileRanges(shapes.slice(1), new Map()), undefined, "a parameter the file lacks");
  const aligned = await readSafetensorsLayout(path.join(dir, "model.safetensors"));
  const shifted = new Map([...aligned].map(([n, t]) => [n, { ...t, dtype: "F32" as const, offset: t.offset + 2 }]));
  assert.equal(paramFileRanges(shapes, shifted), undefined, "float32 data at an offset not a multiple of 4");
});
