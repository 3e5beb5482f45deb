// A model folder's eval-mode session. A float32 checkpoint run in fp32 on the CPU is read by ONNX Runtime
// from the folder's model.safetensors itself (inference-graph.ts's sessionGraph). Any other (int8
// weights, a float16 or float64 checkpoint) goes through the cache of sessions as ONNX Runtime optimized
// them (in ORT's format, under the user's cache folder): a fresh process that finds its model there skips
// reading and converting the weights, building the graph and optimizing it, and ORT uses the weights
// where the file's bytes lie. BERT-Base, from spawning a process to its first fill-mask answer (shared
// 2-core EPYC, medians of 8, interleaved): fp32 from model.safetensors 0.68 s and 0.66 GB peak, where
// the cache took 0.98 s and 0.95 GB (and its entry as many bytes on disk as the weights), so fp32 is
// not cached; int8 from the cache 0.4 s against 1.1 s built. Writing an entry costs ORT 2 to 2.5 s more
// than the plain load, so a session is written only at its second load: a checkpoint that a run in
// training writes and the server loads once is never written.
import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as ort from "onnxruntime-node";
import type { BertConfig } from "../model/config.js";
import { loadWeights } from "../model/folder.js";
import type { Head } from "../model/heads.js";
import { ParamStore, paramFileRanges, paramShapes } from "../model/params.js";
import { readSafetensorsLayout } from "../model/safetensors.js";
import { createOptimizedSession } from "../model/session.js";
import type { Device } from "../../common/settings.js";
import { cacheCapBytes, cacheRoot, evictLeastRecent } from "../util/cache.js";
import { writeFileAtomic } from "../util/fs.js";
import { createInferenceSession, inferenceGraphStructure, sessionFusion, type InferenceGraphOptions, type WeightsFile } from "./inference-graph.js";

/** `$BERT_STUDIO_CACHE/sessions`, else `$XDG_CACHE_HOME/bert-studio/sessions`, else `~/.cache/bert-studio/sessions`. */
export function sessionCacheDir(): string {
  return path.join(cacheRoot(), "sessions");
}

/** Bumped when what an entry holds changes in a way the key does not see. */
const ENTRY_FORMAT = 1;
/** ORT's format is a FlatBuffer, which holds at most 2 GiB; larger models are not cached. */
const MAX_WEIGHTS_BYTES = 1.5 * 2 ** 30;
/** How many keys the record of loads remembers (what "its second load" is counted against). */
const SEEN_KEYS = 64;

export interface FolderSessionOptions extends InferenceGraphOptions {
  device?: Device;
  /** Use and fill the session cache (CPU only); default true. */
  cache?: boolean;
}

/** How the session came: with ORT reading the weights file, from the cache, built (and written to it), or built. */
export type SessionSource = "file" | "cache" | "built-and-cached" | "built";

/**
 * The eval session of `task` for the model folder `dir`, whose config.json (`cfg`) was read and checked
 * against its tokenizer and its weights' header (openModelFolder): with ONNX Runtime reading the weights
 * from model.safetensors when it can (weightsFile), else from the cache when it holds it, else from the
 * weights (every tensor required), written to the cache when this is its second load.
 */
export async function loadInferenceSession(dir: string, cfg: BertConfig, task: Head, opts: FolderSessionOptions = {}): Promise<{ session: ort.InferenceSession; source: SessionSource }> {
  const shapes = paramShapes(cfg, task);
  const inFile = await weightsFile(dir, shapes, opts);
  if (inFile) return { session: await createInferenceSession(cfg, task, inFile, opts), source: "file" };
  const cached = (opts.device ?? "cpu") === "cpu" && opts.cache !== false;
  const key = cached ? await sessionKey(dir, cfg, task, opts).catch(() => undefined) : undefined;
  const file = key && path.join(sessionCacheDir(), `${key}.ort`);
  const hit = file && (await fromCache(file));
  if (hit) return { session: hit, source: "cache" };
  const weights = ParamStore.fromShapes(shapes);
  await loadWeights(dir, weights);
  if (file && key && (await loadedBefore(key))) {
    const session = await built(cfg, task, weights, opts, file);
    if (session) return { session, source: "built-and-cached" };
  }
  return { session: await createInferenceSession(cfg, task, weights, opts), source: "built" };
}

