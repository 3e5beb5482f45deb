// A model folder whose config.json disagrees with its own files, or with itself, is refused before
// anything is allocated, with a message naming the key: a vocabulary of the wrong size, token ids outside
// the vocabulary, numbers written as strings, and sizes that would allocate gigabytes first.
import "./isolated-cache.js";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { FillMaskPipeline } from "../../server/inference/fill-mask.js";
import { bertConfig, configFromJson, ConfigError, encoderParameters, readConfig } from "../../server/model/config.js";
import { paramShapes } from "../../server/model/params.js";
import { TaskModel } from "../../server/inference/task-model.js";
import { finetune } from "../../server/tasks/finetune.js";
import { SPECIAL_TOKENS } from "../../server/text/tokenizer.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "config-validation-"));
const HF = path.resolve(process.cwd(), "test/fixtures/hf-generated");

/** A copy of an HF-made model folder with a vocab.txt of `tokens` tokens and config.json changed by `edit`. */
function folder(name: string, fixture: string, tokens: number, edit: Record<string, unknown> = {}): string {
  const dir = path.join(tmp, name);
  mkdirSync(dir, { recursive: true });
  copyFileSync(path.join(HF, fixture, "model.safetensors"), path.join(dir, "model.safetensors"));
  const config = JSON.parse(readFileSync(path.join(HF, fixture, "config.json"), "utf8"));
  writeFileSync(path.join(dir, "config.json"), JSON.stringify({ ...config, ...edit }));
  const vocab = [...SPECIAL_TOKENS, ...Array.from({ length: tokens - SPECIAL_TOKENS.length }, (_, i) => `word${i}`)];
  writeFileSync(path.join(dir, "vocab.txt"), vocab.join("\n") + "\n");
  return dir;
}

test("a vocabulary of another size than vocab_size is refused by fill-mask, prediction and fine-tuning, naming both sizes", async () => {
  const fits = await FillMaskPipeline.load(folder("fits", "pretraining", 777));
  await fits.release();
  await assert.rejects(FillMaskPipeline.load(folder("short", "pretraining", 776)), /short\/vocab\.txt has 776 tokens but .*short\/config\.json says vocab_size 777/);
  await assert.rejects(TaskModel.load(folder("long", "heads/sequence_classification", 298)), /long\/vocab\.txt has 298 tokens but .*vocab_size 297/);
  const train = path.join(tmp, "train.tsv");
  writeFileSync(train, readFileSync("data/finetune/sst2-train.tsv", "utf8").split("\n").slice(0, 41).join("\n") + "\n");
  await assert.rejects(
    finetune({ task: "classify", train, model: folder("base", "pretraining", 700), out: path.join(tmp, "run"), epochs: 1, steps: 1, batch: 8, maxLength: 32, lr: 1e-4, schedule: "linear", logEvery: 1, seed: 1, resume: false, device: "cpu" }),
    /vocab\.txt has 700 tokens but .*vocab_size 777/,
  );
});

test("token ids outside the vocabulary are refused, naming the key and the range", async () => {
  assert.throws(() => configFromJson({ vocab_size: 100, pad_token_id: 100 }, "config.json"), /config\.json: pad_token_id 100 is outside the vocabulary \(ids 0\.\.99/);
  assert.throws(() => configFromJson({ vocab_size: 100, sep_token_id: -1 }), /sep_token_id -1 is outside the vocabulary \(ids 0\.\.99/);
  assert.throws(() => configFromJson({ vocab_size: 100, eos_token_id: [2, 300] }), /eos_token_id 300 is outside the vocabulary/);
  assert.throws(() => configFromJson({ vocab_size: 100, cls_token_id: 1.5 }), /cls_token_id must be a token id/);
  assert.equal(configFromJson({ vocab_size: 100, pad_token_id: 0, bos_token_id: null, eos_token_id: 99 }).padTokenId, 0);
  const dir = folder("pad", "pretraining", 777, { pad_token_id: 777 });
  await assert.rejects(readConfig(dir), (e: Error) => e instanceof ConfigError && e.message.includes(path.join(dir, "config.json")) && /pad_token_id 777 is outside the vocabulary \(ids 0\.\.776/.test(e.message));
});

test("numbers written as strings, and sizes that are not positive integers, are refused naming the key", () => {
  const wrong: [Record<string, unknown>, RegExp][] = [
    [{ hidden_size: "768" }, /hidden_size must be a positive integer, got the string "768"/],
    [{ layer_norm_eps: "1e-12" }, /layer_norm_eps must be a positive number, got the string "1e-12"/],
    [{ hidden_dropout_prob: "0.1" }, /hidden_dropout_prob must be a number in \[0, 1\), got the string "0.1"/],
    [{ classifier_dropout: "0.1" }, /classifier_dropout must be null or a number/],
    [{ initializer_range: "0.02" }, /initializer_range must be a positive number/],
    [{ pad_token_id: "0" }, /pad_token_id must be a token id \(an integer\) or null, got the string "0"/],
    [{ tie_word_embeddings: "false" }, /tie_word_embeddings must be true or false, got the string "false"/],
    [{ num_hidden_layers: 0 }, /num_hidden_layers must be a positive integer, got 0/],
    [{ intermediate_size: -4 }, /intermediate_size must be a positive integer, got -4/],
    [{ max_position_embeddings: 512.5 }, /max_position_embeddings must be a positive integer, got 512.5/],
  ];
  for (const [json, message] of wrong) assert.throws(() => configFromJson(json, "config.json"), (e: Error) => e instanceof ConfigError && message.test(e.message), JSON.stringify(json));
});

test("sizes that would allocate gigabytes are refused before any allocation, naming the key", async () => {
  assert.throws(() => configFromJson({ vocab_size: 1e9 }), /parameters .*vocab_size 1000000000 is the size furthest from BERT-Base's \(30522\)/);
  assert.throws(() => configFromJson({ hidden_size: 1_200_000 }), /hidden_size 1200000 is the size furthest/);
  assert.throws(() => configFromJson({ num_hidden_layers: 10_000 }), /num_hidden_layers 10000 is the size furthest/);
  // Under that cap, but not what the weights hold: compared with the header of model.safetensors.
  await assert.rejects(FillMaskPipeline.load(folder("positions", "pretraining", 777, { max_position_embeddings: 20_000_000 })), /max_position_embeddings is 20000000 but .*position_embeddings\.weight of shape \[64,48\]/);
  await assert.rejects(TaskModel.load(folder("layers", "heads/sequence_classification", 297, { num_hidden_layers: 5000 })), /num_hidden_layers is 5000 but .*model\.safetensors holds 2 layers/);
});

test("the parameter count checked up front is the encoder's, as the model builds it", () => {
  for (const cfg of [bertConfig(), bertConfig({ vocabSize: 777, hiddenSize: 48, numHiddenLayers: 3, numAttentionHeads: 6, intermediateSize: 96, maxPositionEmbeddings: 64 })]) {
    const built = paramShapes(cfg, "masked_lm").filter((p) => p.name.startsWith("bert.")).reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
    assert.equal(encoderParameters(cfg), built);
  }
  assert.equal(encoderParameters(bertConfig()), 108_891_648); // BERT-Base without its pooler (109,482,240 with it)
});
