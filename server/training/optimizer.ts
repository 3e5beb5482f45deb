// One optimizer step = one ONNX Runtime run of the generated training graph. Parameters and Adam moments
// live in flat Float32Arrays that are both the graph's inputs and its pre-allocated outputs: each step
// updates them in place, so no parameter-sized buffer is allocated per step and no second copy exists.
//
// Updating in place is safe because of the graph's shape: every output `new.<p>` (and `new_m.`, `new_v.`)
// is written by the last node of the AdamW chain of <p>, which depends on the global gradient norm and so
// runs after every forward and backward read of <p>; the only other readers of <p>, m and v are inputs of
// that chain's own nodes. Elementwise kernels read and write the same index, so an aliased input is fine.
// ONNX Runtime never reuses graph-input buffers for intermediates. The accumulation graph adds into its
// accumulator elementwise, likewise.
import * as ort from "onnxruntime-node";
import type { BertConfig } from "../model/config.js";
import type { Dims, Head } from "../model/heads.js";
import { ParamStore } from "../model/params.js";
import { createSession } from "../model/session.js";
import type { Device } from "../../common/settings.js";
import { collectGarbage } from "../util/gc.js";
import { buildTrainGraph, DEFAULT_ADAMW, type AdamWConfig } from "./train-graph.js";

export interface OptimizerOptions {
  task: Head;
  dims: Dims;
  adamw?: AdamWConfig;
  dropout?: boolean;
  dropoutSeed?: number;
  /** Micro-batches per optimizer step (gradient accumulation). */
  accumulationSteps?: number;
  device?: Device;
  threads?: number;
  /** Head outputs to return from each step (e.g. prediction_logits). */
  expose?: string[];
  /** ORT's profiling of the step session, into `<profile>_<date>.json` at endProfiling (bench train --profile). */
  profile?: string;
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
  const asInputs: Record<string, ort.Tensor> = { ...params.feeds(), ...m.feeds("m."), ...v.feeds("v.") };
  const asOutputs: Record<string, ort.Tensor> = {};
  for (const s of params.specs) {
    asOutputs[`new.${s.name}`] = asInputs[s.name];
    asOutputs[`new_m.${s.name}`] = asInputs[`m.${s.name}`];
    asOutputs[`new_v.${s.name}`] = asInputs[`v.${s.name}`];
  }
  return { params, m, v, asInputs, asOutputs };
}

/** Training produced NaN or infinite values (loss, gradient norm, weights): nothing of it is saved. */
export class DivergedError extends Error {}

export interface StepResult {
  /** Scalar outputs (loss, mlm_loss, ..., grad_norm) averaged over micro-batches where it applies. */
  scalars: Record<string, number>;
  /** Exposed task outputs of the last micro-batch. */
  outputs: Record<string, ort.Tensor>;
}

export class Optimizer {
  /** Optimizer steps taken (AdamW's t). */
  t = 0;
  private readonly state: State;
  private readonly acc?: { store: ParamStore; asInputs: Record<string, ort.Tensor>; asOutputs: Record<string, ort.Tensor> };

  private constructor(
    private readonly cfg: BertConfig,
    private readonly opts: OptimizerOptions,
    readonly adamw: AdamWConfig,
    private stepSession: ort.InferenceSession,
    private accumulateSession: ort.InferenceSession | undefined,
    readonly accumulationSteps: number,
    params: ParamStore,
    readonly provider: string,
  ) {
    this.state = makeState(params, params.like(), params.like());
    if (accumulateSession) {
      const store = params.like();
      const asInputs: Record<string, ort.Tensor> = {};
      const asOutputs: Record<string, ort.Tensor> = {};
      for (const s of store.specs) {
        asInputs[`acc.${s.name}`] = new ort.Tensor("float32", store.view(s.name), s.shape);
        asOutputs[`acc_out.${s.name}`] = asInputs[`acc.${s.name}`];
      }
      this.acc = { store, asInputs, asOutputs };
    }
  }

  /**
   * Builds the training graph(s) for `cfg` and starts the sessions. The optimizer trains `params` in
   * place when its layout is the graph's (stores from `paramShapes` are); otherwise it works on a copy.
   */
  static async create(cfg: BertConfig, params: ParamStore, opts: OptimizerOptions): Promise<Optimizer> {
    const k = opts.accumulationSteps ?? 1;
    if (!Number.isInteger(k) || k < 1) throw new Error(`gradient accumulation steps must be a positive integer, got ${k}`);
    const { step, accumulate, provider, layout } = await Optimizer.sessions(cfg, opts, opts.dropoutSeed);
    for (const p of layout) {
      const have = params.byName.get(p.name);
      if (!have || have.shape.join() !== p.shape.join()) throw new Error(`parameter ${p.name} [${p.shape}] is not in the given parameters`);
    }
    const sameLayout = layout.length === params.specs.length && layout.every((p, i) => p.name === params.specs[i].name);
    let store = params;
    if (!sameLayout) {
      store = ParamStore.fromShapes(layout);
      for (const s of store.specs) store.view(s.name).set(params.view(s.name));
    }
    return new Optimizer(cfg, opts, opts.adamw ?? DEFAULT_ADAMW, step, accumulate, k, store, provider);
  }