/**
 * The weights for ONNX Runtime to read from model.safetensors itself: when every parameter is a float32
 * tensor of its shape there and used as it is (fp32, on the CPU); else undefined, and they are read into
 * a ParamStore, converted and checked by loadWeights. Not on Windows: ORT maps the file into memory for
 * the session's life, and Windows refuses to replace or delete a mapped file, which a checkpoint of the
 * selected run (renamed over it) and Move to Trash both do.
 */
async function weightsFile(dir: string, shapes: { name: string; shape: number[] }[], opts: FolderSessionOptions): Promise<WeightsFile | undefined> {
  if (opts.int8 || (opts.device ?? "cpu") !== "cpu" || process.platform === "win32") return undefined;
  const file = await fs.realpath(path.join(dir, "model.safetensors")).catch(() => undefined);
  const ranges = file && paramFileRanges(shapes, await readSafetensorsLayout(file));
  return file && ranges ? { dir: path.dirname(file), ranges } : undefined;
}

/** The session, written to the cache as `file`; undefined when ORT could not write it (a cache that cannot be written is only slower). */
async function built(cfg: BertConfig, task: Head, weights: ParamStore, opts: InferenceGraphOptions, file: string): Promise<ort.InferenceSession | undefined> {
  const tmp = `${file}.tmp-${process.pid}`;
  let session: ort.InferenceSession;
  try {
    await fs.mkdir(path.dirname(file), { recursive: true });
    session = await createInferenceSession(cfg, task, weights, { ...opts, saveOptimized: tmp });
  } catch {
    await fs.rm(tmp, { force: true });
    return undefined;
  }
  try {
    await fs.rename(tmp, file);
    await evictLeastRecent(path.dirname(file), ".ort", file, cacheCapBytes());
  } catch {
    await fs.rm(tmp, { force: true });
  }
  return session;
}

/**
 * What the session is made of: the graph without its weights (ops, attributes, shapes, constants; so a
 * change to the builder is a new key), the weights file's identity (real path, size, modification time,
 * inode), ORT's version and the CPU (an optimized model may hold kernels for this CPU only).
 */
async function sessionKey(dir: string, cfg: BertConfig, task: Head, opts: InferenceGraphOptions): Promise<string | undefined> {
  const file = await fs.realpath(path.join(dir, "model.safetensors"));
  const stat = await fs.stat(file, { bigint: true });
  if (stat.size > MAX_WEIGHTS_BYTES) return undefined;
  const weights = { file, size: String(stat.size), mtime: String(stat.mtimeNs), ino: String(stat.ino), dev: String(stat.dev) };
  const where = { format: ENTRY_FORMAT, ort: ort.env.versions.node, cpu: os.cpus()[0]?.model, arch: process.arch, platform: process.platform };
  const h = createHash("sha256").update(JSON.stringify({ where, weights }));
  h.update(inferenceGraphStructure(cfg, task, { outputs: opts.outputs, dims: opts.dims, fusion: sessionFusion(opts), int8: opts.int8 })); // as createInferenceSession builds it
  return h.digest("hex").slice(0, 32);
}

/** The cached session in `file`, its recency renewed; undefined when there is none or it does not load (then it goes). */
async function fromCache(file: string): Promise<ort.InferenceSession | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(file);
  } catch {
    return undefined;
  }
  try {
    const session = await createOptimizedSession(bytes);
    const now = new Date();
    await fs.utimes(file, now, now).catch(() => undefined);
    return session;
  } catch {
    await fs.rm(file, { force: true });
    return undefined;
  }
}

/** Whether `key` was loaded before (by any process); records that it now is. */
async function loadedBefore(key: string): Promise<boolean> {
  const record = path.join(sessionCacheDir(), "loaded");
  const keys = (await fs.readFile(record, "utf8").catch(() => "")).split("\n").filter(Boolean);
  if (keys.includes(key)) return true;
  try {
    await fs.mkdir(path.dirname(record), { recursive: true });
    await writeFileAtomic(record, [...keys.slice(-(SEEN_KEYS - 1)), key].join("\n") + "\n");
  } catch {
    // unrecorded: this model will take one more load to be cached
  }
  return false;
}
