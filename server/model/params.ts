// Parameters of a model in one flat Float32Array, each named tensor a view into it (HF names).
// Loading maps Hugging Face checkpoints onto it (tied decoder, legacy names, missing "bert." prefix).
import * as path from "node:path";
import * as ort from "onnxruntime-node";
import { ConfigError, snake, type BertConfig } from "./config.js";
import { Graph, type Value } from "./graph.js";
import { buildHead, type Head } from "./heads.js";
import { readSafetensorsLayout, toFloat32, writeSafetensors, type Destination, type NamedTensor, type TensorLayout } from "./safetensors.js";
import { Rng } from "../util/rng.js";

export interface ParamSpec {
  readonly name: string;
  readonly shape: number[];
  readonly size: number;
  /** Offset in elements into the flat buffer. */
  readonly offset: number;
}

export class CheckpointError extends Error {}

export class ParamStore {
  readonly byName = new Map<string, ParamSpec>();
  readonly size: number;

  constructor(
    readonly specs: ParamSpec[],
    readonly data: Float32Array = new Float32Array(specs.reduce((n, s) => n + s.size, 0)),
  ) {
    for (const s of specs) this.byName.set(s.name, s);
    this.size = specs.reduce((n, s) => n + s.size, 0);
    if (data.length !== this.size) throw new Error(`ParamStore: buffer of ${data.length} floats for ${this.size} parameters`);
  }

  static fromShapes(shapes: { name: string; shape: number[] }[]): ParamStore {
    let offset = 0;
    const specs = shapes.map(({ name, shape }) => {
      const size = shape.reduce((a, b) => a * b, 1);
      const spec = { name, shape, size, offset };
      offset += size;
      return spec;
    });
    return new ParamStore(specs);
  }

  view(name: string): Float32Array {
    const s = this.byName.get(name);
    if (!s) throw new Error(`no parameter ${name}`);
    return this.data.subarray(s.offset, s.offset + s.size);
  }

  /** The parameters as ONNX Runtime tensors over their views (no copy), named `prefix` + name: a graph's feeds. */
  feeds(prefix = ""): Record<string, ort.Tensor> {
    return Object.fromEntries(this.specs.map((s) => [prefix + s.name, new ort.Tensor("float32", this.view(s.name), s.shape)]));
  }

  /** A store with the same layout and a fresh (zeroed) buffer. */
  like(): ParamStore {
    return new ParamStore(this.specs);
  }

  copy(): ParamStore {
    return new ParamStore(this.specs, this.data.slice());
  }
}

/** The parameters (HF names and shapes) of `task`'s model, in graph order. */
export function paramShapes(cfg: BertConfig, task: Head): { name: string; shape: number[] }[] {
  const seen = new Map<string, number[]>();
  const g = new Graph();
  const param = (name: string, shape: number[]): Value => {
    if (!seen.has(name)) seen.set(name, shape);
    return g.input(`p${seen.size}_${g.inputs.length}`, "float32", shape);
  };
  buildHead({ g, cfg, param, training: false, dropoutSeed: 0 }, task, { batch: 1, seq: 1, choices: 1, predictions: 1 }, false);
  return [...seen].map(([name, shape]) => ({ name, shape }));
}

/** HF `_init_weights`: normal(0, initializer_range) weights and embeddings, zero biases, LayerNorm 1/0, pad row 0. */
export function initParams(store: ParamStore, cfg: BertConfig, seed: number): void {
  const rng = new Rng(seed);
  for (const s of store.specs) {
    const v = store.view(s.name);
    if (s.name.includes("LayerNorm.weight")) v.fill(1);
    else if (s.name.endsWith(".bias") || s.shape.length === 1) v.fill(0);
    else {
      for (let i = 0; i < v.length; i++) v[i] = rng.normal() * cfg.initializerRange;
      if (s.name === "bert.embeddings.word_embeddings.weight" && cfg.padTokenId >= 0 && cfg.padTokenId < cfg.vocabSize) {
        v.fill(0, cfg.padTokenId * s.shape[1], (cfg.padTokenId + 1) * s.shape[1]);
      }
    }
  }
}

