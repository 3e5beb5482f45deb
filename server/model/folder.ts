// Loading a model folder (an HF folder or a run: config.json, model.safetensors, a tokenizer): the one
// implementation behind fill-mask, task models, import, export, fine-tuning's base model and resume.
// The order is the order of the checks: config.json (values checked as it is read), the head it asks for,
// the tokenizer and the sizes (checkModelFolder, before anything is allocated), then the weights.
// The tokenizer is the caller's (server/text lies above this stage): pass the tokenizer, or how to load
// it from the folder (BertTokenizer.fromDir); only its size and name are read here.
import * as path from "node:path";
import { readConfig, type BertConfig } from "./config.js";
import type { Head } from "./heads.js";
import { checkModelFolder, loadParams, paramDestination, ParamStore, paramShapes, requireComplete, type LoadReport } from "./params.js";
import { readSafetensors } from "./safetensors.js";

/** What the checks read of a tokenizer: its size, and the file it came from (for messages). */
export interface TokenizerSize {
  vocabSize: number;
  source: string;
}

/** A tokenizer already loaded, or how to load the folder's own. */
export type TokenizerOf<T extends TokenizerSize> = T | ((dir: string) => Promise<T>);

export interface ModelFolderOptions<T extends TokenizerSize> {
  /** The head whose parameters are allocated, or how to choose it from config.json. */
  head: Head | ((cfg: BertConfig) => Head);
  tokenizer: TokenizerOf<T>;
  /** Parameters that may be absent from model.safetensors (they stay zero); default: none may be. */
  allowMissing?: (name: string, cfg: BertConfig) => boolean;
}

export interface ModelFolder<T extends TokenizerSize> {
  cfg: BertConfig;
  head: Head;
  tokenizer: T;
  params: ParamStore;
  /** Loaded / missing / unexpected tensor names. */
  report: LoadReport;
  /** model.safetensors' metadata (a checkpoint's step). */
  metadata: Record<string, string>;
}

/** Reads, checks and loads the model folder `dir`: config, tokenizer, sizes, then every tensor of the head. */
export async function loadModelFolder<T extends TokenizerSize>(dir: string, o: ModelFolderOptions<T>): Promise<ModelFolder<T>> {
  const cfg = await readConfig(dir);
  const head = typeof o.head === "function" ? o.head(cfg) : o.head;
  const tokenizer = await checkedTokenizer(dir, cfg, o.tokenizer);
  const params = ParamStore.fromShapes(paramShapes(cfg, head));
  const { report, metadata } = await loadWeights(dir, params, { allowMissing: o.allowMissing && ((n) => o.allowMissing!(n, cfg)) });
  return { cfg, head, tokenizer, params, report, metadata };
}

/**
 * The first half of loadModelFolder: config.json and the tokenizer, checked against each other and against
 * model.safetensors' header. For a caller that derives its own config before allocating (fine-tuning).
 */
export async function openModelFolder<T extends TokenizerSize>(dir: string, tokenizer: TokenizerOf<T>): Promise<{ cfg: BertConfig; tokenizer: T }> {
  const cfg = await readConfig(dir);
  return { cfg, tokenizer: await checkedTokenizer(dir, cfg, tokenizer) };
}

/**
 * The second half: `dir`/model.safetensors into `params` (allocated, and initialised where tensors may be
 * missing, by the caller). A tensor of the wrong shape is an error naming it; a missing one is unless
 * `allowMissing` says it may be.
 */
export async function loadWeights(dir: string, params: ParamStore, o: { allowMissing?: (name: string) => boolean } = {}): Promise<{ report: LoadReport; metadata: Record<string, string> }> {
  const file = path.join(dir, "model.safetensors");
  const { tensors, metadata } = await readSafetensors(file, undefined, paramDestination(params));
  const report = loadParams(params, tensors, file);
  const allow = o.allowMissing;
  requireComplete(allow ? { ...report, missing: report.missing.filter((n) => !allow(n)) } : report, dir);
  return { report, metadata };
}

async function checkedTokenizer<T extends TokenizerSize>(dir: string, cfg: BertConfig, tokenizer: TokenizerOf<T>): Promise<T> {
  const tok = typeof tokenizer === "function" ? await tokenizer(dir) : tokenizer;
  await checkModelFolder(dir, cfg, tok);
  return tok;
}
