// Model folders as the editor and the CLI handle them: listing the models of run folders, checking one
// before it is used, importing an HF folder (checked by loading it, then its files copied) and exporting a
// model (its HF files, or an ONNX inference graph with the weights inside, plus the tokenizer).
// Where a model may be written is the caller's decision (the server: only inside the workspace's runs,
// never over a model or a job; the CLI: never over a model or a run); what a folder holds is told here.
import { promises as fs } from "node:fs";
import * as path from "node:path";
import type { ModelInfo } from "../../common/protocol.js";
import { readConfig } from "../model/config.js";
import { loadModelFolder } from "../model/folder.js";
import { headFromArchitectures, type Head } from "../model/heads.js";
import { exists } from "../util/fs.js";
import { describeHolder, runLockHolder } from "../training/run-lock.js";
import { BertTokenizer } from "../text/tokenizer.js";
import { buildInferenceGraph } from "./inference-graph.js";

/** The files of a model folder that an import or an HF export copies (those present). */
export const MODEL_FILES = ["config.json", "model.safetensors", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"];
const TOKENIZER_FILES = ["config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json"];

export type ExportFormat = "hf" | "onnx";
export const EXPORT_FORMATS: readonly ExportFormat[] = ["hf", "onnx"];

/** What `dir` holds: its architecture and fine-tuning task; an error unless it has config.json and model.safetensors. */
export async function modelInfo(dir: string): Promise<ModelInfo> {
  const cfg = await readConfig(dir);
  if (!(await exists(path.join(dir, "model.safetensors")))) throw new Error(`${dir}: no model.safetensors`);
  const task = typeof cfg.extra.finetuning_task === "string" ? cfg.extra.finetuning_task : undefined;
  return { dir, architecture: cfg.architectures?.[0] ?? "BertModel", task };
}

/** The models in run folders: each folder of `folders` that is a model, and its `best/`. */
export async function listModels(folders: string[]): Promise<ModelInfo[]> {
  const found: ModelInfo[] = [];
  for (const folder of folders) {
    const entries = await fs.readdir(folder, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      for (const dir of [path.join(folder, e.name), path.join(folder, e.name, "best")]) {
        const info = await modelInfo(dir).catch(() => undefined);
        if (info) found.push(info);
      }
    }
  }
  return found;
}

/** A model before it is selected for fill-mask: its config, its weights' file and its tokenizer are there. */
export async function checkModel(dir: string): Promise<ModelInfo> {
  const info = await modelInfo(dir);
  await BertTokenizer.fromDir(dir);
  return info;
}

/** What in `dir` a copy of model files must not overwrite, said for a message; undefined when nothing is. */
export async function heldBy(dir: string): Promise<string | undefined> {
  const holder = await runLockHolder(dir);
  if (holder) return describeHolder(holder);
  if (await exists(path.join(dir, "trainer_state.json"))) return "it holds a training run";
  if (await exists(path.join(dir, "model.safetensors"))) return "it holds a model";
  return undefined;
}

/** An encoder parameter: what any BERT checkpoint holds, even a bare BertModel's (no head, maybe no pooler). */
const isEncoder = (name: string) => name.startsWith("bert.") && !name.startsWith("bert.pooler.");

/**
 * Checks the HF folder `dir` by loading it (config, tokenizer, sizes, every tensor of its architecture; of
 * the encoder for a bare BertModel, which can be fine-tuned but not fill masks), then copies its model
 * files into `dest` (created). Reads nothing else and writes nothing else.
 */
export async function importModel(dir: string, dest: string): Promise<ModelInfo> {
  const bare = (architectures?: string[]) => headFromArchitectures(architectures) === undefined;
  await loadModelFolder(dir, {
    head: (cfg) => headFromArchitectures(cfg.architectures) ?? "masked_lm",
    tokenizer: BertTokenizer.fromDir,
    allowMissing: (name, cfg) => bare(cfg.architectures) && !isEncoder(name),
  });
  await fs.mkdir(dest, { recursive: true });
  await copyFiles(dir, dest, MODEL_FILES);
  return modelInfo(dest);
}

/** The head an ONNX export runs: the model's own, or the masked LM for a pretrained (or bare) model. */
function exportHead(architectures: string[] | undefined): Head {
  const head = headFromArchitectures(architectures);
  return !head || head === "pretraining" ? "masked_lm" : head;
}

/**
 * Writes `model`'s files into `dest` (created), overwriting those names there, and returns their paths.
 * hf: the HF files as they are; onnx: model.onnx, the eval-mode inference graph of the model's head (the
 * masked LM for a pretrained model) with the weights inside, loaded and checked as fill-mask loads a
 * model, plus config.json and the tokenizer files.
 */
export async function exportModel(model: string, format: ExportFormat, dest: string): Promise<string[]> {
  await modelInfo(model);
  if (format === "hf") {
    await fs.mkdir(dest, { recursive: true });
    return copyFiles(model, dest, MODEL_FILES);
  }
  const { cfg, head, params } = await loadModelFolder(model, { head: (c) => exportHead(c.architectures), tokenizer: BertTokenizer.fromDir });
  await fs.mkdir(dest, { recursive: true });
  const onnx = path.join(dest, "model.onnx");
  await fs.writeFile(onnx, buildInferenceGraph(cfg, head, params));
  return [onnx, ...(await copyFiles(model, dest, TOKENIZER_FILES))];
}

/** Copies those of `names` that `from` has into `to`; the paths written. */
async function copyFiles(from: string, to: string, names: string[]): Promise<string[]> {
  const written: string[] = [];
  for (const f of names) {
    if (!(await exists(path.join(from, f)))) continue;
    await fs.copyFile(path.join(from, f), path.join(to, f));
    written.push(path.join(to, f));
  }
  return written;
}
