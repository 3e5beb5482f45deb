// Fill-mask on a line longer than the model's positions: predictions, not an ONNX Runtime error.
import "./isolated-cache.js";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { FillMaskPipeline, maskWindows, type TokenPrediction } from "../../server/inference/fill-mask.js";

// A tiny HF BertForPreTraining (L3 H48, vocab_size 777, max_position_embeddings 64), with a vocabulary of
// its size: the special tokens, then words w5 … w776, each one token.
const FIXTURE = path.resolve("test/fixtures/hf-generated/pretraining");
const config = JSON.parse(readFileSync(path.join(FIXTURE, "config.json"), "utf8")) as { vocab_size: number; max_position_embeddings: number };
const WINDOW = config.max_position_embeddings - 2; // tokens of text besides [CLS] and [SEP]

function modelFolder(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "fill-mask-long-"));
  for (const f of ["config.json", "model.safetensors"]) copyFileSync(path.join(FIXTURE, f), path.join(dir, f));
  const words = Array.from({ length: config.vocab_size - 5 }, (_, i) => `w${i + 5}`);
  writeFileSync(path.join(dir, "vocab.txt"), ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ...words].join("\n") + "\n");
  return dir;
}

/** `n` words of a fixed pseudo-random text, with [MASK] at the given positions. */
function words(n: number, masks: number[]): string[] {
  return Array.from({ length: n }, (_, i) => (masks.includes(i) ? "[MASK]" : `w${5 + ((i * 7919) % (config.vocab_size - 5))}`));
}

const close = (a: TokenPrediction[], b: TokenPrediction[]) => a.length === b.length && a.every((p, i) => p.id === b[i].id && Math.abs(p.score - b[i].score) < 1e-5);

test("a 3,000-token line gets one list of predictions per [MASK], each from the text around it", async () => {
  const fm = await FillMaskPipeline.load(modelFolder());
  try {
    const masks = [2, 1500, 2990, 2991]; // near the start, in the middle, two together near the end
    const text = words(3000, masks);
    const preds = await fm.predict(text.join(" "), 3);
    assert.equal(preds.length, masks.length);
    for (const p of preds) assert.equal(p.length, 3);

    // Each equals the prediction on the window of text the mask was read in: the text's first
    // max_position_embeddings - 2 tokens, its last ones, and half a window either side of a lone mask.
    const window = async (from: number) => fm.predict(text.slice(from, from + WINDOW).join(" "), 3);
    const [start] = await window(0);
    const [middle] = await window(1500 - Math.floor(WINDOW / 2));
    const end = await window(3000 - WINDOW);
    assert.ok(close(preds[0], start), "mask near the start");
    assert.ok(close(preds[1], middle), "mask in the middle");
    assert.ok(close(preds[2], end[0]) && close(preds[3], end[1]), "masks near the end, predicted together");
    const [shifted] = await window(1500 - Math.floor(WINDOW / 2) + 1);
    assert.ok(!close(preds[1], shifted), "other context, other scores: the comparison above means something");
  } finally {
    await fm.release();
  }
});

test("a line one token longer than the model reads is predicted as its first max_position_embeddings tokens", async () => {
  const fm = await FillMaskPipeline.load(modelFolder());
  try {
    const line = words(WINDOW + 1, [0, 10]);
    const [fits, over] = [await fm.predict(line.slice(0, WINDOW).join(" ")), await fm.predict(line.join(" "))];
    assert.equal(over.length, 2);
    assert.ok(over.every((p, i) => close(p, fits[i])));
  } finally {
    await fm.release();
  }
});

test("windows: every mask once, in order, inside a window of the text with context on both sides", () => {
  const size = 62;
  let seed = 1;
  const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
  for (let trial = 0; trial < 200; trial++) {
    const length = size + Math.floor(random() * 3000);
    const masks = [...new Set(Array.from({ length: 1 + Math.floor(random() * 40) }, () => Math.floor(random() * length)))].sort((a, b) => a - b);
    const windows = maskWindows(length, masks, size);
    assert.deepEqual(windows.flatMap((w) => w.masks), masks);
    for (const w of windows) {
      assert.ok(w.start >= 0 && w.start + size <= length);
      for (const m of w.masks) {
        assert.ok(m >= w.start && m < w.start + size);
        assert.ok(m - w.start >= Math.min(m, Math.floor(size / 4)) && w.start + size - 1 - m >= Math.min(length - 1 - m, Math.floor(size / 4)), `mask ${m} in [${w.start}, ${w.start + size})`);
      }
    }
  }
});
