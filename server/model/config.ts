// BertConfig: Hugging Face `config.json` for model_type "bert", read and written with HF's key names.
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { writeFileAtomic } from "../util/fs.js";

export class ConfigError extends Error {}

export interface BertConfig {
  vocabSize: number;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  intermediateSize: number;
  hiddenAct: "gelu";
  hiddenDropoutProb: number;
  attentionProbsDropoutProb: number;
  maxPositionEmbeddings: number;
  typeVocabSize: number;
  initializerRange: number;
  layerNormEps: number;
  padTokenId: number;
  classifierDropout: number | null;
  tieWordEmbeddings: boolean;
  architectures?: string[];
  id2label?: Record<number, string>;
  problemType?: string;
  /** Keys we do not interpret, kept so that a round trip preserves them. */
  extra: Record<string, unknown>;
}

const KEYS: [keyof BertConfig, string][] = [
  ["vocabSize", "vocab_size"],
  ["hiddenSize", "hidden_size"],
  ["numHiddenLayers", "num_hidden_layers"],
  ["numAttentionHeads", "num_attention_heads"],
  ["intermediateSize", "intermediate_size"],
  ["hiddenAct", "hidden_act"],
  ["hiddenDropoutProb", "hidden_dropout_prob"],
  ["attentionProbsDropoutProb", "attention_probs_dropout_prob"],
  ["maxPositionEmbeddings", "max_position_embeddings"],
  ["typeVocabSize", "type_vocab_size"],
  ["initializerRange", "initializer_range"],
  ["layerNormEps", "layer_norm_eps"],
  ["padTokenId", "pad_token_id"],
  ["classifierDropout", "classifier_dropout"],
  ["tieWordEmbeddings", "tie_word_embeddings"],
  ["architectures", "architectures"],
  ["problemType", "problem_type"],
];

export const DEFAULTS: Omit<BertConfig, "extra"> = {
  vocabSize: 30522,
  hiddenSize: 768,
  numHiddenLayers: 12,
  numAttentionHeads: 12,
  intermediateSize: 3072,
  hiddenAct: "gelu",
  hiddenDropoutProb: 0.1,
  attentionProbsDropoutProb: 0.1,
  maxPositionEmbeddings: 512,
  typeVocabSize: 2,
  initializerRange: 0.02,
  layerNormEps: 1e-12,
  padTokenId: 0,
  classifierDropout: null,
  tieWordEmbeddings: true,
};

/** Model sizes: tiny and small as in Turc et al. (2019) "Well-Read Students"; base as BERT-Base. */
export const PRESETS = {
  tiny: { numHiddenLayers: 2, hiddenSize: 128, numAttentionHeads: 2, intermediateSize: 512 },
  small: { numHiddenLayers: 4, hiddenSize: 256, numAttentionHeads: 4, intermediateSize: 1024 },
  base: { numHiddenLayers: 12, hiddenSize: 768, numAttentionHeads: 12, intermediateSize: 3072 },
} as const;

export function bertConfig(partial: Partial<BertConfig> = {}): BertConfig {
  const c: BertConfig = { ...DEFAULTS, extra: {}, ...partial };
  validateConfig(c);
  return c;
}

/**
 * The most parameters a config may describe. All of a model's parameters live in one Float32Array (V8
 * caps its length at 2^32) and training holds four of them (weights, gradients, two Adam moments):
 * 2^31 parameters is 32 GB of training state, 6x BERT-Large. A config past it is a wrong key (vocab_size
 * 1e9, say), and is refused before anything is allocated.
 */
export const MAX_PARAMETERS = 2 ** 31;

const SIZES = ["vocabSize", "hiddenSize", "numHiddenLayers", "numAttentionHeads", "intermediateSize", "maxPositionEmbeddings", "typeVocabSize"] as const;

export function validateConfig(c: BertConfig, source = "config"): void {
  const fail = (k: keyof BertConfig, what: string) => new ConfigError(`${source}: ${snake(k)} ${what}, got ${describe(c[k])}`);
  for (const k of SIZES) {
    const v = c[k];
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) throw fail(k, "must be a positive integer");
  }
  if (c.hiddenSize % c.numAttentionHeads !== 0) {
    throw new ConfigError(`${source}: hidden_size ${c.hiddenSize} is not divisible by num_attention_heads ${c.numAttentionHeads}`);
  }
  if (c.hiddenAct !== "gelu") throw new ConfigError(`${source}: hidden_act ${JSON.stringify(c.hiddenAct)} is not supported (only "gelu", BERT's)`);
  // typeof first: a string "0.1" compares as the number 0.1 and would pass the range checks.
  for (const k of ["hiddenDropoutProb", "attentionProbsDropoutProb"] as const) {
    if (typeof c[k] !== "number" || !(c[k] >= 0 && c[k] < 1)) throw fail(k, "must be a number in [0, 1)");
  }
  if (c.classifierDropout !== null && (typeof c.classifierDropout !== "number" || !(c.classifierDropout >= 0 && c.classifierDropout < 1))) {
    throw fail("classifierDropout", "must be null or a number in [0, 1)");
  }
  if (typeof c.layerNormEps !== "number" || !(c.layerNormEps > 0)) throw fail("layerNormEps", "must be a positive number");
  if (typeof c.initializerRange !== "number" || !(c.initializerRange > 0)) throw fail("initializerRange", "must be a positive number");
  if (typeof c.tieWordEmbeddings !== "boolean") throw fail("tieWordEmbeddings", "must be true or false");
  if (c.architectures !== undefined && !(Array.isArray(c.architectures) && c.architectures.every((a) => typeof a === "string"))) {
    throw fail("architectures", "must be a list of names");
  }
  validateTokenIds(c, source);
  const n = encoderParameters(c);
  if (n > MAX_PARAMETERS) {
    // The key furthest from BERT-Base's value is the likely mistake.
    const k = SIZES.reduce((a, b) => (c[b] / DEFAULTS[b] > c[a] / DEFAULTS[a] ? b : a));
    throw new ConfigError(
      `${source}: the sizes describe ${n.toExponential(2)} parameters (${(n * 4 / 1e9).toFixed(0)} GB as float32), more than the ${MAX_PARAMETERS.toExponential(2)} a model may have; ` +
        `${snake(k)} ${c[k]} is the size furthest from BERT-Base's (${DEFAULTS[k]}): is it right?`,
    );
  }
}

