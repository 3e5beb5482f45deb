// int8 inference (server/inference/quantize.ts): the weights' rounding, and int8 eval graphs of every
// head against the fp32 ones on the same inputs. The accuracy of a trained model in int8 against fp32 on
// held-out text is `bench fill-mask --int8 --text`'s measure, not a unit test's.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as ort from "onnxruntime-node";
import { bertConfig } from "../../server/model/config.js";
import { HEADS, type Head } from "../../server/model/heads.js";
import { opTypeCounts } from "../../server/model/onnx.js";
import { initParams, ParamStore, paramShapes } from "../../server/model/params.js";
import { buildInferenceGraph, createInferenceSession } from "../../server/inference/inference-graph.js";
import { INT8_RANGE, quantizeLinearWeight } from "../../server/inference/quantize.js";
import { Rng } from "../../server/util/rng.js";

test("quantizeLinearWeight: int8 within half a step of each weight, a scale per output row, |q| ≤ INT8_RANGE, zero rows zero", () => {
  const [out, inF] = [5, 70];
  const rng = new Rng(3);
  const w = new Float32Array(out * inF).map((_, i) => (rng.uniform() - 0.5) * 10 ** (Math.floor(i / inF) - 2));
  w.fill(0, 2 * inF, 3 * inF); // row 2: all zero
  w[4 * inF + 7] = -99; // row 4's largest magnitude (its others are below 50), negative
  const { weight, scale } = quantizeLinearWeight(w, out, inF);
  assert.equal(weight.length, out * inF);
  assert.equal(scale.length, out);
  assert.ok(Math.abs(scale[4] - 99 / INT8_RANGE) < 1e-5);
  assert.equal(weight[4 * inF + 7], -INT8_RANGE);
  for (let o = 0; o < out; o++) {
    for (let i = 0; i < inF; i++) {
      const q = weight[o * inF + i];
      assert.ok(Math.abs(q) <= INT8_RANGE, `${q}`);
      assert.ok(Math.abs(q * scale[o] - w[o * inF + i]) <= scale[o] * 0.5 + 1e-6, `row ${o}, column ${i}: ${w[o * inF + i]} → ${q} × ${scale[o]}`);
    }
  }
  assert.ok(weight.subarray(2 * inF, 3 * inF).every((q) => q === 0));
  assert.throws(() => quantizeLinearWeight(Float32Array.of(1, Number.NaN), 1, 2), /not finite/);
  assert.throws(() => quantizeLinearWeight(new Float32Array(3), 2, 2), /has 4 values, not 3/);
});

const cfg = bertConfig({ numHiddenLayers: 2, hiddenSize: 64, numAttentionHeads: 4, intermediateSize: 128, vocabSize: 90, maxPositionEmbeddings: 32, id2label: { 0: "a", 1: "b", 2: "c" } });

/** Inputs of every head: 2 rows (2 choices each for multiple choice) of 12 tokens, the second padded. */
function feeds(task: Head, seed: number): Record<string, ort.Tensor> {
  const rng = new Rng(seed);
  const rows = task === "multiple_choice" ? 4 : 2;
  const T = 12;
  const ids = new BigInt64Array(rows * T).map(() => BigInt(5 + rng.int(cfg.vocabSize - 5)));
  const mask = new BigInt64Array(rows * T).map((_, i) => (i % T < (Math.floor(i / T) % 2 === 1 ? 8 : T) ? 1n : 0n));
  const types = new BigInt64Array(rows * T).map((_, i) => (i % T >= 6 ? 1n : 0n));
  const shape = task === "multiple_choice" ? [2, 2, T] : [rows, T];
  const f: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor("int64", ids, shape),
    attention_mask: new ort.Tensor("int64", mask, shape),
    token_type_ids: new ort.Tensor("int64", types, shape),
  };
  if (task === "pretraining" || task === "masked_lm") f.masked_positions = new ort.Tensor("int64", BigInt64Array.of(1n, 4n, 13n, 17n), [4]);
  return f;
}

for (const task of HEADS) {
  test(`int8 ${task}: every dense layer a DynamicQuantizeMatMul, outputs within 3% (relative RMS) of fp32's`, async () => {
    const params = ParamStore.fromShapes(paramShapes(cfg, task));
    initParams(params, cfg, 11);
    const ops = opTypeCounts(buildInferenceGraph(cfg, task, params, { int8: true }));
    const L = cfg.numHiddenLayers;
    // Q, K, V, attention output, intermediate, output per layer; plus the pooler and/or the head's own dense layers.
    const extra = { pretraining: 3, masked_lm: 1, sequence_classification: 2, token_classification: 1, question_answering: 1, multiple_choice: 2 }[task];
    assert.equal(ops.get("com.microsoft.DynamicQuantizeMatMul"), 6 * L + extra, `${[...ops]}`);
    const fp32 = await createInferenceSession(cfg, task, params);
    const int8 = await createInferenceSession(cfg, task, params, { int8: true });
    try {
      const f = feeds(task, 5);
      const [a, b] = [await fp32.run(f), await int8.run(f)];
      for (const name of fp32.outputNames) {
        const [x, y] = [a[name].data as Float32Array, b[name].data as Float32Array];
        assert.equal(y.length, x.length, name);
        let [err, norm] = [0, 0];
        for (let i = 0; i < x.length; i++) {
          err += (x[i] - y[i]) ** 2;
          norm += x[i] ** 2;
        }
        const rel = Math.sqrt(err / norm);
        assert.ok(rel > 0 && rel < 0.03, `${name}: relative RMS error ${rel}`);
      }
    } finally {
      await Promise.all([fp32.release(), int8.release()]);
    }
  });
}
