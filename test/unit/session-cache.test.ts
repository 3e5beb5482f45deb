// A model loaded again starts from the session as ONNX Runtime optimized it, kept in the user's cache
// folder: written at its second load, read from the third, answering exactly as the session built from the
// weights; new weights, another graph or a damaged entry mean a build from the weights again. That is the
// path of weights made at load (int8, here); a float32 checkpoint in fp32 is read by ONNX Runtime from its
// model.safetensors every time, never cached.
import "./isolated-cache.js";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import * as ort from "onnxruntime-node";
import { FillMaskPipeline } from "../../server/inference/fill-mask.js";
import { loadInferenceSession, sessionCacheDir } from "../../server/inference/session-cache.js";
import { readConfig } from "../../server/model/config.js";
import { BertTokenizer, SPECIAL_TOKENS } from "../../server/text/tokenizer.js";
import { randomModelFolder } from "./random-model.js";

const WORDS = "the cat sat on a mat and then it ran away to paris".split(" ");
const tok = BertTokenizer.fromVocab([...SPECIAL_TOKENS, ...WORDS]);
const tmp = mkdtempSync(path.join(os.tmpdir(), "session-cache-"));
const model = randomModelFolder(path.join(tmp, "lm"), tok, { head: "masked_lm", seed: 3, maxPositionEmbeddings: 32 });
const TEXT = "the cat [MASK] on a mat and then it [MASK] away";

async function logits(dir: string, o: { fusion?: "none" | "attention"; int8?: boolean } = {}): Promise<{ source: string; logits: Float32Array }> {
  const { session, source } = await loadInferenceSession(dir, await readConfig(dir), "masked_lm", { outputs: ["prediction_logits"], int8: true, ...o });
  const e = await tok.encode(TEXT);
  const t = (xs: number[]) => new ort.Tensor("int64", BigInt64Array.from(xs.map(BigInt)), [1, xs.length]);
  const masks = e.ids.flatMap((id, i) => (id === tok.maskId ? [BigInt(i)] : []));
  const out = await session.run({ input_ids: t(e.ids), token_type_ids: t(e.typeIds), attention_mask: t(e.ids.map(() => 1)), masked_positions: new ort.Tensor("int64", BigInt64Array.from(masks), [masks.length]) });
  await session.release();
  return { source, logits: out.prediction_logits.data as Float32Array };
}

test("a model's second load writes its optimized session, the third reads it and answers the same", async () => {
  const dir = await model;
  const first = await logits(dir);
  const second = await logits(dir);
  const third = await logits(dir);
  assert.deepEqual([first.source, second.source, third.source], ["built", "built-and-cached", "cache"]);
  assert.deepEqual(third.logits, first.logits);
  assert.equal(readdirSync(sessionCacheDir()).filter((f) => f.endsWith(".ort")).length, 1);
  // fill-mask reads the same entry
  const fm = await FillMaskPipeline.load(dir, "cpu", { int8: true });
  assert.equal((await fm.predict(TEXT)).length, 2);
  await fm.release();
  // int8 with the fused attention is another graph: another key
  assert.equal((await logits(dir, { fusion: "attention" })).source, "built");
});

test("a float32 checkpoint in fp32 is read by ONNX Runtime from model.safetensors at every load, never cached", async () => {
  const dir = await model;
  const before = readdirSync(sessionCacheDir()).filter((f) => f.endsWith(".ort")).length;
  const loads = [await logits(dir, { int8: false }), await logits(dir, { int8: false }), await logits(dir, { int8: false })];
  assert.deepEqual(loads.map((l) => l.source), ["file", "file", "file"]);
  assert.deepEqual(loads[2].logits, loads[0].logits);
  assert.equal(readdirSync(sessionCacheDir()).filter((f) => f.endsWith(".ort")).length, before);
});

test("new weights (a checkpoint written over the old one) are built from, not read from the cache", async () => {
  const dir = await model;
  await logits(dir);
  await logits(dir);
  assert.equal((await logits(dir)).source, "cache");
  const later = new Date(Date.now() + 5000);
  utimesSync(path.join(dir, "model.safetensors"), later, later);
  assert.equal((await logits(dir)).source, "built");
});

test("a damaged cache entry is removed and the model built from its weights", async () => {
  const dir = await model;
  await logits(dir);
  await logits(dir);
  const want = (await logits(dir)).logits;
  for (const f of readdirSync(sessionCacheDir()).filter((f) => f.endsWith(".ort"))) writeFileSync(path.join(sessionCacheDir(), f), "not a model");
  const got = await logits(dir);
  assert.equal(got.source, "built-and-cached"); // loaded before: written again
  assert.deepEqual(got.logits, want);
  assert.equal((await logits(dir)).source, "cache");
});
