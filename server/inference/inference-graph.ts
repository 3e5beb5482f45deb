// Eval-mode inference graphs: the same builder as training, dropout off, no labels, and the parameters
// as initializers so ONNX Runtime can constant-fold and pre-pack the weights: inside the model for
// export; for a session, as external data that ORT reads from the model's own model.safetensors (or, for
// weights that must be converted or quantized first, from a ParamStore's buffer), never copied into the
// model. BERT-Base's first answer in a fresh process (shared 2-core EPYC, medians of 8, interleaved): 0.68 s
// and 0.67 GB peak from the file, against 1.71 s and 1.84 GB with the weights inside the model.
import type * as ort from "onnxruntime-node";
import type { Fusion, Int8ParamFactory } from "../model/bert.js";
import type { BertConfig } from "../model/config.js";
import { Graph, type Value } from "../model/graph.js";
import type { TensorProto } from "../model/onnx.js";
import { buildHead, type Dims, type Head } from "../model/heads.js";
import type { ParamStore } from "../model/params.js";
import { createSession } from "../model/session.js";
import type { Device } from "../../common/settings.js";
import { quantizeLinearWeight } from "./quantize.js";

export interface InferenceGraphOptions {
  /** Head outputs to expose; default: the head's outputs (logits, prediction_logits, ...). */
  outputs?: string[];
  dims?: Partial<Dims>;
  /**
   * Which of ONNX Runtime's fused contrib ops the encoder is built with (model/bert.ts's Fusion), which
   * only ORT runs: the sessions made here default to "attention" (the CPU's fastest), buildInferenceGraph
   * (`export --format onnx`'s portable model.onnx) to "none", the plain ops of the training graphs.
   */
  fusion?: Fusion;
  /** int8 weights in the dense layers (quantize.ts; model/bert.ts's BuildContext.int8). */
  int8?: boolean;
}

/** The fusion of the sessions made here unless asked otherwise. */
const SESSION_FUSION: Fusion = "attention";

/**
 * The fusion of a session with int8 weights unless asked otherwise: "none", whose attention projections
 * are int8 too (ORT's float Attention op would keep a quarter of the encoder's multiply-adds in float).
 */
const INT8_SESSION_FUSION: Fusion = "none";

/** The fusion a session is built with: `opts.fusion`, else the default for its weights. */
export const sessionFusion = (opts: InferenceGraphOptions): Fusion => opts.fusion ?? (opts.int8 ? INT8_SESSION_FUSION : SESSION_FUSION);

/** Outputs that a graph has only when asked for them by name. */
const HIDDEN_STATES = ["last_hidden_state", "embedding_output", "pooler_output", "mlm_predictions", "nsp_predictions", "prediction_log_probs"];

export function buildInferenceGraph(cfg: BertConfig, task: Head, params: ParamStore, opts: InferenceGraphOptions = {}): Uint8Array {
  return inferenceGraph(cfg, task, opts, paramBytes(params));
}

/** The external data "file" of a graph whose float parameters lie in the ParamStore's buffer (ONNX Runtime's SessionOptions.externalData). */
const PARAMS_FILE = "params.bin";
/** A model folder's weights file. */
const WEIGHTS_FILE = "model.safetensors";

/**
 * A model folder's float32 weights where they lie in its model.safetensors (params.ts's paramFileRanges),
 * for ONNX Runtime to read from the file itself: no read into JavaScript, no copy.
 */
export interface WeightsFile {
  dir: string;
  ranges: Map<string, { offset: number; length: number }>;
}

/** A session's graph and what ONNX Runtime needs beside it to find the weights. */
export interface SessionGraph {
  model: Uint8Array;
  /** In-memory external data files (SessionOptions.externalData). */
  externalData?: { path: string; data: Uint8Array }[];
  /** The folder of the model's external data files on disk (ORT's session.model_external_initializers_file_folder_path). */
  externalFolder?: string;
}

/**
 * The graph of a session, its float parameters as external data so that the weights are never copied into
 * the model: from a ParamStore, at their offsets in its buffer (given to ONNX Runtime in memory; int8
 * weights, made here, likewise); from a WeightsFile, at their offsets in model.safetensors, which ONNX
 * Runtime reads itself (BERT-Base: the session in 0.6 s with 0.67 GB peak, against 1.2 s and 1.29 GB
 * through a ParamStore).
 */
export function sessionGraph(cfg: BertConfig, task: Head, weights: ParamStore | WeightsFile, opts: InferenceGraphOptions = {}): SessionGraph {
  if ("ranges" in weights) {
    if (opts.int8) throw new Error("int8 weights are made from a ParamStore's floats");
    const ref = (name: string) => {
      const r = weights.ranges.get(name);
      if (!r) throw new Error(`the model has no parameter ${name}`);
      return { location: WEIGHTS_FILE, ...r };
    };
    const model = inferenceGraph(cfg, task, opts, { float: (name) => ({ raw: NONE, external: ref(name) }), int8: noInt8Bytes });
    return { model, externalFolder: weights.dir };
  }
  const params = weights;
  const data = bytesOf(params.data);
  const externalData = [{ path: PARAMS_FILE, data }];
  const model = inferenceGraph(
    cfg,
    task,
    opts,
    paramBytes(params, {
      float: (view) => ({ location: PARAMS_FILE, offset: view.byteOffset - data.byteOffset, length: view.byteLength }),
      // Each int8 weight is a file of its own: they are made one by one.
      int8: (name, weight) => {
        externalData.push({ path: `${name}.int8`, data: weight });
        return { location: `${name}.int8`, offset: 0, length: weight.byteLength };
      },
    }),
  );
  return { model, externalData };
}

