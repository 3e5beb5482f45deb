// Fine-tuning on a labelled file: the encoder from a pretrained run or an HF folder (tensors matched by
// name, with a report), a new task head, trained by the shared loop (training/loop.ts: schedule, warmup,
// accumulation, checkpoints, exact resume, cancel, metrics.jsonl + TensorBoard) with this file's batches,
// evaluation each epoch or every N steps, and the best checkpoint by the task's main metric kept in RUN/best.
// Without an eval file a seeded share of the training file is held out to evaluate on, so that a run reports
// a score (with the majority-class baseline to read it against).
import { promises as fs } from "node:fs";
import type { FinetuneParams, FinetuneScore, FinetuneTask, TableColumns } from "../../common/protocol.js";
import { finetuneDefaults } from "../../common/settings.js";
import * as path from "node:path";
import type { BertConfig } from "../model/config.js";
import { loadWeights, openModelFolder } from "../model/folder.js";
import { architectureOf } from "../model/heads.js";
import { initParams, ParamStore, paramShapes, type LoadReport } from "../model/params.js";
import { createSession } from "../model/session.js";
import { forwardFeatures, labelsOfConfig, type TaskSettings } from "./task-config.js";
import { defaultDocStride } from "./qa.js";
import { DataError } from "./readers.js";
import { TASK_SPECS, collateFeatures, type Feature, type TaskSpec } from "./tasks.js";
import { Rng } from "../util/rng.js";
import { Optimizer } from "../training/optimizer.js";
import { trainLoop, type TrainerHooks, type TrainingTask } from "../training/loop.js";
import { hasRun, loadCheckpoint, MetricsLog, saveCheckpoint, saveModel, withRunLock, type Metrics } from "../training/run-folder.js";
import { getScheduler } from "../training/schedules.js";
import { BertTokenizer } from "../text/tokenizer.js";
import { buildTrainGraph, type AdamWConfig } from "../training/train-graph.js";

/** The protocol's FinetuneParams (the task detected) plus what only the engine's callers choose. */
export interface FinetuneOptions extends Omit<FinetuneParams, "task" | "replace">, TrainerHooks {
  task: FinetuneTask;
  /** Also write the starting weights (loaded encoder + new head) and the example order here, for side-by-side comparisons. */
  saveInit?: string;
  onProgress?: (p: { step: number; steps: number; loss: number; eta_s: number; metrics?: Record<string, number> }) => void;
}

export class FinetuneError extends Error {}

interface State {
  step: number;
  epoch: number;
  batchInEpoch: number;
  seed: number;
  /** The share of the training file held out (0: none); a resumed run holds out the same examples. */
  evalSplit?: number;
  best?: { step: number; metric: string; value: number };
  /** How the run trains (written at every checkpoint; runs from before it have none). */
  recipe?: FinetuneRecipe;
}

/**
 * What a fine-tuning run trains with, as resolved from its options and defaults: recorded in
 * trainer_state.json at every checkpoint, so that a hand-over to another trainer (an export --format
 * trainer) continues it with the same examples, optimizer and schedule. The task, labels and max length
 * are in config.json.
 */
export interface FinetuneRecipe {
  /** The labelled file (absolute), its evaluation file if one was given, and how its columns were read. */
  train: string;
  eval?: string;
  columns?: TableColumns;
  batch: number;
  accumulationSteps: number;
  lr: number;
  schedule: string;
  warmupSteps: number;
  steps: number;
  adamw: AdamWConfig;
  logEvery: number;
  evalEvery: number;
  checkpointEvery: number;
}

/** What a fine-tuning run returns. */
export interface FinetuneResult {
  metrics: Metrics[];
  stopped: boolean;
  step: number;
  best?: State["best"];
  /** The best checkpoint's score on the evaluation examples; absent without any (evalSplit 0) or before the first evaluation. */
  score?: FinetuneScore;
}

