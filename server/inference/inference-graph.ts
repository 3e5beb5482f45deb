// Eval-mode inference graphs: the same builder as training, dropout off, no labels, and the parameters
// embedded as initializers so ONNX Runtime can constant-fold and pre-pack the weights.
import type * as ort from "onnxruntime-node";
import type { Fusion } from "../model/bert.js";
import type { BertConfig } from "../model/config.js";
import { Graph, type Value } from "../model/graph.js";
import { buildHead, type Dims, type Head } from "../model/heads.js";
import type { ParamStore } from "../model/params.js";
import { createSession } from "../model/session.js";
import type { Device } from "../../common/settings.js";

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
}

/** The fusion of the sessions made here unless asked otherwise. */
export const SESSION_FUSION: Fusion = "attention";

const HIDDEN_STATES = ["last_hidden_state", "embedding_output", "pooler_output", "mlm_predictions", "nsp_predictions"];

export function buildInferenceGraph(cfg: BertConfig, task: Head, params: ParamStore, opts: InferenceGraphOptions = {}): Uint8Array {
  return inferenceGraph(cfg, task, opts, (name, shape) => {
    const spec = params.byName.get(name);
    if (!spec) throw new Error(`the model has no parameter ${name}`);
    if (spec.shape.join() !== shape.join()) throw new Error(`parameter ${name} is [${spec.shape}], the graph needs [${shape}]`);
    const view = params.view(name);
    return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  });
}

/**
 * The same graph with no bytes in the parameters' initializers (32 kB for BERT-Base, built in 3 to 12
 * ms): everything about the model but its weights, which the session cache's key hashes.
 */
export function inferenceGraphStructure(cfg: BertConfig, task: Head, opts: InferenceGraphOptions = {}): Uint8Array {
  const none = new Uint8Array(0);
  return inferenceGraph(cfg, task, opts, () => none);
}

function inferenceGraph(cfg: BertConfig, task: Head, opts: InferenceGraphOptions, bytes: (name: string, shape: number[]) => Uint8Array): Uint8Array {
  const g = new Graph(`bert_${task}_inference`);
  // Initializers are created on first use; reuse the value when a parameter is used twice (tied decoder).
  const made = new Map<string, Value>();
  const param = (name: string, shape: number[]) => made.get(name) ?? made.set(name, g.initializer(name, "float32", shape, bytes(name, shape))).get(name)!;
  const dims: Dims = { batch: "batch", seq: "seq", choices: "choices", predictions: "predictions", ...opts.dims };
  const tg = buildHead({ g, cfg, param, training: false, fusion: opts.fusion ?? "none", dropoutSeed: 0 }, task, dims, false);
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
  params: ParamStore,
  opts: InferenceGraphOptions & { device?: Device; saveOptimized?: string } = {},
): Promise<ort.InferenceSession> {
  const model = buildInferenceGraph(cfg, task, params, { ...opts, fusion: opts.fusion ?? SESSION_FUSION });
  return (await createSession(model, { device: opts.device, saveOptimized: opts.saveOptimized })).session;
}