type External = NonNullable<TensorProto["external"]>;

/** Bytes from `params`: inline, or (`external`) as references into external data. */
function paramBytes(params: ParamStore, external?: { float(view: Float32Array): External; int8(name: string, weight: Uint8Array): External }): ParamBytes {
  const floats = (name: string, shape: number[]) => {
    const spec = params.byName.get(name);
    if (!spec) throw new Error(`the model has no parameter ${name}`);
    if (spec.shape.join() !== shape.join()) throw new Error(`parameter ${name} is [${spec.shape}], the graph needs [${shape}]`);
    return params.view(name);
  };
  return {
    float: (name, shape) => {
      const view = floats(name, shape);
      return external ? { raw: NONE, external: external.float(view) } : { raw: bytesOf(view) };
    },
    int8: (name, out, inFeatures) => {
      const q = quantizeLinearWeight(floats(name, [out, inFeatures]), out, inFeatures);
      const weight = bytesOf(q.weight);
      return { weight: external ? { raw: NONE, external: external.int8(name, weight) } : { raw: weight }, scale: bytesOf(q.scale) };
    },
  };
}

const NONE = new Uint8Array(0);
/** int8 weights without bytes: a graph's structure, or a graph that has none. */
const noInt8Bytes: ParamBytes["int8"] = () => ({ weight: { raw: NONE }, scale: NONE });
const bytesOf = (a: Float32Array | Int8Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Where an inference graph's initializers get their bytes: a parameter's floats, or its int8 form (quantize.ts). */
interface ParamBytes {
  float(name: string, shape: number[]): { raw: Uint8Array; external?: External };
  int8(name: string, outFeatures: number, inFeatures: number): { weight: { raw: Uint8Array; external?: External }; scale: Uint8Array };
}

/**
 * The same graph with no bytes in the parameters' initializers (32 kB for BERT-Base, built in 3 to 12
 * ms): everything about the model but its weights, which the session cache's key hashes.
 */
export function inferenceGraphStructure(cfg: BertConfig, task: Head, opts: InferenceGraphOptions = {}): Uint8Array {
  return inferenceGraph(cfg, task, opts, { float: () => ({ raw: NONE }), int8: noInt8Bytes });
}

function inferenceGraph(cfg: BertConfig, task: Head, opts: InferenceGraphOptions, bytes: ParamBytes): Uint8Array {
  const g = new Graph(`bert_${task}_inference`);
  // Initializers are created on first use; reuse the value when a parameter is used twice (the tied decoder;
  // the masked LM's last layer, built whole and at the masks).
  const made = new Map<string, Value>();
  const param = (name: string, shape: number[]) => {
    const hit = made.get(name);
    if (hit) return hit;
    const b = bytes.float(name, shape);
    return made.set(name, g.initializer(name, "float32", shape, b.raw, b.external)).get(name)!;
  };
  const quantized = new Map<string, ReturnType<Int8ParamFactory>>();
  const int8: Int8ParamFactory = (name, out, inFeatures) => {
    const hit = quantized.get(name);
    if (hit) return hit;
    const q = bytes.int8(name, out, inFeatures);
    // [out, in] as stored; the Transpose to [in, out] is folded by ONNX Runtime when the session is made.
    const weight = g.transpose(g.initializer(`${name}.int8`, "int8", [out, inFeatures], q.weight.raw, q.weight.external), [1, 0]);
    return quantized.set(name, { weight, scale: g.initializer(`${name}.scale`, "float32", [out], q.scale) }).get(name)!;
  };
  const dims: Dims = { batch: "batch", seq: "seq", choices: "choices", predictions: "predictions", ...opts.dims };
  const ctx = { g, cfg, param, training: false, inference: true, fusion: opts.fusion ?? "none", int8: opts.int8 ? int8 : undefined, dropoutSeed: 0 };
  const tg = buildHead(ctx, task, dims, false);
  const names = opts.outputs ?? Object.keys(tg.outputs).filter((n) => !HIDDEN_STATES.includes(n));
  for (const name of names) {
    if (!tg.outputs[name]) throw new Error(`task ${task} has no output ${name}`);
    g.output(tg.outputs[name], name);
  }
  return g.toModel({ prune: true });
}

export async function createInferenceSession(
  cfg: BertConfig,
  task: Head,
  weights: ParamStore | WeightsFile,
  opts: InferenceGraphOptions & { device?: Device; saveOptimized?: string } = {},
): Promise<ort.InferenceSession> {
  const { model, externalData, externalFolder } = sessionGraph(cfg, task, weights, { ...opts, fusion: sessionFusion(opts) });
  return (await createSession(model, { device: opts.device, saveOptimized: opts.saveOptimized, externalData, externalFolder })).session;
}

