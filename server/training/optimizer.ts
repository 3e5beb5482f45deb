// One optimizer step = one ONNX Runtime run of the generated training graph. Parameters and Adam moments
// live in flat Float32Arrays, double-buffered: each step reads one set and writes the other through
// pre-allocated output tensors, so no parameter-sized buffer is allocated per step.
import * as ort from "onnxruntime-node";
import type { BertConfig } from "../model/config.js";
import type { Dims, Task } from "../model/heads.js";
import { ParamStore } from "../model/params.js";
import { createSession, type Device } from "../model/session.js";
import { buildTrainGraph, DEFAULT_ADAMW, type AdamWConfig } from "./train-graph.js";

export interface OptimizerOptions {
  task: Task;
  dims: Dims;
  adamw?: AdamWConfig;
  dropout?: boolean;
  dropoutSeed?: number;
  /** Micro-batches per optimizer step (gradient accumulation). */
  accumulationSteps?: number;
  device?: Device;
  threads?: number;
  /** Task outputs to return from each step (e.g. prediction_logits). */
  expose?: string[];
}

/** Parameters, first and second Adam moments: one buffer set. */
interface State {
  params: ParamStore;
  m: ParamStore;
  v: ParamStore;
  asInputs: Record<string, ort.Tensor>;
  asOutputs: Record<string, ort.Tensor>;
}

function makeState(params: ParamStore, m: ParamStore, v: ParamStore): State {
  const asInputs: Record<string, ort.Tensor> = {};
  const asOutputs: Record<string, ort.Tensor> = {};
  for (const s of params.specs) {
    asInputs[s.name] = new ort.Tensor("float32", params.view(s.name), s.shape);
    asInputs[`m.${s.name}`] = new ort.Tensor("float32", m.view(s.name), s.shape);
    asInputs[`v.${s.name}`] = new ort.Tensor("float32", v.view(s.name), s.shape);
    asOutputs[`new.${s.name}`] = asInputs[s.name];
    asOutputs[`new_m.${s.name}`] = asInputs[`m.${s.name}`];
    asOutputs[`new_v.${s.name}`] = asInputs[`v.${s.name}`];
  }
  return { params, m, v, asInputs, asOutputs };
}

export interface StepResult {
  /** Scalar outputs (loss, mlm_loss, ..., grad_norm) averaged over micro-batches where it applies. */
  scalars: Record<string, number>;
  /** Exposed task outputs of the last micro-batch. */
  outputs: Record<string, ort.Tensor>;
}

export class Optimizer {
  /** Optimizer steps taken (AdamW's t). */
  t = 0;
  private cur: State;
  private next: State;
  private accCur?: { store: ParamStore; asInputs: Record<string, ort.Tensor>; asOutputs: Record<string, ort.Tensor> };
  private accNext?: { store: ParamStore; asInputs: Record<string, ort.Tensor>; asOutputs: Record<string, ort.Tensor> };

  private constructor(
    readonly adamw: AdamWConfig,
    private readonly stepSession: ort.InferenceSession,
    private readonly accumulateSession: ort.InferenceSession | undefined,
    readonly accumulationSteps: number,
    private readonly outputNames: string[],
    params: ParamStore,
    readonly provider: string,
  ) {
    this.cur = makeState(params, params.like(), params.like());
    this.next = makeState(params.like(), params.like(), params.like());
    if (accumulateSession) {
      const acc = () => {
        const store = params.like();
        const asInputs: Record<string, ort.Tensor> = {};
        const asOutputs: Record<string, ort.Tensor> = {};
        for (const s of store.specs) {
          asInputs[`acc.${s.name}`] = new ort.Tensor("float32", store.view(s.name), s.shape);
          asOutputs[`acc_out.${s.name}`] = asInputs[`acc.${s.name}`];
        }
        return { store, asInputs, asOutputs };
      };
      this.accCur = acc();
      this.accNext = acc();
    }
  }

