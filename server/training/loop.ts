// The training loop, one for pretraining and fine-tuning: optimizer steps over micro-batches (gradient
// accumulation), the learning-rate schedule, running averages between log rows, evaluation and log
// cadence, ETA, checkpoint cadence with dropout reseeding, and cancel. What differs between the two is
// supplied by the trainer as a TrainingTask: its batches, its metrics, its evaluation, its checkpoint.
// Non-finite losses and gradient norms stop the run in Optimizer.step (DivergedError), before a row or a
// checkpoint of them can be written. However a run ends (done, stopped, failed, diverged), the loop writes
// it to the run's outcome.json: both trainers end here.
import type * as ort from "onnxruntime-node";
import type { FinetuneScore, RunOutcome } from "../../common/protocol.js";
import { DivergedError, type Optimizer, type StepResult } from "./optimizer.js";
import { writeOutcome, type Metrics, type MetricsLog } from "./run-folder.js";

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
  /** The run's score so far, for outcome.json (fine-tuning: its best checkpoint's). */
  score?(): FinetuneScore | undefined;
}

export interface LoopOptions {
  /** Steps the run ends at (the state's step counts from 0 or from a resumed checkpoint); ignored with `seconds`. */
  steps: number;
  /**
   * A budget instead of steps: train for this many seconds of the loop's time (the state's `seconds` count
   * those already spent, for a resumed run). The schedule then runs on elapsed time (its `progress`), as
   * academic-budget BERT's time-based schedule does; evaluations and checkpoints come every tenth of the
   * budget; the run stops when the next step and the final evaluation and checkpoint would pass the budget.
   */
  seconds?: number;
  /** Micro-batches per optimizer step. */
  accumulationSteps: number;
  logEvery: number;
  evalEvery: number;
  checkpointEvery: number;
  /** Learning rate at step s (0-based); `progress` is the fraction of the run done (steps, or the budget's time). */
  schedule: (step: number, progress: number) => number;
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

/** The part of a trainer's state the loop keeps: the step, and the loop's seconds so far (for a budget). */
export interface LoopState {
  step: number;
  seconds?: number;
}

/**
 * Runs the steps from `state.step` to `o.steps` (or until `o.seconds` are spent), then writes a final
 * checkpoint (also when stopped), and how the run ended into the run folder's outcome.json (also when it
 * failed or diverged: then with the error's message, the step reached and the score so far).
 */
export async function trainLoop(opt: Optimizer, task: TrainingTask, state: LoopState, log: MetricsLog, o: LoopOptions): Promise<LoopResult> {
  const outcome = (end: Pick<RunOutcome, "state" | "step" | "message">): RunOutcome => ({ ...end, steps: o.seconds ? undefined : o.steps, score: task.score?.(), ended: new Date().toISOString() });
  let r: LoopResult;
  try {
    r = await runSteps(opt, task, state, log, o);
  } catch (e) {
    const end = { state: e instanceof DivergedError ? "diverged" : "failed", step: state.step, message: e instanceof Error ? e.message : String(e) } as const;
    await writeOutcome(log.dir, outcome(end)).catch(() => undefined); // the run's own error is the one to report
    throw e;
  }
  await writeOutcome(log.dir, outcome({ state: r.stopped ? "stopped" : "done", step: r.step }));
  return r;
}

async function runSteps(opt: Optimizer, task: TrainingTask, state: LoopState, log: MetricsLog, o: LoopOptions): Promise<LoopResult> {
  const k = o.accumulationSteps;
  const metrics: Metrics[] = [];
  const window = { loss: 0, n: 0, tokens: 0, start: Date.now() };
  const runStart = Date.now();
  const startStep = state.step;
  const spentBefore = state.seconds ?? 0;
  const clock = () => spentBefore + (Date.now() - runStart) / 1000;
  const budget = o.seconds;
  const progress = () => (budget ? Math.min(1, clock() / budget) : state.step / o.steps);
  // With a budget: the tenth of it reached at the last evaluation and checkpoint, and what they cost.
  const tenth = () => (budget ? Math.floor((10 * clock()) / budget) : 0);
  let evalTenth = tenth();
  let checkpointTenth = evalTenth;
  const cost = { evaluation: 0, checkpoint: 0 }; // the longest of each so far: the end must leave room for both
  let lastStep = 0;
  let lr = 0;
  let stopped = false;
  for (let last = false; !last; ) {
    if (!budget && state.step >= o.steps) break;
    if (o.signal?.aborted) {
      stopped = true;
      break;
    }
    const stepStart = Date.now();
    const micro = Array.from({ length: k }, () => task.nextMicroBatch());
    lr = o.schedule(state.step, progress());
    const r = await opt.step(micro, lr);
    state.step++;
    lastStep = (Date.now() - stepStart) / 1000;
    task.accumulate(r, micro[k - 1]);
    window.loss += r.scalars.loss;
    window.n++;
    window.tokens += micro.reduce((n, f) => n + f.input_ids.data.length, 0);
    last = budget ? clock() + lastStep + cost.evaluation + cost.checkpoint >= budget : state.step === o.steps;
    const evalNow = last || (budget ? tenth() > evalTenth : state.step % o.evalEvery === 0);
    if (state.step % o.logEvery === 0 || evalNow) {
      const evalStart = Date.now();
      const row: Metrics = {
        step: state.step,
        loss: window.loss / window.n,
        ...task.takeMetrics(),
        lr,
        tokens_per_s: window.tokens / ((Date.now() - window.start) / 1000),
        epoch: task.epoch(),
      };
      if (evalNow) {
        Object.assign(row, await task.evaluate());
        evalTenth = tenth();
      }
      metrics.push(row);
      await log.write(row);
      o.onRow?.(row);
      await task.afterRow?.(row);
      if (evalNow) cost.evaluation = Math.max(cost.evaluation, (Date.now() - evalStart) / 1000);
      const perStep = (Date.now() - runStart) / 1000 / (state.step - startStep);
      const left = budget ? Math.max(0, budget - clock()) : perStep * (o.steps - state.step);
      o.onProgress?.({ step: state.step, steps: budget ? state.step + Math.round(left / perStep) : o.steps, row, eta_s: left, evaluated: evalNow });
      Object.assign(window, { loss: 0, n: 0, tokens: 0, start: Date.now() });
    }
    const checkpointNow = !last && (budget ? tenth() > checkpointTenth : state.step % o.checkpointEvery === 0);
    if (checkpointNow) {
      const t = Date.now();
      state.seconds = clock();
      await task.checkpoint();
      await opt.reseed(o.seed + state.step);
      checkpointTenth = tenth();
      cost.checkpoint = Math.max(cost.checkpoint, (Date.now() - t) / 1000);
    }
  }
  state.seconds = clock();
  await task.checkpoint();
  return { metrics, stopped, step: state.step };
}
