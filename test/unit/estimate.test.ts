// The preset picker's figures (BERT: Pretrain on Workspace): each preset's size for the workspace's
// vocabulary, and a step time measured on this machine with the tiny preset and scaled to the others.
import assert from "node:assert/strict";
import { test } from "node:test";
import { bertConfig, PRESETS } from "../../server/model/config.js";
import { paramShapes } from "../../server/model/params.js";
import { predictionsPerSeq, trainFlops } from "../../server/dev/bench.js";
import { measureSecondsPerFlop, presetEstimates } from "../../server/dev/estimate.js";
import { pretrainDefaults } from "../../common/settings.js";

// A tiny step shape: the measurement runs 4 real steps.
const shape = { batch: 2, seq: 16, vocabSize: 120 };
const count = (shapes: { shape: number[] }[]) => shapes.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);

test("each preset shows its layers, hidden size and parameters for the workspace's vocabulary", () => {
  const estimates = presetEstimates(shape);
  assert.deepEqual(
    estimates.map((e) => [e.preset, e.layers, e.hidden]),
    [["tiny", 2, 128], ["small", 4, 256], ["base", 12, 768]],
  );
  for (const e of estimates) {
    assert.equal(e.parameters, count(paramShapes(bertConfig({ ...PRESETS[e.preset], vocabSize: shape.vocabSize }), "masked_lm")), e.preset);
    assert.equal(e.stepSeconds, undefined, "no step time before a measurement");
  }
  // bert-base-uncased's vocabulary: HF's BertForMaskedLM has 109,514,298 parameters (the decoder tied; the
  // recipe trains no NSP head, so no pooler either: BertForPreTraining's 110,106,428 less 590,592 + 1,538).
  assert.equal(presetEstimates({ ...shape, vocabSize: 30522 }).find((e) => e.preset === "base")?.parameters, 109_514_298);
});

test("a step time measured on tiny; small and base slower by their FLOPs", async () => {
  const secondsPerFlop = await measureSecondsPerFlop({ ...shape, device: "cpu", threads: 1 });
  assert.ok(secondsPerFlop > 0 && Number.isFinite(secondsPerFlop), `${secondsPerFlop} s per FLOP`);
  const [tiny, small, base] = presetEstimates(shape, secondsPerFlop).map((e) => e.stepSeconds!);
  assert.ok(tiny > 0 && tiny < small && small < base, `tiny ${tiny} s, small ${small} s, base ${base} s`);
  const flops = (p: keyof typeof PRESETS) =>
    trainFlops(bertConfig({ ...PRESETS[p], vocabSize: shape.vocabSize }), shape.batch, shape.seq, predictionsPerSeq(shape.seq, pretrainDefaults.maskRate));
  assert.ok(Math.abs(small / tiny / (flops("small") / flops("tiny")) - 1) < 1e-9);
  assert.ok(Math.abs(base / tiny / (flops("base") / flops("tiny")) - 1) < 1e-9);
});
