// Model folders as the editor and the CLI handle them: listing the models of run folders, checking one
// before it is used, importing an HF folder (checked by loading it, then its files copied) and exporting a
// model (its HF files, or an ONNX inference graph with the weights inside, plus the tokenizer).
// Where a model may be written is the caller's decision (the server: only inside the workspace's runs,
// never over a model or a job; the CLI: never over a model or a run); what a folder holds is told here.
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { CachedModel, ModelInfo } from "../../common/protocol.js";
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

/**
 * The Hugging Face hub cache, found as huggingface_hub finds it (its constants.py): $HF_HUB_CACHE, the legacy
 * $HUGGINGFACE_HUB_CACHE, $HF_HOME/hub, $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub; a
 * leading ~ is the home folder, as its expanduser makes it. An empty variable counts as unset.
 */
export function huggingFaceCache(env: NodeJS.ProcessEnv = process.env, home = os.homedir()): string {
  const expand = (p: string) => p.replace(/^~(?=$|[\\/])/, () => home);
  const hub = env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE;
  if (hub) return expand(hub);
  return path.join(expand(env.HF_HOME || path.join(env.XDG_CACHE_HOME || path.join(home, ".cache"), "huggingface")), "hub");
}

/**
 * The BERT models in the Hugging Face cache: each snapshot `models--ORG--NAME/snapshots/<revision>` whose
 * config.json is a BERT's and which has a tokenizer (vocab.txt or tokenizer.json) and weights. Its files are
 * links into the repository's blobs/, followed here as the import's copy follows them. Weights only as
 * pytorch_model.bin (a pickle, which this engine does not read) are listed with that problem rather than
 * left out: the user sees why a model they downloaded cannot be imported. Anything unreadable or odd
 * (datasets, a partial download, a broken config) is skipped.
 */
export async function huggingFaceCacheModels(env: NodeJS.ProcessEnv = process.env, home = os.homedir()): Promise<CachedModel[]> {
  const cache = huggingFaceCache(env, home);
  const found: CachedModel[] = [];
  for (const entry of await fs.readdir(cache).catch(() => [])) {
    if (!entry.startsWith("models--")) continue;
    const repo = entry.slice("models--".length).split("--").join("/");
    const refs = await cacheRefs(path.join(cache, entry, "refs"));
    const snapshots = path.join(cache, entry, "snapshots");
    for (const revision of await fs.readdir(snapshots).catch(() => [])) {
      const model = await cachedBert(path.join(snapshots, revision));
      if (model) found.push({ ...model, repo, revision, refs: refs.filter((r) => r.revision === revision).map((r) => r.name) });
    }
  }
  // By name; within a repository the revisions a ref points at ("main") first.
  return found.sort((a, b) => a.repo.localeCompare(b.repo) || b.refs.length - a.refs.length);
}

/** The refs of a cached repository (refs/main, refs/pr/1, a tag): each file holds the revision it points at. */
async function cacheRefs(dir: string): Promise<{ name: string; revision: string }[]> {
  const refs: { name: string; revision: string }[] = [];
  for (const f of await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])) {
    const file = path.join(f.parentPath, f.name);
    const revision = f.isFile() ? await fs.readFile(file, "utf8").catch(() => undefined) : undefined;
    if (revision) refs.push({ name: path.relative(dir, file).split(path.sep).join("/"), revision: revision.trim() });
  }
  return refs;
}

/** What a cached snapshot holds when it is a BERT with a tokenizer and weights; undefined otherwise. */
async function cachedBert(dir: string): Promise<Pick<CachedModel, "dir" | "architecture" | "problem"> | undefined> {
  let cfg: { model_type?: unknown; architectures?: unknown };
  try {
    cfg = JSON.parse(await fs.readFile(path.join(dir, "config.json"), "utf8")) as typeof cfg;
  } catch {
    return undefined;
  }
  const architectures = Array.isArray(cfg?.architectures) ? cfg.architectures.filter((a): a is string => typeof a === "string") : [];
  if (cfg?.model_type !== "bert" && !architectures.some((a) => a.startsWith("Bert"))) return undefined;
  const has = (f: string) => exists(path.join(dir, f));
  if (!(await has("vocab.txt")) && !(await has("tokenizer.json"))) return undefined;
  const architecture = architectures[0] ?? "BertModel";
  if (await has("model.safetensors")) return { dir, architecture };
  if (await has("pytorch_model.bin")) return { dir, architecture, problem: "its weights are only pytorch_model.bin (PyTorch's pickle format); BERT Studio reads model.safetensors" };
  return undefined;
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
 * model, plus config.json and the tokenizer files; with `int8`, its dense layers' weights int8 (ORT's
 * DynamicQuantizeMatMul: the file then runs on ONNX Runtime only).
 */
export async function exportModel(model: string, format: ExportFormat, dest: string, o: { int8?: boolean } = {}): Promise<string[]> {
  await modelInfo(model);
  if (o.int8 && format !== "onnx") throw new Error("int8 is an export --format onnx option");
  if (format === "hf") {
    await fs.mkdir(dest, { recursive: true });
    return copyFiles(model, dest, MODEL_FILES);
  }
  const { cfg, head, params } = await loadModelFolder(model, { head: (c) => exportHead(c.architectures), tokenizer: BertTokenizer.fromDir });
  await fs.mkdir(dest, { recursive: true });
  const onnx = path.join(dest, "model.onnx");
  await fs.writeFile(onnx, buildInferenceGraph(cfg, head, params, { int8: o.int8 }));
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