/** The order of the features in an epoch: a seeded shuffle, so that a resumed run sees the same batches. */
function epochOrder(seed: number, epoch: number, n: number): number[] {
  return new Rng(seed * 1000003 + epoch).shuffle(Array.from({ length: n }, (_, i) => i));
}

/**
 * A seeded share of the examples held out for evaluation, in whole groups (`key`: a QA example id, whose
 * windows are made after the split, so they stay together), at least one group held out and one kept; both
 * parts in file order. Undefined when `share` is 0 or there are fewer than 2 groups.
 */
export function holdOut<E>(examples: E[], share: number, seed: number, key: (e: E, i: number) => string): { kept: E[]; held: E[] } | undefined {
  const groups = new Map<string, number[]>();
  examples.forEach((e, i) => {
    const k = key(e, i);
    (groups.get(k) ?? groups.set(k, []).get(k)!).push(i);
  });
  if (!(share > 0) || groups.size < 2) return undefined;
  const n = Math.min(groups.size - 1, Math.max(1, Math.round(groups.size * share)));
  const held = new Set(new Rng(seed * 1000003 - 1).shuffle([...groups.values()]).slice(0, n).flat()); // epochOrder's seeds are seed * 1000003 + epoch
  return { kept: examples.filter((_, i) => !held.has(i)), held: examples.filter((_, i) => held.has(i)) };
}

/**
 * classify, pair, choice: the main metric on `evalExamples` of always answering the training examples' most
 * frequent label (choice: correct ending), scored by the task's own rule; the first such label on a tie.
 */
export function majorityBaseline(task: FinetuneTask, train: unknown[], evalExamples: unknown[], labels: string[]): number | undefined {
  if (task !== "classify" && task !== "pair" && task !== "choice") return undefined;
  const counts = new Map<string | number, number>();
  for (const { label } of train as { label?: string | number }[]) if (label !== undefined) counts.set(label, (counts.get(label) ?? 0) + 1);
  let majority: string | number | undefined;
  for (const [label, n] of counts) if (majority === undefined || n > counts.get(majority)!) majority = label;
  if (majority === undefined) return undefined;
  const spec: TaskSpec<unknown> = TASK_SPECS[task];
  const value = spec.score(evalExamples, evalExamples.map(() => ({ label: majority })), labels)[spec.mainMetric];
  return typeof value === "number" ? value : undefined;
}

/** A share as the log says it: 10%, 12.5%. */
const percent = (f: number) => `${Number((f * 100).toFixed(1))}%`;

/** Where the encoder comes from: which tensors were loaded, which are new, which were not used. */
export function describeLoad(report: LoadReport, source: string): string {
  const list = (xs: string[]) => (xs.length <= 6 ? xs.join(", ") : `${xs.slice(0, 5).join(", ")} and ${xs.length - 5} more`);
  return [
    `loaded ${report.loaded.length} tensors from ${source}`,
    report.missing.length ? `new (initialised): ${list(report.missing)}` : "nothing new",
    report.unexpected.length ? `not used: ${list(report.unexpected)}` : "",
  ]
    .filter(Boolean)
    .join("; ");
}

/** Fine-tunes into `o.out`, holding its lock (a second process training into it is refused). */
export function finetune(o: FinetuneOptions): Promise<FinetuneResult> {
  return withRunLock(o.out, "finetune", o.onMessage ?? (() => undefined), () => train(o));
}

