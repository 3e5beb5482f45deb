// The training loop, one for pretraining and fine-tuning: optimizer steps over micro-batches (gradient
// accumulation), the learning-rate schedule, running averages between log rows, evaluation and log
// cadence, ETA, checkpoint cadence with dropout reseeding, and cancel. What differs between the two is
// supplied by the trainer as a TrainingTask: its batches, its metrics, its evaluation, its checkpoint.
// Non-finite losses and gradient norms stop the run in Optimizer.step (DivergedError), before a row or a
// checkpoint of them can be written.
import type * as ort from "onnxruntime-node";
import type { Optimizer, StepResult } from "./optimizer.js";
import type { Metrics, MetricsLog } from "./run-folder.js";

/** What the callers of a trainer (the CLI, the editor's job process, tests) choose besides the run itself. */
export interface TrainerHooks {
  /** A metrics row every this many steps; default the trainer's (common/settings.ts). */
  logEvery?: number;
  /** ONNX Runtime intra-op threads; default: one per core (the editor's job process leaves one core free). */
  threads?: number;
  /** Stops the run after the current step, with a checkpoint. */
  signal?: AbortSignal;
  /** Every metrics row as it is written to metrics.jsonl. */
  onRow?: (row: Metrics) => void;
  onMessage?: (m: string) => void;
}

/** What a trainer supplies to the loop. */
export interface TrainingTask {
  /** The next micro-batch of training feeds (its position is part of the trainer's state). */
  nextMicroBatch(): Record<string, ort.Tensor>;
  /** Adds a step's results (and its last micro-batch's feeds) to the trainer's running metrics. */
  accumulate(result: StepResult, lastMicroBatch: Record<string, ort.Tensor>): void;
  /** The running metrics since the last row (besides loss, lr and tokens/s), then starts them afresh. */
  takeMetrics(): Record<string, number>;
  /** Epochs done, as a fraction. */
  epoch(): number;
  /** Held-out metrics (`eval_*`); {} when there is nothing to evaluate. */
  evaluate(): Promise<Record<string, number>>;
  /** Writes a checkpoint of the current state (step included). */
  checkpoint(): Promise<void>;
  /** After each row is written (fine-tuning keeps its best checkpoint here). */
  afterRow?(row: Metrics): Promise<void>;
}

export interface LoopOptions {
  /** Steps the run ends at (the state's step counts from 0 or from a resumed checkpoint). */
  steps: number;
  /** Micro-batches per optimizer step. */
  accumulationSteps: number;
  logEvery: number;
  evalEvery: number;
  checkpointEvery: number;
  /** Learning rate at step s (0-based). */
  schedule: (step: number) => number;
  /** Dropout is reseeded with seed + step at every checkpoint, so that a run resumed there draws the same masks. */
  seed: number;
  signal?: AbortSignal;
  /** Every row as it is written to metrics.jsonl. */
  onRow?: (row: Metrics) => void;
  onProgress?: (p: LoopProgress) => void;
}

export interface LoopProgress {
  step: number;
  steps: number;
  row: Metrics;
  eta_s: number;
  /** Whether the row holds evaluation metrics. */
  evaluated: boolean;
}

export interface LoopResult {
  metrics: Metrics[];
  stopped: boolean;
  step: number;
}

/** Runs the steps from `state.step` to `o.steps`, then writes a final checkpoint (also when stopped). */
export async function trainLoop(opt: Optimizer, task: TrainingTask, state: { step: number }, log: MetricsLog, o: LoopOptions): Promise<LoopResult> {
  const k = o.accumulationSteps;
  const metrics: Metrics[] = [];
  const window = { loss: 0, n: 0, tokens: 0, start: Date.now() };
  const runStart = Date.now();
  const startStep = state.step;
  let stopped = false;
  while (state.step < o.steps) {
    if (o.signal?.aborted) {
      stopped = true;
      break;
    }
    const micro = Array.from({ length: k }, () => task.nextMicroBatch());
    const r = await opt.step(micro, o.schedule(state.step));
    state.step++;
    task.accumulate(r, micro[k - 1]);
    window.loss += r.scalars.loss;
    window.n++;
    window.tokens += micro.reduce((n, f) => n + f.input_ids.data.length, 0);
    const last = state.step === o.steps;
    const evalNow = state.step % o.evalEvery === 0 || last;
    if (state.step % o.logEvery === 0 || evalNow) {
      const row: Metrics = {
        step: state.step,
        loss: window.loss / window.n,
        ...task.takeMetrics(),
        lr: o.schedule(state.step - 1),
        tokens_per_s: window.tokens / ((Date.now() - window.start) / 1000),
        epoch: task.epoch(),
      };
      if (evalNow) Object.assign(row, await task.evaluate());
      metrics.push(row);
      await log.write(row);
      o.onRow?.(row);
      await task.afterRow?.(row);
      const perStep = (Date.now() - runStart) / 1000 / (state.step - startStep);
      o.onProgress?.({ step: state.step, steps: o.steps, row, eta_s: perStep * (o.steps - state.step), evaluated: evalNow });
      Object.assign(window, { loss: 0, n: 0, tokens: 0, start: Date.now() });
    }
    if (state.step % o.checkpointEvery === 0 && state.step < o.steps) {
      await task.checkpoint();
      await opt.reseed(o.seed + state.step);
    }
  }
  await task.checkpoint();
  return { metrics, stopped, step: state.step };
}