/** pad_token_id and any other *_token_id (bos, eos, sep, ...) are null or ids of the vocabulary. */
function validateTokenIds(c: BertConfig, source: string): void {
  const ids: [string, unknown][] = [["pad_token_id", c.padTokenId], ...Object.entries(c.extra).filter(([k]) => k.endsWith("_token_id"))];
  for (const [key, v] of ids) {
    for (const id of Array.isArray(v) ? v : [v]) {
      if (id === null && key !== "pad_token_id") continue;
      if (typeof id !== "number" || !Number.isInteger(id)) throw new ConfigError(`${source}: ${key} must be a token id (an integer) or null, got ${describe(id)}`);
      if (id < 0 || id >= c.vocabSize) throw new ConfigError(`${source}: ${key} ${id} is outside the vocabulary (ids 0..${c.vocabSize - 1}, vocab_size ${c.vocabSize})`);
    }
  }
}

/**
 * Parameters of the encoder (embeddings and layers; no pooler, no head): what any BERT checkpoint holds.
 * The closed form of paramShapes, for checking a config before its graph is built.
 */
export function encoderParameters(c: BertConfig): number {
  const h = c.hiddenSize;
  const i = c.intermediateSize;
  const embeddings = (c.vocabSize + c.maxPositionEmbeddings + c.typeVocabSize) * h + 2 * h;
  const layer = 4 * (h * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h;
  return embeddings + c.numHiddenLayers * layer;
}

function describe(v: unknown): string {
  return typeof v === "string" ? `the string ${JSON.stringify(v)} (write numbers and true/false without quotes)` : JSON.stringify(v);
}

/** The config.json key of a field. */
export function snake(k: keyof BertConfig): string {
  return KEYS.find(([camel]) => camel === k)?.[1] ?? k;
}

export function configFromJson(json: unknown, source = "config.json"): BertConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new ConfigError(`${source}: expected a JSON object`);
  const o = json as Record<string, unknown>;
  if (o.model_type !== undefined && o.model_type !== "bert") {
    throw new ConfigError(`${source}: model_type ${JSON.stringify(o.model_type)} is not "bert"`);
  }
  const c: Record<string, unknown> = { ...DEFAULTS };
  const extra: Record<string, unknown> = {};
  const known = new Map(KEYS.map(([camel, snakeKey]) => [snakeKey, camel]));
  for (const [k, v] of Object.entries(o)) {
    const camel = known.get(k);
    if (camel) {
      if (v !== null || camel === "classifierDropout") c[camel] = v;
    } else if (k === "id2label" && v && typeof v === "object") {
      c.id2label = Object.fromEntries(Object.entries(v as Record<string, string>).map(([id, label]) => [Number(id), String(label)]));
    } else if (k !== "label2id" && k !== "model_type") {
      extra[k] = v;
    }
  }
  const cfg = { ...(c as unknown as BertConfig), extra };
  validateConfig(cfg, source);
  return cfg;
}

export function configToJson(c: BertConfig): Record<string, unknown> {
  const o: Record<string, unknown> = { model_type: "bert" };
  for (const [camel, snakeKey] of KEYS) if (c[camel] !== undefined) o[snakeKey] = c[camel];
  if (c.id2label) {
    o.id2label = Object.fromEntries(Object.entries(c.id2label).map(([id, l]) => [String(id), l]));
    o.label2id = Object.fromEntries(Object.entries(c.id2label).map(([id, l]) => [l, Number(id)]));
  }
  for (const [k, v] of Object.entries(c.extra)) if (!(k in o)) o[k] = v;
  return o;
}

export async function readConfig(dir: string): Promise<BertConfig> {
  const file = path.join(dir, "config.json");
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (e) {
    throw new ConfigError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${file}: invalid JSON (${(e as Error).message})`);
  }
  return configFromJson(json, file);
}

export async function writeConfig(dir: string, c: BertConfig): Promise<void> {
  await writeFileAtomic(path.join(dir, "config.json"), JSON.stringify(configToJson(c), null, 2) + "\n");
}
