import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { bertConfig, ConfigError, configFromJson, configToJson, PRESETS, readConfig, writeConfig } from "../../server/model/config.js";

const HF = path.resolve(process.cwd(), "test/fixtures/hf");

test("reads HF config.json and writes it back with the same values and unknown keys", async () => {
  const cfg = await readConfig(path.join(HF, "heads/sequence_classification"));
  assert.equal(cfg.hiddenSize, 32);
  assert.equal(cfg.numAttentionHeads, 4);
  assert.deepEqual(cfg.id2label, { 0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2" });
  assert.deepEqual(cfg.architectures, ["BertForSequenceClassification"]);
  const dir = mkdtempSync(path.join(os.tmpdir(), "cfg-"));
  await writeConfig(dir, cfg);
  const original = JSON.parse(readFileSync(path.join(HF, "heads/sequence_classification/config.json"), "utf8"));
  const written = JSON.parse(readFileSync(path.join(dir, "config.json"), "utf8"));
  for (const [k, v] of Object.entries(original)) assert.deepEqual(written[k], v, k);
});

test("presets are valid BERT configurations", () => {
  for (const p of Object.values(PRESETS)) bertConfig(p);
  assert.equal(bertConfig(PRESETS.small).hiddenSize, 256);
});

test("bad configurations are clear errors", () => {
  assert.throws(() => bertConfig({ hiddenSize: 100, numAttentionHeads: 12 }), (e: Error) => e instanceof ConfigError && /hidden_size 100 is not divisible by num_attention_heads 12/.test(e.message));
  assert.throws(() => configFromJson({ hidden_size: -1 }), /hidden_size must be a positive integer/);
  assert.throws(() => configFromJson({ model_type: "gpt2" }), /not "bert"/);
  assert.throws(() => configFromJson({ hidden_act: "relu" }), /hidden_act/);
  assert.throws(() => configFromJson([]), /JSON object/);
});

test("round trip of a config without labels keeps HF names", () => {
  const json = configToJson(bertConfig(PRESETS.tiny));
  assert.equal(json.model_type, "bert");
  assert.equal(json.hidden_size, 128);
  assert.equal(json.num_hidden_layers, 2);
  assert.deepEqual(configFromJson(json).intermediateSize, 512);
});