export interface LoadReport {
  loaded: string[];
  /** Parameters of the model not in the checkpoint (left as initialised). */
  missing: string[];
  /** Checkpoint tensors the model does not use. */
  unexpected: string[];
}

/** Checkpoint name → candidate model names, most specific first. */
function candidates(name: string): string[] {
  let n = name.replace(/LayerNorm\.gamma$/, "LayerNorm.weight").replace(/LayerNorm\.beta$/, "LayerNorm.bias");
  if (n === "cls.predictions.decoder.bias") n = "cls.predictions.bias";
  const out = [n];
  if (!n.startsWith("bert.") && !n.startsWith("cls.") && !/^(classifier|qa_outputs)\./.test(n)) out.push(`bert.${n}`);
  return out;
}

/**
 * The model parameter each checkpoint tensor maps onto, asked in the checkpoint's order: the first tensor
 * that maps onto a parameter takes it, whatever its dtype or shape, and a later one maps onto none. The
 * one rule of loadParams, paramDestination and paramFileRanges.
 */
function claimer(has: (param: string) => boolean): (tensor: string) => string | undefined {
  const taken = new Set<string>();
  return (tensor) => {
    const target = candidates(tensor).find(has);
    if (!target || taken.has(target)) return undefined;
    taken.add(target);
    return target;
  };
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Where loadParams will put the checkpoint's tensors: for a float32 tensor of the right shape, the view of
 * its parameter in `store`, so that readSafetensors reads it there and loadParams has nothing to copy.
 * Each parameter is handed out once, to the first tensor that maps onto it, as loadParams takes the first.
 */
export function paramDestination(store: ParamStore): Destination {
  const claim = claimer((p) => store.byName.has(p));
  return (name, dtype, shape) => {
    const target = claim(name);
    if (!target) return undefined;
    const spec = store.byName.get(target)!;
    if (dtype !== "F32" || !sameShape(shape, spec.shape)) return undefined;
    return new Uint8Array(store.data.buffer, store.data.byteOffset + spec.offset * 4, spec.size * 4);
  };
}

/**
 * Where each of the parameters `shapes` lies in a safetensors file of layout `layout`, when every one is a
 * float32 tensor of its shape there (the tensor loadParams would load: the first that maps onto it);
 * undefined when one is not (missing, another dtype or shape), whose bytes must then be read, converted
 * or reported by loadWeights. Lets ONNX Runtime read the weights from the file itself.
 */
export function paramFileRanges(shapes: { name: string; shape: number[] }[], layout: Map<string, TensorLayout>): Map<string, { offset: number; length: number }> | undefined {
  const wanted = new Map(shapes.map((s) => [s.name, s.shape]));
  const claim = claimer((p) => wanted.has(p));
  const ranges = new Map<string, { offset: number; length: number }>();
  for (const [name, t] of layout) {
    const target = claim(name);
    if (!target) continue;
    if (t.dtype !== "F32" || !sameShape(t.shape, wanted.get(target)!)) return undefined;
    if (t.offset % 4 !== 0) return undefined; // a float32 ORT would map at an unaligned address (a header not padded as the format asks)
    ranges.set(target, { offset: t.offset, length: t.length });
  }
  return ranges.size === wanted.size ? ranges : undefined;
}

/**
 * Copies every checkpoint tensor that matches a model parameter by name. A shape mismatch is an error
 * naming the tensor; tensors of a different model (other heads) are reported as unexpected.
 */
export function loadParams(store: ParamStore, tensors: Map<string, NamedTensor>, source: string): LoadReport {
  const loaded = new Set<string>();
  const unexpected: string[] = [];
  const claim = claimer((p) => store.byName.has(p));
  for (const [name, t] of tensors) {
    const target = claim(name);
    if (!target) {
      if (name !== "cls.predictions.decoder.weight" && !name.endsWith("position_ids")) unexpected.push(name);
      continue;
    }
    const spec = store.byName.get(target)!;
    if (!sameShape(t.shape, spec.shape)) {
      throw new CheckpointError(`${source}: tensor ${name} has shape [${t.shape}], the model expects [${spec.shape}]`);
    }
    const view = store.view(target);
    const read = t.data.buffer === view.buffer && t.data.byteOffset === view.byteOffset; // read there by paramDestination
    if (!read) view.set(toFloat32(t));
    loaded.add(target);
  }
  // An untied checkpoint's decoder weight loads into the model's own decoder parameter when it has one.
  const missing = store.specs.map((s) => s.name).filter((n) => !loaded.has(n));
  return { loaded: [...loaded], missing, unexpected };
}

/** Where the sizes of config.json show in a checkpoint: [key, tensor, axis]. */
const SIZE_AXES: ["vocabSize" | "hiddenSize" | "maxPositionEmbeddings" | "typeVocabSize" | "intermediateSize", string, number][] = [
  ["vocabSize", "bert.embeddings.word_embeddings.weight", 0],
  ["hiddenSize", "bert.embeddings.word_embeddings.weight", 1],
  ["maxPositionEmbeddings", "bert.embeddings.position_embeddings.weight", 0],
  ["typeVocabSize", "bert.embeddings.token_type_embeddings.weight", 0],
  ["intermediateSize", "bert.encoder.layer.0.intermediate.dense.weight", 0],
];

/**
 * Checks a model folder's config.json against its tokenizer and against the header of its
 * model.safetensors, before anything is allocated: a wrong size used to be found only when the weights
 * were compared (max_position_embeddings 2e7 on a 3-layer model: fine-tuning first filled 3.7 GB of
 * parameters for 53 s). Errors name the key.
 */
export async function checkModelFolder(dir: string, cfg: BertConfig, tokenizer: { vocabSize: number; source: string }): Promise<void> {
  const config = path.join(dir, "config.json");
  if (tokenizer.vocabSize !== cfg.vocabSize) {
    throw new ConfigError(`${tokenizer.source} has ${tokenizer.vocabSize} tokens but ${config} says vocab_size ${cfg.vocabSize}: the tokenizer does not belong to this model; use the vocabulary it was trained with`);
  }
  const file = path.join(dir, "model.safetensors");
  const shapes = new Map<string, number[]>();
  for (const [name, t] of await readSafetensorsLayout(file)) for (const c of candidates(name)) if (!shapes.has(c)) shapes.set(c, t.shape);
  for (const [key, tensor, axis] of SIZE_AXES) {
    const shape = shapes.get(tensor);
    if (shape && shape[axis] !== cfg[key]) {
      throw new ConfigError(`${config}: ${snake(key)} is ${cfg[key]} but ${file} holds ${tensor} of shape [${shape}], which makes it ${shape[axis]}; fix config.json or use the weights it belongs to`);
    }
  }
  const layers = new Set([...shapes.keys()].flatMap((n) => /^bert\.encoder\.layer\.(\d+)\./.exec(n)?.[1] ?? []));
  if (cfg.numHiddenLayers > layers.size) {
    throw new ConfigError(`${config}: num_hidden_layers is ${cfg.numHiddenLayers} but ${file} holds ${layers.size} layers; fix config.json or use the weights it belongs to`);
  }
}

/** Requires every parameter to be present, naming the first one that is not. */
export function requireComplete(report: LoadReport, source: string): void {
  if (report.missing.length > 0) {
    const more = report.missing.length > 1 ? ` (and ${report.missing.length - 1} more)` : "";
    throw new CheckpointError(`${source}: checkpoint is missing tensor ${report.missing[0]}${more}`);
  }
}

/** Writes the parameters as HF `model.safetensors` (the tied decoder weight is not written, as HF does). */
export async function saveParams(store: ParamStore, path: string, metadata: Record<string, string> = {}): Promise<void> {
  await writeSafetensors(
    path,
    store.specs.map((s) => [s.name, { dtype: "F32" as const, shape: s.shape, data: store.view(s.name) }]),
    { format: "pt", ...metadata },
  );
}
