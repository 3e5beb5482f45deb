// A model folder with random weights, for tests that need a "pretrained" encoder but not what it learned:
// an HF folder (config.json, model.safetensors, vocab) of a small BERT with the given head and tokenizer.
import { existsSync } from "node:fs";
import { bertConfig, type BertConfig } from "../../server/model/config.js";
import { architectureOf, type Head } from "../../server/model/heads.js";
import { initParams, ParamStore, paramShapes } from "../../server/model/params.js";
import { saveModel } from "../../server/training/run-folder.js";
import type { BertTokenizer } from "../../server/text/tokenizer.js";

/** Writes the folder once (a second call with the same `dir` reuses it) and returns `dir`. */
export async function randomModelFolder(dir: string, tok: BertTokenizer, o: { head: Head; seed: number } & Partial<BertConfig>): Promise<string> {
  if (existsSync(`${dir}/model.safetensors`)) return dir;
  const { head, seed, ...shape } = o;
  const cfg = bertConfig({ numHiddenLayers: 2, hiddenSize: 32, numAttentionHeads: 2, intermediateSize: 64, maxPositionEmbeddings: 128, ...shape, vocabSize: tok.vocabSize, architectures: [architectureOf(head)] });
  const params = ParamStore.fromShapes(paramShapes(cfg, head));
  initParams(params, cfg, seed);
  await saveModel(dir, cfg, params, tok);
  return dir;
}
