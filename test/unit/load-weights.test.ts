// A model folder's weights are read straight into the parameters' buffer (one pass over fresh memory
// instead of a read and a copy); what lands there is what copying tensor by tensor gives, with the
// checkpoint's legacy names, a float64 tensor and a name given twice (the first one counts).
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { bertConfig } from "../../server/model/config.js";
import { loadWeights } from "../../server/model/folder.js";
import { loadParams, ParamStore, paramShapes } from "../../server/model/params.js";
import { readSafetensors, writeSafetensors, type TensorInput } from "../../server/model/safetensors.js";

test("weights read into the parameters equal the tensor-by-tensor copy, legacy names, float64 and duplicates included", async () => {
  const cfg = bertConfig({ numHiddenLayers: 1, hiddenSize: 8, numAttentionHeads: 2, intermediateSize: 16, vocabSize: 20, maxPositionEmbeddings: 8 });
  const shapes = paramShapes(cfg, "masked_lm");
  let seed = 1;
  const values = (n: number) => Float32Array.from({ length: n }, () => (seed = (seed * 48271) % 2147483647) / 2147483647 - 0.5);
  const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
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
