// BERT: Show Surprising Tokens: every word of a text gets its surprise in bits from the language model, with
// UTF-16 offsets that cover exactly the word in the editor's text; a word the model has learned in its place
// is less surprising than another word there; a long text is read in windows; a cancelled request stops.
import "./isolated-cache.js";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { FillMaskPipeline } from "../../server/inference/fill-mask.js";
import { surprise, SurpriseCancelled } from "../../server/inference/surprise.js";
import { pretrain } from "../../server/pretraining/pretrain.js";
import { SPECIAL_TOKENS } from "../../server/text/tokenizer.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "surprise-"));
const words = (text: string, scored: { start: number; end: number }[]) => scored.map((w) => text.slice(w.start, w.end));

/**
 * A tiny masked LM pretrained here (150 steps, 4 s) on four sentences in varying order, with a vocabulary of
 * their words, letters and continuation letters: "the cat sat on the mat ." is what it has seen. (Across
 * seeds 7-10, "mat" there scored 0.75-1.13 bits and "lake" in its place 5.9-8.3.)
 */
async function patternModel(): Promise<string> {
  const vocab = [...SPECIAL_TOKENS, ..."the cat sat on mat dog ran in park bird flew over tree fish swam lake a . ,".split(" ")];
  const letters = [..."abcdefghijklmnopqrstuvwxyz"];
  writeFileSync(path.join(tmp, "vocab.txt"), [...vocab, ...letters, ...letters.map((l) => `##${l}`)].join("\n") + "\n");
  const sentences = ["the cat sat on the mat .", "the dog ran in the park .", "the bird flew over the tree .", "the fish swam in the lake ."];
  mkdirSync(path.join(tmp, "corpus"));
  for (let f = 0; f < 8; f++) {
    const lines = Array.from({ length: 50 }, (_, i) => `${sentences[((f * 50 + i) * 7) % 4]} ${sentences[((f * 50 + i) * 3 + 1) % 4]}`);
    writeFileSync(path.join(tmp, `corpus/${f}.txt`), lines.join("\n") + "\n");
  }
  const out = path.join(tmp, "run");
  await pretrain({
    corpus: path.join(tmp, "corpus"), out, vocab: path.join(tmp, "vocab.txt"), preset: "tiny", layers: 2, hidden: 32, heads: 2, intermediate: 64,
    steps: 150, batch: 16, seq: 32, lr: 5e-3, schedule: "constant", warmupSteps: 0, seed: 7, nsp: false, resume: false, device: "cpu", cased: false,
    heldOut: 0, evalEvery: 1000, checkpointEvery: 1000,
  });
  return out;
}

const once = <T>(make: () => Promise<T> | T) => {
  let made: Promise<T> | undefined;
  return () => (made ??= Promise.resolve(make()));
};
const pattern = once(patternModel);

// The HF fixture of fill-mask-long.test.ts (random weights, max_position_embeddings 64) with words w5 … w776.
const FIXTURE = path.resolve("test/fixtures/hf-generated/pretraining");
const fixture = once((): string => {
  const dir = path.join(tmp, "fixture");
  mkdirSync(dir);
  for (const f of ["config.json", "model.safetensors"]) copyFileSync(path.join(FIXTURE, f), path.join(dir, f));
  const { vocab_size } = JSON.parse(readFileSync(path.join(FIXTURE, "config.json"), "utf8")) as { vocab_size: number };
  writeFileSync(path.join(dir, "vocab.txt"), ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ...Array.from({ length: vocab_size - 5 }, (_, i) => `w${i + 5}`)].join("\n") + "\n");
  return dir;
});

