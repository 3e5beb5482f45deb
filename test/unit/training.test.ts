// Training steps: gradient accumulation, errors of the optimizer set-up, dropout in the training graph.
import assert from "node:assert/strict";
import * as path from "node:path";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import * as ort from "onnxruntime-node";
import { readConfig } from "../../server/model/config.js";
import { loadParams, ParamStore, paramShapes } from "../../server/model/params.js";
import { readSafetensors } from "../../server/model/safetensors.js";
import { feedsFromBatch } from "../../server/dev/parity.js";
import { Optimizer } from "../../server/training/optimizer.js";

const DIR = path.resolve(process.cwd(), "test/fixtures/hf/heads/sequence_classification");

async function setup() {
  const cfg = await readConfig(DIR);
  const params = ParamStore.fromShapes(paramShapes(cfg, "sequence_classification"));
  loadParams(params, (await readSafetensors(path.join(DIR, "model.safetensors"))).tensors, "fixture");
  const batch = JSON.parse(readFileSync(path.join(DIR, "batch.json"), "utf8"));
  return { cfg, params, batch };
}

/** The first row of the fixture batch, repeated `n` times. */
function rows(batch: Record<string, number[][] | number[]>, n: number) {
  const pick = (x: number[][] | number[]) => Array.from({ length: n }, () => x[0]);
  return { input_ids: pick(batch.input_ids), token_type_ids: pick(batch.token_type_ids), attention_mask: pick(batch.attention_mask), labels: pick(batch.labels) } as Record<string, number[][]>;
}

test("two accumulated micro-batches give the step of the batch they make up", async () => {
  const { cfg, params, batch } = await setup();
  const whole = feedsFromBatch("sequence_classification", rows(batch, 2));
  const half = feedsFromBatch("sequence_classification", rows(batch, 1));
  const one = await Optimizer.create(cfg, params.copy(), { task: "sequence_classification", dims: whole.dims, dropout: false });
  const two = await Optimizer.create(cfg, params.copy(), { task: "sequence_classification", dims: half.dims, dropout: false, accumulationSteps: 2 });
  for (let i = 0; i < 2; i++) {
    const a = await one.step([whole.feeds], 1e-3);
    const b = await two.step([half.feeds, half.feeds], 1e-3);
    assert.ok(Math.abs(a.scalars.loss - b.scalars.loss) < 1e-6, `loss ${a.scalars.loss} vs ${b.scalars.loss}`);
  }
  let worst = 0;
  for (let i = 0; i < one.params.size; i++) worst = Math.max(worst, Math.abs(one.params.data[i] - two.params.data[i]));
  assert.ok(worst < 1e-6, `parameters differ by ${worst}`);
  let moved = 0;
  for (let i = 0; i < params.size; i++) moved = Math.max(moved, Math.abs(one.params.data[i] - params.data[i]));
  assert.ok(moved > 1e-4, "the steps changed the parameters");
  await one.release();
  await two.release();
});

test("dropout makes training steps stochastic and loss finite", async () => {
  const { cfg, params, batch } = await setup();
  const { feeds, dims } = feedsFromBatch("sequence_classification", batch);
  const opt = await Optimizer.create({ ...cfg, hiddenDropoutProb: 0.1, attentionProbsDropoutProb: 0.1 }, params.copy(), {
    task: "sequence_classification",
    dims,
    dropout: true,
    expose: ["logits"],
  });
  const r1 = await opt.step([feeds], 0);
  const r2 = await opt.step([feeds], 0); // lr 0: same parameters, different dropout masks
  assert.ok(Number.isFinite(r1.scalars.loss) && Number.isFinite(r2.scalars.loss));
  assert.notDeepEqual([...(r1.outputs.logits.data as Float32Array)], [...(r2.outputs.logits.data as Float32Array)]);
  assert.ok(r1.outputs.logits instanceof ort.Tensor);
  await opt.release();
});

test("a wrong number of micro-batches is an error", async () => {
  const { cfg, params, batch } = await setup();
  const { feeds, dims } = feedsFromBatch("sequence_classification", batch);
  const opt = await Optimizer.create(cfg, params.copy(), { task: "sequence_classification", dims, accumulationSteps: 2 });
  await assert.rejects(opt.step([feeds], 1e-3), /expected 2 micro-batches, got 1/);
  await assert.rejects(Optimizer.create(cfg, params.copy(), { task: "sequence_classification", dims, accumulationSteps: 0 }), /positive integer/);
  await opt.release();
});