async function train(options: FinetuneOptions): Promise<FinetuneResult> {
  const o = { ...options, seed: options.seed ?? finetuneDefaults.seed, logEvery: options.logEvery ?? finetuneDefaults.logEvery };
  const say = o.onMessage ?? (() => undefined);
  const spec = TASK_SPECS[o.task];
  let bad = 0;
  const onBadRow = (m: string) => {
    if (++bad <= 10) say(m);
    else if (bad === 11) say("(further bad rows are not shown)");
  };
  const evalSplitAsked = o.evalSplit ?? finetuneDefaults.evalSplit;
  if (!(evalSplitAsked >= 0 && evalSplitAsked < 1)) throw new FinetuneError(`the eval split must be in [0, 1), got ${evalSplitAsked}`);
  const runExists = await hasRun(o.out);
  if (runExists && !o.resume) throw new FinetuneError(`${o.out} already holds a training run: pass --resume to continue it, or choose another --out`);
  const resuming = o.resume && runExists;
  const source = resuming ? o.out : o.model;
  const tok = await BertTokenizer.fromDir(source);

  const labelled = await spec.read(o.train, { labelled: true, columns: o.columns, onBadRow });
  let train = labelled;
  if (train.length === 0) throw new DataError(`${o.train}: no labelled examples${bad ? ` (${bad} bad rows)` : ""}`);
  if (bad > train.length) {
    throw new DataError(`${o.train}: ${bad} of ${bad + train.length} rows are not in ${o.task}'s layout (see the first ones above); is it a labelled file? Fix the file or choose its columns`);
  }
  let evalExamples = o.eval ? await spec.read(o.eval, { labelled: true, columns: o.columns, onBadRow }) : [];
  if (o.eval && evalExamples.length === 0) throw new DataError(`${o.eval}: no labelled examples`);

  let cfg: BertConfig;
  let params: ParamStore;
  // An eval file is the evaluation set; without one, a share of the training file is.
  let state: State = { step: 0, epoch: 0, batchInEpoch: 0, seed: o.seed, evalSplit: o.eval ? 0 : evalSplitAsked };
  let moments: { m: ParamStore; v: ParamStore } | undefined;
  if (resuming) {
    try {
      const c = await loadCheckpoint<State>(o.out, spec.head, tok);
      ({ cfg, params, state } = c);
      moments = c;
    } catch (e) {
      throw new FinetuneError(`cannot resume from ${o.out}: ${(e as Error).message}. The checkpoint was left as it is.`);
    }
    say(`resuming at step ${state.step}`);
    // A run from before held-out splits trained on every example: holding some out now would score seen ones.
    state.evalSplit ??= 0;
    if (o.evalSplit !== undefined && o.evalSplit !== state.evalSplit) say(`the resumed run keeps its held-out share (${percent(state.evalSplit)}); --eval-split ${o.evalSplit} is not used`);
  } else {
    const { cfg: base } = await openModelFolder(o.model, tok);
    const labels = spec.labelsOf(train);
    if (o.task !== "qa" && labels.length < 2) throw new DataError(`${o.train}: training needs at least 2 labels, found ${labels.length} (${labels.join(", ")})`);
    if ((o.task === "classify" || o.task === "pair") && labels.length > Math.max(50, train.length / 2)) {
      throw new DataError(`${o.train}: ${labels.length} distinct labels in ${train.length} rows, so the label column holds text, not classes (first: ${labels.slice(0, 3).map((l) => JSON.stringify(l.slice(0, 40))).join(", ")}); choose the columns with --text-column and --label-column`);
    }
    const settings: TaskSettings = { max_length: o.maxLength, ...(o.task === "qa" ? { doc_stride: o.docStride ?? defaultDocStride(o.maxLength) } : {}) };
    cfg = {
      ...base,
      ...fineTuningDropout(base),
      architectures: [architectureOf(spec.head)],
      id2label: labels.length ? Object.fromEntries(labels.map((l, i) => [i, l])) : undefined,
      extra: { ...base.extra, finetuning_task: o.task, bert_studio: settings },
    };
    params = ParamStore.fromShapes(paramShapes(cfg, spec.head));
    initParams(params, cfg, o.seed);
    const { report } = await loadWeights(o.model, params, { allowMissing: () => true }); // the head is new; the report says what else is
    if (report.loaded.length === 0) throw new FinetuneError(`${path.join(o.model, "model.safetensors")}: no tensor matches the model (is it a BERT checkpoint?)`);
    say(describeLoad(report, o.model));
  }
  const share = state.evalSplit ?? 0;
  const split = holdOut(labelled, share, state.seed, (e, i) => (o.task === "qa" ? (e as { id: string }).id : String(i)));
  if (split) {
    train = split.kept;
    if (!o.eval) {
      evalExamples = split.held;
      say(`held out ${percent(share)} of ${path.basename(o.train)} for evaluation (${split.held.length} of ${labelled.length} examples, seed ${state.seed}; pass an eval file to choose them)`);
    }
  } else if (!o.eval && share > 0) {
    const why = labelled.length < 2 ? `has only ${labelled.length} example` : `has one question id for all its ${labelled.length} examples`;
    say(`${path.basename(o.train)} ${why}: nothing is held out for evaluation, so the run reports no score (pass an eval file)`);
  }
  const settings = cfg.extra.bert_studio as TaskSettings;
  const labels = labelsOfConfig(cfg);
  if (settings.max_length > cfg.maxPositionEmbeddings) throw new FinetuneError(`--max-length ${settings.max_length} is longer than the model's ${cfg.maxPositionEmbeddings} positions`);
  const encodeOpts = { maxLength: settings.max_length, docStride: settings.doc_stride, labels, onBadRow };
  const features = await spec.encode(train, tok, encodeOpts);
  const evalFeatures = await spec.encode(evalExamples, tok, encodeOpts);
  say(`${o.task}: ${train.length} training examples (${features.length} features)${evalExamples.length ? `, ${evalExamples.length} evaluation examples` : ""}${labels.length ? `, labels ${labels.join(", ")}` : ""}${bad ? `; ${bad} bad rows skipped` : ""}`);

  if (o.saveInit && !resuming) {
    // The starting weights, and the order in which the examples will be seen (their line numbers, per epoch).
    await saveModel(o.saveInit, cfg, params, tok);
    const epochs = Array.from({ length: o.epochs }, (_, e) => epochOrder(o.seed, e, features.length).map((i) => (train[features[i].example] as { line?: number }).line ?? features[i].example));
    await fs.writeFile(path.join(o.saveInit, "example_order.json"), JSON.stringify({ epochs }) + "\n");
  }
  const k = o.accumulationSteps ?? finetuneDefaults.accumulationSteps;
  const stepsPerEpoch = Math.max(1, Math.ceil(features.length / (o.batch * k)));
  const steps = o.steps ?? stepsPerEpoch * o.epochs;
  const evalEvery = o.evalEvery ?? finetuneDefaults.evalEvery(stepsPerEpoch);
  const checkpointEvery = o.checkpointEvery ?? finetuneDefaults.checkpointEvery(stepsPerEpoch);
  await fs.mkdir(o.out, { recursive: true });

  const dims = { batch: "batch", seq: "seq", choices: "choices" };
  const opt = await Optimizer.create(cfg, params, { task: spec.head, dims, device: o.device, threads: o.threads, dropoutSeed: o.seed + state.step, accumulationSteps: k });
  if (moments) {
    opt.m.data.set(moments.m.data);
    opt.v.data.set(moments.v.data);
  }
  opt.t = state.step;
  const lr = o.lr ?? finetuneDefaults.lrFor(cfg.hiddenSize);
  if (o.lr === undefined) say(`learning rate ${lr} (the default for hidden size ${cfg.hiddenSize}; choose another with --lr or bertStudio.finetune.lr)`);
  const warmupSteps = o.warmupSteps ?? finetuneDefaults.warmupSteps(steps);
  const schedule = getScheduler(o.schedule, lr, { warmupSteps, trainingSteps: steps });
  const recipe: FinetuneRecipe = {
    train: path.resolve(o.train),
    ...(o.eval ? { eval: path.resolve(o.eval) } : {}),
    ...(o.columns ? { columns: o.columns } : {}),
    batch: o.batch,
    accumulationSteps: k,
    lr,
    schedule: o.schedule,
    warmupSteps,
    steps,
    adamw: opt.adamw,
    logEvery: o.logEvery,
    evalEvery,
    checkpointEvery,
  };
  const evalSession = evalExamples.length ? (await createSession(buildTrainGraph(cfg, spec.head, { mode: "eval", dims, dropout: false, expose: spec.outputs }).model, { device: o.device, threads: o.threads })).session : undefined;
  const log = await MetricsLog.open(o.out, resuming ? state.step : undefined);
  const majority = majorityBaseline(o.task, train, evalExamples, labels);
  const score = (): FinetuneScore | undefined =>
    state.best && evalExamples.length
      ? { metric: state.best.metric, value: state.best.value, step: state.best.step, on: o.eval ? "eval" : "held-out", examples: evalExamples.length, ...(majority === undefined ? {} : { majority }) }
      : undefined;

  const evaluate = async (): Promise<Record<string, number>> => {
    if (!evalSession) return {};
    const paramFeeds = opt.params.feeds();
    const outputs = await forwardFeatures(o.task, evalFeatures, (feeds) => evalSession.run({ ...feeds, ...paramFeeds }), { batchSize: o.batch * 2, padId: tok.padId, labelled: true });
    const scores = spec.score(evalExamples, spec.predict(evalExamples, evalFeatures, outputs, labels), labels);
    return Object.fromEntries(Object.entries(scores).filter(([, v]) => typeof v === "number").map(([name, v]) => [`eval_${name}`, v as number]));
  };

  // Each epoch visits the features in its own seeded order; the position in it is part of the state.
  let order: number[] = [];
  let orderEpoch = -1;
  const nextBatch = (): Feature[] => {
    for (;;) {
      if (orderEpoch !== state.epoch) {
        order = epochOrder(o.seed, state.epoch, features.length);
        orderEpoch = state.epoch;
      }
      const start = state.batchInEpoch * o.batch;
      if (start < order.length) {
        state.batchInEpoch++;
        return order.slice(start, start + o.batch).map((i) => features[i]);
      }
      state.epoch++;
      state.batchInEpoch = 0;
    }
  };

  const task: TrainingTask = {
    nextMicroBatch: () => collateFeatures(o.task, nextBatch(), tok.padId, true),
    accumulate: () => undefined, // the loss is the loop's; task metrics come from evaluation
    takeMetrics: () => ({}),
    epoch: () => state.epoch + state.batchInEpoch / stepsPerEpoch / k,
    evaluate,
    checkpoint: () => saveCheckpoint(o.out, cfg, opt, tok, { ...state, recipe }),
    afterRow: async (row) => {
      const main = row[`eval_${spec.mainMetric}`];
      if (main !== undefined && (state.best === undefined || main > state.best.value)) {
        state.best = { step: state.step, metric: spec.mainMetric, value: main };
        await saveModel(path.join(o.out, "best"), cfg, opt.params, tok, state.step);
      }
    },
    score,
  };
  try {
    const r = await trainLoop(opt, task, state, log, {
      steps,
      accumulationSteps: k,
      logEvery: o.logEvery,
      evalEvery,
      checkpointEvery,
      schedule,
      seed: o.seed,
      signal: o.signal,
      onRow: o.onRow,
      onProgress: ({ step, row, eta_s, evaluated }) => o.onProgress?.({ step, steps, loss: row.loss, eta_s, metrics: evaluated ? row : undefined }),
    });
    return { ...r, best: state.best, score: score() };
  } finally {
    await opt.release();
    await evalSession?.release();
  }
}

/**
 * BERT fine-tunes with dropout 0.1 (section 5 of the paper). A model pretrained without dropout (our
 * pretraining's default, as Cramming's) says 0 in its config; fine-tuning on a few thousand labelled rows
 * then overfits, so such a model fine-tunes with 0.1. A model that names a dropout keeps it.
 */
function fineTuningDropout(base: BertConfig): Partial<BertConfig> {
  return {
    hiddenDropoutProb: base.hiddenDropoutProb === 0 ? BERT_DROPOUT : base.hiddenDropoutProb,
    attentionProbsDropoutProb: base.attentionProbsDropoutProb === 0 ? BERT_DROPOUT : base.attentionProbsDropoutProb,
  };
}

const BERT_DROPOUT = 0.1;
