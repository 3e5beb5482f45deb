// Generates the ONNX graphs of training: forward + loss + backward, and optionally global-norm clipping
// and the AdamW update, all in one graph. Parameters and Adam moments are graph inputs and outputs.
import type { BertConfig } from "../model/config.js";
import { Graph, type Value } from "../model/graph.js";
import { buildHead, type Dims, type Head } from "../model/heads.js";
import { gradients } from "./autodiff.js";

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Global gradient-norm clipping; 0 turns it off. */
  maxGradNorm: number;
  /** Substrings of parameter names exempt from weight decay (HF: bias and LayerNorm weights). */
  noDecay: string[];
}

export const DEFAULT_ADAMW: AdamWConfig = {
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0.01,
  maxGradNorm: 1.0,
  noDecay: ["bias", "LayerNorm.weight"],
};

/**
 * - `grads`: outputs the gradient of every parameter (`grad.<name>`), e.g. for parity checks.
 * - `accumulate`: adds this micro-batch's gradients to `acc.<name>` → `acc_out.<name>`.
 * - `step`: clips and applies AdamW: `<name>` → `new.<name>`, `m.`/`v.` → `new_m.`/`new_v.`;
 *   with `withAccumulator`, the gradients in `acc.<name>` are added first.
 * - `eval`: forward and losses only (held-out evaluation), parameters still graph inputs.
 */
export type TrainMode = "grads" | "accumulate" | "step" | "eval";

export interface TrainGraphOptions {
  mode: TrainMode;
  dims: Dims;
  /** Dropout on (training) or off. */
  dropout: boolean;
  dropoutSeed?: number;
  adamw?: AdamWConfig;
  withAccumulator?: boolean;
  /** Extra outputs to expose (names of the task's outputs). */
  expose?: string[];
}

export interface TrainGraph {
  model: Uint8Array;
  params: { name: string; shape: number[] }[];
  /** Output names of the losses and exposed task outputs. */
  outputs: string[];
}

export function isNoDecay(name: string, noDecay: string[]): boolean {
  return noDecay.some((s) => name.includes(s));
}

export function buildTrainGraph(cfg: BertConfig, task: Head, opts: TrainGraphOptions): TrainGraph {
  const g = new Graph(`bert_${task}_${opts.mode}`);
  const params = new Map<string, Value>();
  const shapes: { name: string; shape: number[] }[] = [];
  const param = (name: string, shape: number[]) => {
    let v = params.get(name);
    if (!v) {
      v = g.input(name, "float32", shape);
      params.set(name, v);
      shapes.push({ name, shape });
    }
    return v;
  };
  const tg = buildHead({ g, cfg, param, training: opts.dropout, dropoutSeed: opts.dropoutSeed ?? 42 }, task, opts.dims, true);
  const outputs: string[] = [];
  for (const [name, v] of Object.entries(tg.losses)) {
    g.output(v, name);
    outputs.push(name);
  }
  for (const name of opts.expose ?? []) {
    const v = tg.outputs[name];
    if (!v) throw new Error(`task ${task} has no output ${name}`);
    g.output(v, name);
    outputs.push(name);
  }

  if (opts.mode === "eval") return { model: g.toModel(), params: shapes, outputs };
  const scale = opts.mode === "grads" ? undefined : g.input("loss_scale", "float32", []);
  const grads = gradients(g, tg.losses.loss, [...params.values()], scale);

  if (opts.mode === "grads") {
    for (const [name, v] of params) g.output(grads.get(v)!, `grad.${name}`);
  } else if (opts.mode === "accumulate") {
    for (const [name, v] of params) g.output(g.add(g.input(`acc.${name}`, "float32", v.shape), grads.get(v)!), `acc_out.${name}`);
  } else {
    const total = new Map<string, Value>();
    for (const [name, v] of params) {
      const gr = grads.get(v)!;
      total.set(name, opts.withAccumulator ? g.add(g.input(`acc.${name}`, "float32", v.shape), gr) : gr);
    }
    adamw(g, params, total, opts.adamw ?? DEFAULT_ADAMW);
  }
  // Pruned: ONNX Runtime would run nodes no output needs (autodiff's rules can leave some, see LogSoftmax's).
  return { model: g.toModel({ prune: true }), params: shapes, outputs };
}

/** torch.nn.utils.clip_grad_norm_ followed by torch.optim.AdamW, as HF's Trainer runs them. */
function adamw(g: Graph, params: Map<string, Value>, grads: Map<string, Value>, cfg: AdamWConfig): void {
  const lr = g.input("lr", "float32", []);
  // step_size = lr / (1 - beta1^t), sqrt_bc2 = sqrt(1 - beta2^t): computed per step by the caller.
  const stepSize = g.input("step_size", "float32", []);
  const sqrtBc2 = g.input("sqrt_bc2", "float32", []);

  // Clipping folds into the scalars: with c = min(1, max_norm / (norm + 1e-6)) and g the raw gradient,
  // m' = b1 m + (1-b1) c g,  v' = b2 v + (1-b2) c² g²,  and torch's update
  // p' = p (1 - lr wd) - step_size m' / (sqrt(v') / sqrt_bc2 + eps)
  //    = p (1 - lr wd) - (step_size sqrt_bc2) m' / (sqrt(v') + eps sqrt_bc2):
  // 13 elementwise passes over each parameter (11 without decay), the least ONNX allows.
  let coef: Value = g.scalar(1);
  if (cfg.maxGradNorm > 0) {
    const squares = [...grads.values()].map((gr) => g.reduceSumSquare(gr));
    const sumSq = g.node("Sum", squares, {}, [{ dtype: "float32", shape: [] }])[0];
    const norm = g.sqrt(sumSq);
    g.output(norm, "grad_norm");
    coef = g.min(g.div(g.scalar(cfg.maxGradNorm), g.add(norm, g.scalar(1e-6))), g.scalar(1));
  }
  const decay = g.sub(g.scalar(1), g.mul(lr, g.scalar(cfg.weightDecay)));
  const b1 = g.scalar(cfg.beta1);
  const b2 = g.scalar(cfg.beta2);
  const c1 = g.mul(coef, g.scalar(1 - cfg.beta1));
  const c2 = g.mul(g.mul(coef, coef), g.scalar(1 - cfg.beta2));
  const epsScaled = g.mul(g.scalar(cfg.eps), sqrtBc2);
  const stepScaled = g.neg(g.mul(stepSize, sqrtBc2));
  for (const [name, p] of params) {
    const gr = grads.get(name)!;
    const m = g.input(`m.${name}`, "float32", p.shape);
    const v = g.input(`v.${name}`, "float32", p.shape);
    const m2 = g.add(g.mul(m, b1), g.mul(gr, c1));
    const v2 = g.add(g.mul(v, b2), g.mul(g.mul(gr, gr), c2));
    const decayed = cfg.weightDecay > 0 && !isNoDecay(name, cfg.noDecay) ? g.mul(p, decay) : p;
    const update = g.div(m2, g.add(g.sqrt(v2), epsScaled));
    const p2 = g.add(decayed, g.mul(update, stepScaled));
    g.output(p2, `new.${name}`);
    g.output(m2, `new_m.${name}`);
    g.output(v2, `new_v.${name}`);
  }
}