  /** Builds the training graph(s) for `cfg` and starts the sessions; `params` is copied in. */
  static async create(cfg: BertConfig, params: ParamStore, opts: OptimizerOptions): Promise<Optimizer> {
    const adamw = opts.adamw ?? DEFAULT_ADAMW;
    const k = opts.accumulationSteps ?? 1;
    if (!Number.isInteger(k) || k < 1) throw new Error(`gradient accumulation steps must be a positive integer, got ${k}`);
    const common = { dims: opts.dims, dropout: opts.dropout ?? true, dropoutSeed: opts.dropoutSeed, adamw, expose: opts.expose };
    const step = buildTrainGraph(cfg, opts.task, { ...common, mode: "step", withAccumulator: k > 1 });
    for (const p of step.params) {
      const have = params.byName.get(p.name);
      if (!have || have.shape.join() !== p.shape.join()) throw new Error(`parameter ${p.name} [${p.shape}] is not in the given parameters`);
    }
    const sessionCfg = { device: opts.device, threads: opts.threads };
    const { session, provider } = await createSession(step.model, sessionCfg);
    let accumulate: ort.InferenceSession | undefined;
    if (k > 1) {
      const acc = buildTrainGraph(cfg, opts.task, { ...common, mode: "accumulate" });
      accumulate = (await createSession(acc.model, sessionCfg)).session;
    }
    // The graph's parameter order is the store's layout.
    const ordered = ParamStore.fromShapes(step.params);
    for (const s of ordered.specs) ordered.view(s.name).set(params.view(s.name));
    return new Optimizer(adamw, session, accumulate, k, step.outputs, ordered, provider);
  }

  get params(): ParamStore {
    return this.cur.params;
  }
  get m(): ParamStore {
    return this.cur.m;
  }
  get v(): ParamStore {
    return this.cur.v;
  }

  /**
   * One optimizer step over `microBatches` (as many as accumulationSteps) at learning rate `lr`.
   * Each micro-batch's loss is scaled by 1/k, as HF's Trainer does.
   */
  async step(microBatches: Record<string, ort.Tensor>[], lr: number): Promise<StepResult> {
    const k = this.accumulationSteps;
    if (microBatches.length !== k) throw new Error(`expected ${k} micro-batches, got ${microBatches.length}`);
    const scale = new ort.Tensor("float32", Float32Array.of(1 / k), []);
    const scalars: Record<string, number> = {};
    const add = (r: ort.InferenceSession.OnnxValueMapType) => {
      for (const [name, t] of Object.entries(r)) {
        if (t.dims.length === 0 && !name.startsWith("new") && name !== "grad_norm") scalars[name] = (scalars[name] ?? 0) + Number(t.data[0]) / k;
      }
    };
    if (k > 1) for (const s of this.accCur!.store.specs) this.accCur!.store.view(s.name).fill(0);
    for (let i = 0; i < k - 1; i++) {
      const r = await this.accumulateSession!.run(
        { ...microBatches[i], ...this.cur.asInputs, ...this.accCur!.asInputs, loss_scale: scale },
        { ...nulls(this.outputNames), ...this.accNext!.asOutputs },
      );
      add(r);
      [this.accCur, this.accNext] = [this.accNext, this.accCur];
    }
    this.t += 1;
    const { beta1, beta2 } = this.adamw;
    const f32 = (x: number) => new ort.Tensor("float32", Float32Array.of(x), []);
    const feeds: Record<string, ort.Tensor> = {
      ...microBatches[k - 1],
      ...this.cur.asInputs,
      ...(k > 1 ? this.accCur!.asInputs : {}),
      loss_scale: scale,
      lr: f32(lr),
      step_size: f32(lr / (1 - beta1 ** this.t)),
      sqrt_bc2: f32(Math.sqrt(1 - beta2 ** this.t)),
    };
    const fetches: Record<string, ort.Tensor | null> = { ...nulls(this.outputNames), ...this.next.asOutputs };
    if (this.adamw.maxGradNorm > 0) fetches.grad_norm = null;
    const r = await this.stepSession.run(feeds, fetches);
    add(r);
    if (r.grad_norm) scalars.grad_norm = Number(r.grad_norm.data[0]);
    [this.cur, this.next] = [this.next, this.cur];
    const outputs: Record<string, ort.Tensor> = {};
    for (const name of this.outputNames) if (r[name].dims.length > 0) outputs[name] = r[name];
    return { scalars, outputs };
  }

  async release(): Promise<void> {
    await this.stepSession.release();
    await this.accumulateSession?.release();
  }
}

function nulls(names: string[]): Record<string, null> {
  return Object.fromEntries(names.map((n) => [n, null]));
}