  private static async sessions(cfg: BertConfig, opts: OptimizerOptions, dropoutSeed: number | undefined) {
    const k = opts.accumulationSteps ?? 1;
    const common = { dims: opts.dims, dropout: opts.dropout ?? true, dropoutSeed, adamw: opts.adamw ?? DEFAULT_ADAMW, expose: opts.expose };
    const graph = buildTrainGraph(cfg, opts.task, { ...common, mode: "step", withAccumulator: k > 1 });
    const sessionCfg = { device: opts.device, threads: opts.threads };
    const { session, provider } = await createSession(graph.model, { ...sessionCfg, profile: opts.profile });
    let accumulate: ort.InferenceSession | undefined;
    // The accumulation graph draws its own dropout streams (another base seed), not copies of the step graph's.
    const accumulateSeed = (dropoutSeed ?? 42) + 0x10000;
    if (k > 1) accumulate = (await createSession(buildTrainGraph(cfg, opts.task, { ...common, dropoutSeed: accumulateSeed, mode: "accumulate" }).model, sessionCfg)).session;
    return { step: session, accumulate, provider, layout: graph.params };
  }

  /**
   * Restarts the sessions with dropout seeded by `seed`. Dropout's masks come from RandomUniformLike nodes
   * (seeded per node from `seed`) whose generators live in the session, so their state cannot be saved; a
   * trainer that reseeds at every checkpoint
   * (seed derived from the step) makes a run resumed from a checkpoint draw the same masks as the
   * uninterrupted run.
   */
  async reseed(seed: number): Promise<void> {
    const { step, accumulate } = await Optimizer.sessions(this.cfg, this.opts, seed);
    await this.release();
    this.stepSession = step;
    this.accumulateSession = accumulate;
  }

  get params(): ParamStore {
    return this.state.params;
  }
  get m(): ParamStore {
    return this.state.m;
  }
  get v(): ParamStore {
    return this.state.v;
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
    const add = (r: Record<string, ort.Tensor>) => {
      for (const [name, t] of Object.entries(r)) {
        if (t.dims.length > 0) continue;
        if (name === "grad_norm") scalars.grad_norm = Number(t.data[0]);
        else scalars[name] = (scalars[name] ?? 0) + Number(t.data[0]) / k;
      }
    };
    if (this.acc) this.acc.store.data.fill(0);
    for (let i = 0; i < k - 1; i++) {
      add(await this.run(this.accumulateSession!, { ...microBatches[i], ...this.state.asInputs, ...this.acc!.asInputs, loss_scale: scale }, this.acc!.asOutputs));
    }
    this.t += 1;
    const { beta1, beta2 } = this.adamw;
    const f32 = (x: number) => new ort.Tensor("float32", Float32Array.of(x), []);
    const feeds: Record<string, ort.Tensor> = {
      ...microBatches[k - 1],
      ...this.state.asInputs,
      ...(this.acc ? this.acc.asInputs : {}),
      loss_scale: scale,
      lr: f32(lr),
      step_size: f32(lr / (1 - beta1 ** this.t)),
      sqrt_bc2: f32(Math.sqrt(1 - beta2 ** this.t)),
    };
    const outputs = await this.run(this.stepSession, feeds, this.state.asOutputs);
    add(outputs);
    // The weights were updated in place with this step's gradients: the trainer must stop without saving.
    const bad = Object.entries(scalars).find(([, x]) => !Number.isFinite(x));
    if (bad) {
      throw new DivergedError(
        `training diverged at step ${this.t}: ${bad[0]} is ${bad[1]} at learning rate ${lr.toPrecision(3)}. ` +
          "Nothing from this step on was saved (the last checkpoint is kept). Try a lower learning rate (a tenth) or a longer warmup, then start again or resume",
      );
    }
    for (const [name, t] of Object.entries(outputs)) if (t.dims.length === 0) delete outputs[name];
    return { scalars, outputs };
  }

  /**
   * One session run that writes `inPlace` outputs into their tensors and returns the other outputs.
   * onnxruntime-node fills pre-allocated outputs but also returns a fresh copy of each (and names the
   * results by position, so all outputs are always fetched, in order): those parameter-sized copies are
   * dropped here and collected at once, so peak memory holds one of them, not many.
   */
  private async run(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, inPlace: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
    const kept = await (async () => {
      const fetches: Record<string, ort.Tensor | null> = {};
      for (const name of session.outputNames) fetches[name] = inPlace[name] ?? null;
      const r = await session.run(feeds, fetches);
      return Object.fromEntries(session.outputNames.filter((n) => !(n in inPlace)).map((n) => [n, r[n]]));
    })();
    collectGarbage();
    return kept;
  }

  /** Writes the step session's profile (OptimizerOptions.profile). */
  async endProfiling(): Promise<void> {
    await this.stepSession.endProfiling();
  }

  async release(): Promise<void> {
    await this.stepSession.release();
    await this.accumulateSession?.release();
  }
}