test("a word the model has seen in its place is less surprising than another word of its vocabulary there", async () => {
  const fm = await FillMaskPipeline.load(await pattern());
  try {
    // Text of the length the model was trained on (32 tokens): a short line is new to it in other ways.
    const line = (word: string) => `the dog ran in the park . the cat sat on the ${word} . the bird flew over the tree . the fish swam in the lake .`;
    const seen = await surprise(fm, line("mat"));
    const odd = await surprise(fm, line("lake"));
    assert.equal(words(line("lake"), odd).join(" "), line("lake"));
    const [mat, lake] = [seen[12], odd[12]];
    assert.ok(mat.bits + 3 < lake.bits, `mat ${mat.bits} bits, lake ${lake.bits} bits`);
    assert.ok(lake.top.some((t) => t.token === "mat"), `the model's guesses for the odd word: ${lake.top.map((t) => t.token).join(" ")}`);
    assert.ok(seen.every((w) => w.bits >= 0 && Number.isFinite(w.bits)));

    // A word of several pieces is scored as the sum of its pieces, each masked in turn: "mats" = mat ##s.
    const text = line("mats");
    const mats = (await surprise(fm, text))[12];
    assert.equal(text.slice(mats.start, mats.end), "mats");
    const e = await fm.tokenizer.encode(text);
    const at = e.tokens.indexOf("mat");
    assert.equal(e.tokens[at + 1], "##s");
    const inputs = [at, at + 1].map((m) => ({ ids: e.ids.map((id, i) => (i === m ? fm.tokenizer.maskId : id)), typeIds: e.typeIds, masks: [m] }));
    const [[first], [second]] = await fm.predictBatch(inputs, 1);
    const bits = -(first.logProb(e.ids[at]) + second.logProb(e.ids[at + 1])) / Math.LN2;
    assert.ok(Math.abs(mats.bits - bits) < 1e-6, `${mats.bits} vs ${bits}`);
    assert.equal(mats.top[0].token, first.top[0].token);
  } finally {
    await fm.release();
  }
});

test("offsets are UTF-16 and cover each word exactly; [CLS], [SEP], a [MASK] in the text and unknown words are not scored", async () => {
  const fm = await FillMaskPipeline.load(await pattern());
  try {
    const text = "😀 The cat sat on the mat, [MASK] the café. 𠀀 Ünknown";
    const scored = await surprise(fm, text, { topK: 3 });
    assert.deepEqual(words(text, scored), ["The", "cat", "sat", "on", "the", "mat", ",", "the", "café", ".", "Ünknown"]);
    assert.equal(scored[0].start, 3); // after the emoji's two code units and a space
    assert.ok(scored.every((w) => w.top.length === 3 && w.top[0].score >= w.top[2].score));
  } finally {
    await fm.release();
  }
});

test("a text longer than the model's positions: each word once, scored in the window around it, the same every time", async () => {
  const fm = await FillMaskPipeline.load(await fixture());
  try {
    const all = Array.from({ length: 300 }, (_, i) => `w${5 + ((i * 7919) % 772)}`);
    const text = all.join(" ");
    const scored = await surprise(fm, text);
    assert.deepEqual(words(text, scored), all);
    // Word 150 is read with half a window (31 of the 62 text tokens a window holds) before it: the same
    // score as in that excerpt alone, which fits the model whole.
    const excerpt = await surprise(fm, all.slice(150 - 31, 150 - 31 + 62).join(" "));
    assert.ok(Math.abs(scored[150].bits - excerpt[31].bits) < 1e-4, `${scored[150].bits} vs ${excerpt[31].bits}`);
    assert.ok(Math.abs(scored[150].bits - excerpt[30].bits) > 1e-3, "another word, another score: the comparison above means something");
    const again = await surprise(fm, text, { batchSize: 7 });
    assert.ok(again.every((w, i) => Math.abs(w.bits - scored[i].bits) < 1e-4 && w.start === scored[i].start && w.end === scored[i].end));
  } finally {
    await fm.release();
  }
});

test("a cancelled request stops between batches with an error", async () => {
  const fm = await FillMaskPipeline.load(await fixture());
  try {
    const text = Array.from({ length: 100 }, (_, i) => `w${5 + i}`).join(" ");
    let asked = 0;
    await assert.rejects(surprise(fm, text, { batchSize: 10, isCancelled: () => ++asked > 2 }), SurpriseCancelled);
    assert.equal(asked, 3, "two batches ran, the third was not started");
    assert.deepEqual(await surprise(fm, ""), []);
  } finally {
    await fm.release();
  }
});
