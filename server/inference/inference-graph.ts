// Eval-mode inference graphs: the same builder as training, dropout off, no labels, and the parameters
// embedded as initializers so ONNX Runtime can constant-fold and pre-pack the weights.
import type * as ort from "onnxruntime-node";
import type { BertConfig } from "../model/config.js";
import { Graph } from "../model/graph.js";
import { buildHead, type Dims, type Head } from "../model/heads.js";
import type { ParamStore } from "../model/params.js";
import { createSession } from "../model/session.js";
import type { Device } from "../../common/settings.js";

export interface InferenceGraphOptions {
  /** Head outputs to expose; default: the head's outputs (logits, prediction_logits, ...). */
  outputs?: string[];
  dims?: Partial<Dims>;
}

const HIDDEN_STATES = ["last_hidden_state", "embedding_output", "pooler_output", "mlm_predictions", "nsp_predictions"];

export function buildInferenceGraph(cfg: BertConfig, task: Head, params: ParamStore, opts: InferenceGraphOptions = {}): Uint8Array {
  const g = new Graph(`bert_${task}_inference`);
  const param = (name: string, shape: number[]) => {
    const spec = params.byName.get(name);
    if (!spec) throw new Error(`the model has no parameter ${name}`);
    if (spec.shape.join() !== shape.join()) throw new Error(`parameter ${name} is [${spec.shape}], the graph needs [${shape}]`);
    const view = params.view(name);
    return g.initializer(name, "float32", shape, new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
  };
  // Initializers are created on first use; reuse the value when a parameter is used twice (tied decoder).
  const made = new Map<string, ReturnType<typeof param>>();
  const once = (name: string, shape: number[]) => made.get(name) ?? made.set(name, param(name, shape)).get(name)!;
  const dims: Dims = { batch: "batch", seq: "seq", choices: "choices", predictions: "predictions", ...opts.dims };
  const tg = buildHead({ g, cfg, param: once, training: false, dropoutSeed: 0 }, task, dims, false);
  const names = opts.outputs ?? Object.keys(tg.outputs).filter((n) => !HIDDEN_STATES.includes(n));
  for (const name of names) {
    if (!tg.outputs[name]) throw new Error(`task ${task} has no output ${name}`);
    g.output(tg.outputs[name], name);
  }
  return g.toModel();
}

export async function createInferenceSession(
  cfg: BertConfig,
  task: Head,
  params: ParamStore,
  opts: InferenceGraphOptions & { device?: Device } = {},
): Promise<ort.InferenceSession> {
  return (await createSession(buildInferenceGraph(cfg, task, params, opts), { device: opts.device })).session;
}
