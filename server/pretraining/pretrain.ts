// Pretraining on a folder of text: corpus → tokenizer → MLM/NSP instances, trained by the shared loop
// (training/loop.ts) with a held-out split, checkpoints (an HF folder plus optimizer and trainer state),
// metrics.jsonl and resume.
import { promises as fs } from "node:fs";
import * as path from "node:path";
import type { PretrainParams } from "../../common/protocol.js";
import { MB, pretrainDefaults } from "../../common/settings.js";
import * as ort from "onnxruntime-node";
import { bertConfig, PRESETS, readConfig, type BertConfig } from "../model/config.js";
import { architectureOf, headFromArchitectures } from "../model/heads.js";
import { CheckpointError, initParams, ParamStore, paramShapes } from "../model/params.js";
import { Rng } from "../util/rng.js";
import { CorpusError, documents, type CorpusOptions } from "../text/corpus.js";
import { tokenizeCorpus } from "../text/token-cache.js";
import { Optimizer } from "../training/optimizer.js";
import { DEFAULT_ADAMW, type AdamWConfig } from "../training/train-graph.js";
import { collate, createInstances, pretrainingOptions, shards, specialIds, type Instance, type PretrainingOptions, type SpecialIds } from "./pretraining-data.js";
import type { TokenCorpus } from "../text/token-corpus.js";
import { getScheduler } from "../training/schedules.js";
import { trainLoop, type TrainerHooks, type TrainingTask } from "../training/loop.js";
import { evalSet, MlmEvaluator } from "./mlm-eval.js";
import { hasRun, loadCheckpoint, MetricsLog, saveCheckpoint, withRunLock, type Metrics } from "../training/run-folder.js";
import { BertTokenizer } from "../text/tokenizer.js";
import { trainWordPiece, WordCounter } from "../text/vocab-trainer.js";
import { loadWeights, openModelFolder } from "../model/folder.js";
import { readSafetensorsLayout } from "../model/safetensors.js";

/**
 * The protocol's PretrainParams (what the user set; unset fields default from common/settings.ts) plus what
 * only the engine's callers choose.
 */
export interface PretrainOptions extends PretrainParams, TrainerHooks {
  /** Fraction of documents held out for evaluation; default pretrainDefaults.heldOut. */
  heldOut?: number;
  onProgress?: (p: Progress) => void;
}

/** PretrainOptions with every default applied (the cadences need the steps, known once the corpus is read). */
type Resolved = Omit<PretrainOptions, "seed" | "logEvery" | "heldOut" | "accumulationSteps" | "cased" | "maxFileMb"> & {
  seed: number;
  logEvery: number;
  heldOut: number;
  accumulationSteps: number;
  cased: boolean;
  maxFileMb: number;
};

function withDefaults(o: PretrainOptions): Resolved {
  const D = pretrainDefaults;
  return { ...o, seed: o.seed ?? D.seed, logEvery: o.logEvery ?? D.logEvery, heldOut: o.heldOut ?? D.heldOut, accumulationSteps: o.accumulationSteps ?? D.accumulationSteps, cased: o.cased ?? D.cased, maxFileMb: o.maxFileMb ?? D.maxFileMb };
}

export interface Progress {
  step: number;
  steps: number;
  loss: number;
  mlm_acc: number;
  /** Absent for masked LM only (no NSP). */
  nsp_acc?: number;
  tokens_per_s: number;
  eta_s: number;
}

interface TrainerState extends StreamPosition {
  step: number;
  seed: number;
  rng: number[];
  /** A run on a time budget: its minutes, and the training seconds spent (the loop's state). */
  minutes?: number;
  seconds?: number;
  /** How the run trains (written at every checkpoint; runs from before it have none). */
  recipe?: PretrainRecipe;
}

/**
 * What a pretraining run trains with, as resolved from its options and defaults: recorded in
 * trainer_state.json at every checkpoint, so that a hand-over to another trainer (an export --format
 * trainer) continues the run with the same data, masking, optimizer and schedule.
 */
export interface PretrainRecipe {
  /** The corpus folder (absolute) and how it was read. */
  corpus: string;
  include?: string[];
  exclude?: string[];
  maxFileMb: number;
  heldOut: number;
  /** What the corpus held when the run (re)started: an export warns when it holds something else now. */
  documents: number;
  tokens: number;
  seq: number;
  batch: number;
  accumulationSteps: number;
  maskRate: number;
  wholeWordMask: boolean;
  nsp: boolean;
  lr: number;
  schedule: string;
  /**
   * The schedule's warmup and length: in steps, or with `minutes` in 1/scheduleSteps of the time budget
   * (the schedule then follows the elapsed time).
   */
  warmupSteps: number;
  steps: number;
  minutes?: number;
  scheduleSteps?: number;
  adamw: AdamWConfig;
  logEvery: number;
  evalEvery: number;
  checkpointEvery: number;
}

/** The examples a run of `recipe` trains on: its sequence length, mask rate, whole-word masking and NSP pairs. */
export function trainingData(recipe: Pick<PretrainRecipe, "seq" | "maskRate" | "wholeWordMask" | "nsp">): PretrainingOptions {
  return { ...pretrainingOptions(recipe.seq, recipe.maskRate), wholeWordMask: recipe.wholeWordMask, nextSentence: recipe.nsp };
}

/** The steps a time-based schedule is laid out on: the budget's fraction done, in steps of 1/SCHEDULE_STEPS. */
const SCHEDULE_STEPS = 100_000;

export class PretrainError extends Error {}

/** The last documents (at least 2) are held out for evaluation. */
export function splitHeldOut(docs: TokenCorpus, fraction: number): { train: TokenCorpus; held: TokenCorpus } {
  const n = Math.max(2, Math.round(docs.length * fraction));
  return { train: docs.slice(0, docs.length - n), held: docs.slice(docs.length - n, docs.length) };
}


/** Pretrains into `options.out`, holding its lock (a second process training into it is refused). */
export function pretrain(options: PretrainOptions): Promise<{ metrics: Metrics[]; stopped: boolean; step: number }> {
  return withRunLock(options.out, "pretrain", options.onMessage ?? (() => undefined), () => train(options));
}

async function train(options: PretrainOptions): Promise<{ metrics: Metrics[]; stopped: boolean; step: number }> {
  let o = withDefaults(options);
  const say = o.onMessage ?? (() => undefined);
  const corpusOpts: CorpusOptions = { warn: say, include: o.include?.length ? o.include : undefined, exclude: o.exclude?.length ? o.exclude : undefined, maxFileBytes: o.maxFileMb * MB };
  const runExists = await hasRun(o.out);
  if (runExists && !o.resume) throw new PretrainError(`${o.out} already holds a training run: pass --resume to continue it, or choose another --out`);
  if (o.resume && !runExists) say(`no run to resume in ${o.out}: starting a new one`);
  const resuming = o.resume && runExists;
  let tok: BertTokenizer;
  if (resuming) {
    tok = await BertTokenizer.fromDir(o.out).catch((e: Error) => {
      throw new PretrainError(`cannot resume from ${o.out}: ${e.message}. The checkpoint was left as it is.`);
    });
  } else if (o.from) {
    if (o.vocab || o.trainVocab) throw new PretrainError("--from keeps the model's own vocabulary: give no --vocab or --train-vocab with it");
    tok = await BertTokenizer.fromDir(o.from).catch((e: Error) => {
      throw new PretrainError(`cannot continue from ${o.from}: ${e.message}`);
    });
  } else if (o.vocab) {
    tok = await BertTokenizer.fromVocabFile(o.vocab, { lowercase: !o.cased });
  } else if (o.trainVocab) {
    const t = Date.now();
    const counter = new WordCounter(!o.cased);
    for await (const doc of documents(o.corpus, { ...corpusOpts, warn: () => undefined })) for (const sentence of doc) counter.add(sentence);
    if (counter.counts.size === 0) throw new CorpusError(`${o.corpus}: no text found to train a vocabulary on`);
    tok = BertTokenizer.fromVocab(trainWordPiece(counter.counts, { vocabSize: o.trainVocab }), { lowercase: !o.cased });
    say(`vocabulary: ${tok.vocabSize} WordPiece tokens trained on ${counter.counts.size} distinct words in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  } else {
    throw new PretrainError("give a vocabulary (--vocab FILE) or train one (--train-vocab SIZE)");
  }
  const t0 = Date.now();
  const { docs, bytes, cached } = await tokenizeCorpus(o.corpus, tok, corpusOpts);
  const tokens = docs.tokens();
  if (tokens === 0) throw new CorpusError(`${o.corpus}: no text found (looked for ${[".txt", ".md", ".rst", ".tex", ".tokens"].join(" ")} and UTF-8 files)`);
  const seconds = (Date.now() - t0) / 1000;
  say(`corpus: ${docs.length} documents, ${tokens} tokens, ${(bytes / 1048576).toFixed(1)} MB, ${cached ? "tokenized earlier (cache)" : `tokenized in ${seconds.toFixed(1)} s (${(bytes / 1048576 / seconds).toFixed(1)} MB/s)`}`);
  if (docs.length < 4) throw new CorpusError(`${o.corpus}: pretraining needs at least 4 documents (2 are held out for evaluation), found ${docs.length}`);
  const { train, held } = splitHeldOut(docs, o.heldOut);
  const special = specialIds(tok);
  // NSP as asked, else the recipe's default; a resumed run keeps its head, a continued one trains NSP when the model has it.
  const head = resuming
    ? (headFromArchitectures((await readConfig(o.out)).architectures) === "masked_lm" ? "masked_lm" : "pretraining")
    : (o.nsp ?? (o.from ? await hasNspHead(o.from) : pretrainDefaults.nsp))
      ? "pretraining"
      : "masked_lm";
  const maskRate = o.maskRate ?? pretrainDefaults.maskRate;
  if (!(maskRate > 0 && maskRate < 1)) throw new PretrainError(`the mask rate must be in (0, 1), got ${maskRate}`);
  const data = trainingData({ seq: o.seq, maskRate, wholeWordMask: !!o.wholeWordMask, nsp: head === "pretraining" });
  const k = o.accumulationSteps;
  const dims = { batch: o.batch, seq: o.seq, predictions: o.batch * data.maxPredictionsPerSeq };
  if (o.epochs) {
    // Epoch 0's example count stands for every epoch's (they differ by a few examples between seeds).
    let instances = 0;
    shards(train, TOKENS_PER_SHARD).forEach((range, i) => (instances += BatchStream.shardInstances(train, data, special, o.seed, 0, i, range).length));
    const perEpoch = Math.floor(instances / (o.batch * k));
    o = { ...o, steps: Math.max(1, perEpoch * o.epochs) };
    say(`${o.epochs} epoch(s) = ${o.steps} steps of ${o.batch * k} examples`);
  }

  await fs.mkdir(o.out, { recursive: true });
  let cfg: BertConfig;
  let params: ParamStore;
  let state: TrainerState = { step: 0, epoch: 0, shard: 0, next: 0, seed: o.seed, rng: new Rng(o.seed).getState() };
  let m: ParamStore | undefined;
  let v: ParamStore | undefined;
  if (resuming) {
    try {
      const c = await loadCheckpoint<TrainerState>(o.out, head, tok);
      ({ cfg, params, m, v, state } = c);
      if (cfg.vocabSize !== tok.vocabSize) throw new CheckpointError(`vocabulary has ${tok.vocabSize} tokens, the checkpoint ${cfg.vocabSize}`);
    } catch (e) {
      throw new PretrainError(`cannot resume from ${o.out}: ${(e as Error).message}. The checkpoint was left as it is.`);
    }
    say(`resuming at step ${state.step}`);
  } else {
    // The recipe's defaults (common/settings.ts) shape a new model; a continued one keeps its own dropout
    // and initialisation unless told otherwise.
    const D = pretrainDefaults;
    const p = o.dropout ?? (o.from ? undefined : D.dropout);
    const dropout = p === undefined ? {} : { hiddenDropoutProb: p, attentionProbsDropoutProb: p };
    const base = o.from ? (await openModelFolder(o.from, tok)).cfg : bertConfig({ ...PRESETS[o.preset], ...shape(o), vocabSize: tok.vocabSize, initializerRange: o.initStd ?? D.initStd });
    cfg = { ...base, ...dropout, architectures: [architectureOf(head)] };
    params = ParamStore.fromShapes(paramShapes(cfg, head));
    initParams(params, cfg, o.seed);
    if (!o.from && (o.positionInit ?? D.positionInit) === "sinusoidal") sinusoidalPositions(params, cfg);
    if (o.from) {
      // Continued pretraining: the encoder from the model; heads it lacks (a BertModel's MLM head, a
      // BertForMaskedLM's pooler and NSP head) start from BERT's initialisation and are reported.
      const { report } = await loadWeights(o.from, params, { allowMissing: (name) => !name.startsWith("bert.") || name.startsWith("bert.pooler.") });
      if (head === "masked_lm" && o.nsp === undefined) say("masked LM only, on contiguous text: the model has no NSP head (--nsp trains a new one)");
      say(`continuing from ${o.from}: ${report.loaded.length} tensors loaded${report.missing.length ? `; new: ${report.missing.join(", ")}` : ""}; its vocabulary (${tok.vocabSize}) and size are kept`);
    }
  }
  if (o.seq > cfg.maxPositionEmbeddings) throw new PretrainError(`--seq ${o.seq} is longer than the model's ${cfg.maxPositionEmbeddings} positions`);

  const adamw = { ...DEFAULT_ADAMW, beta2: o.beta2 ?? pretrainDefaults.beta2 };
  const opt = await Optimizer.create(cfg, params, {
    task: head,
    adamw,
    dims,
    device: o.device,
    threads: o.threads,
    dropoutSeed: o.seed + state.step,
    accumulationSteps: k,
    expose: head === "pretraining" ? ["mlm_predictions", "nsp_predictions"] : ["mlm_predictions"],
  });
  if (m && v) {
    opt.m.data.set(m.data);
    opt.v.data.set(v.data);
  }
  opt.t = state.step;
  const evalData = pretrainingOptions(o.seq); // the protocol's 15%, whatever the training's mask rate
  const evaluator = await MlmEvaluator.create(cfg, head, { ...dims, predictions: o.batch * evalData.maxPredictionsPerSeq }, { device: o.device, threads: o.threads });
  // A budget in minutes (a resumed run keeps its own): warmup and decay follow the elapsed time.
  const minutes = resuming ? (state.minutes ?? o.minutes) : o.minutes;
  if (minutes !== undefined && !(minutes > 0)) throw new PretrainError(`--minutes must be a positive number, got ${minutes}`);
  if (minutes && o.warmupSteps !== undefined) throw new PretrainError("--warmup counts steps; with --minutes give --warmup-ratio (a share of the time)");
  state.minutes = minutes;
  const warmupRatio = o.warmupRatio ?? pretrainDefaults.warmupFraction;
  if (!(warmupRatio >= 0 && warmupRatio < 1)) throw new PretrainError(`the warmup ratio must be in [0, 1), got ${warmupRatio}`);
  if (o.warmupRatio !== undefined && o.warmupSteps !== undefined) throw new PretrainError("give --warmup (steps) or --warmup-ratio, not both");
  const laidOut = minutes ? { warmupSteps: pretrainDefaults.warmupSteps(SCHEDULE_STEPS, warmupRatio), trainingSteps: SCHEDULE_STEPS } : { warmupSteps: o.warmupSteps ?? pretrainDefaults.warmupSteps(o.steps, warmupRatio), trainingSteps: o.steps };
  const byStep = getScheduler(o.schedule, o.lr, laidOut);
  const schedule = minutes ? (_step: number, progress: number) => byStep(Math.floor(progress * SCHEDULE_STEPS)) : byStep;
  if (minutes) say(`training for ${minutes} minute(s); evaluations and checkpoints every tenth of that`);
  const rng = new Rng(0);
  rng.setState(state.rng);
  const log = await MetricsLog.open(o.out, resuming ? state.step : undefined);
  const evalEvery = o.evalEvery ?? pretrainDefaults.evalEvery(o.steps);
  const checkpointEvery = o.checkpointEvery ?? pretrainDefaults.checkpointEvery(o.steps);
  const recipe: PretrainRecipe = {
    corpus: path.resolve(o.corpus),
    include: corpusOpts.include,
    exclude: corpusOpts.exclude,
    maxFileMb: o.maxFileMb,
    heldOut: o.heldOut,
    documents: docs.length,
    tokens,
    seq: o.seq,
    batch: o.batch,
    accumulationSteps: k,
    maskRate,
    wholeWordMask: data.wholeWordMask,
    nsp: head === "pretraining",
    lr: o.lr,
    schedule: o.schedule,
    warmupSteps: laidOut.warmupSteps,
    steps: laidOut.trainingSteps,
    ...(minutes ? { minutes, scheduleSteps: SCHEDULE_STEPS } : {}),
    adamw,
    logEvery: o.logEvery,
    evalEvery,
    checkpointEvery,
  };

  // Held-out batches are fixed (their own seed) so evaluations are comparable across steps.
  // Enough held-out documents for 8 batches (instances hold at most seq tokens each; a few times more is plenty).
  let heldDocs = 1;
  while (heldDocs < held.length && held.tokens(0, heldDocs) < o.batch * 8 * o.seq * 3) heldDocs++;
  const heldSet = evalSet(held, evalData, special, o.seed + 1, o.batch * 8, { pairs: head === "pretraining", from: 0, to: heldDocs });
  // The held-out figures (eval_*) by the protocol of mlm-eval.ts: all-[MASK], fixed segments, pairs and masks.
  const evaluate = async (): Promise<Record<string, number>> => {
    const r = await evaluator.score(opt.params, heldSet, evalData, special, o.seed + 2);
    if (!r) return {};
    const { masked_tokens: _m, sequences: _s, ...figures } = r;
    return Object.fromEntries(Object.entries(figures).map(([k, v]) => [`eval_${k}`, v as number]));
  };

  const batches = new BatchStream(train, data, special, o.batch, o.seed, state, rng);
  const window = { mlmLoss: 0, nspLoss: 0, n: 0, mlm_correct: 0, mlm_count: 0, nsp_correct: 0, nsp_count: 0 };
  const task: TrainingTask = {
    nextMicroBatch: () => batches.next(),
    accumulate: (r, feeds) => {
      window.mlmLoss += r.scalars.mlm_loss;
      window.nspLoss += r.scalars.nsp_loss ?? 0;
      window.n++;
      addHits(feeds, r.outputs, window);
    },
    takeMetrics: () => {
      const m: Record<string, number> = {
        mlm_loss: window.mlmLoss / window.n,
        mlm_acc: window.mlm_correct / Math.max(1, window.mlm_count),
      };
      if (head === "pretraining") {
        m.nsp_loss = window.nspLoss / window.n;
        m.nsp_acc = window.nsp_correct / Math.max(1, window.nsp_count);
      }
      Object.assign(window, { mlmLoss: 0, nspLoss: 0, n: 0, mlm_correct: 0, mlm_count: 0, nsp_correct: 0, nsp_count: 0 });
      return m;
    },
    epoch: () => state.epoch,
    evaluate,
    checkpoint: () => saveCheckpoint(o.out, cfg, opt, tok, { ...state, rng: rng.getState(), recipe }),
  };
  try {
    return await trainLoop(opt, task, state, log, {
      steps: o.steps,
      seconds: minutes ? minutes * 60 : undefined,
      accumulationSteps: k,
      logEvery: o.logEvery,
      // The cadences follow the steps (known here, after --epochs became steps).
      evalEvery,
      checkpointEvery,
      schedule,
      seed: o.seed,
      signal: o.signal,
      onRow: o.onRow,
      onProgress: ({ step, steps, row, eta_s }) => o.onProgress?.({ step, steps, loss: row.loss, mlm_acc: row.mlm_acc, nsp_acc: row.nsp_acc, tokens_per_s: row.tokens_per_s, eta_s }),
    });
  } finally {
    await opt.release();
    await evaluator.release();
  }
}

/** The model shape of `o` where it overrides the preset's (BERT's conventions fill in heads of 64 and a 4x feed-forward). */
function shape(o: PretrainParams): Partial<BertConfig> {
  const out: Partial<BertConfig> = {};
  if (o.layers !== undefined) out.numHiddenLayers = o.layers;
  if (o.hidden !== undefined) {
    out.hiddenSize = o.hidden;
    out.numAttentionHeads = Math.max(1, Math.round(o.hidden / 64));
    out.intermediateSize = 4 * o.hidden;
  }
  if (o.heads !== undefined) out.numAttentionHeads = o.heads;
  if (o.intermediate !== undefined) out.intermediateSize = o.intermediate;
  return out;
}

/**
 * Starts the learned position embeddings from the Transformer's sinusoids (Vaswani et al. 2017, section
 * 3.5), scaled to the standard deviation of the model's initialisation (initializer_range) so that they weigh in
 * the embedding sum as much as the word embeddings do. Only the starting point changes: they are trained as usual, and the model
 * is BERT's (HF loads it as any other). A random start carries no order, which the model must first learn.
 */
export function sinusoidalPositions(params: ParamStore, cfg: BertConfig): void {
  const w = params.view("bert.embeddings.position_embeddings.weight");
  const H = cfg.hiddenSize;
  const scale = cfg.initializerRange * Math.SQRT2; // a sinusoid of amplitude a has standard deviation a/√2
  for (let pos = 0; pos < cfg.maxPositionEmbeddings; pos++) {
    for (let i = 0; i < H; i += 2) {
      const angle = pos / 10000 ** (i / H);
      w[pos * H + i] = scale * Math.sin(angle);
      if (i + 1 < H) w[pos * H + i + 1] = scale * Math.cos(angle);
    }
  }
}

/**
 * Whether the model folder `dir` has BERT's next-sentence head (cls.seq_relationship): by its weights, since
 * Google's checkpoints have it under a config that says BertForMaskedLM (bert-base-uncased).
 */
async function hasNspHead(dir: string): Promise<boolean> {
  return (await readSafetensorsLayout(path.join(dir, "model.safetensors"))).has("cls.seq_relationship.weight");
}

/** Where a BatchStream is: epoch, shard of the epoch, next instance of the shard. */
export interface StreamPosition {
  epoch: number;
  shard: number;
  next: number;
}

/** Tokens per shard of instances: memory for an epoch's instances is bounded by this, not by the corpus. */
export const TOKENS_PER_SHARD = 4_000_000;

/**
 * The training batches in order. An epoch goes through the corpus shard by shard (consecutive documents,
 * TOKENS_PER_SHARD tokens each); a shard's instances come from their own seed and are shuffled, a batch
 * may run on into the next shard or epoch. Masks are drawn from `rng` at collation. `position` is
 * advanced as batches are taken, so a resumed run that restores it and the RNG continues with the same batches.
 */
export class BatchStream {
  private instances: Instance[] = [];
  private loaded = "";
  private readonly shards: [number, number][];

  constructor(
    private readonly docs: TokenCorpus,
    private readonly data: PretrainingOptions,
    private readonly special: SpecialIds,
    private readonly batch: number,
    private readonly seed: number,
    readonly position: StreamPosition,
    private readonly rng: Rng,
    tokensPerShard = TOKENS_PER_SHARD,
  ) {
    this.shards = shards(docs, tokensPerShard);
  }

  /** The shuffled instances of one shard (documents [from, to)) of one epoch. */
  static shardInstances(docs: TokenCorpus, data: PretrainingOptions, special: SpecialIds, seed: number, epoch: number, shard: number, [from, to]: [number, number]): Instance[] {
    return createInstances(docs, data, special, new Rng((seed * 1000003 + epoch) * 8191 + shard), from, to);
  }

  next(): Record<string, ort.Tensor> {
    const out: Instance[] = [];
    const p = this.position;
    let emptyShards = 0; // consecutive shards without an instance: a whole epoch of them means none at all
    while (out.length < this.batch) {
      if (p.shard >= this.shards.length) {
        p.epoch++;
        p.shard = 0;
        p.next = 0;
      }
      const key = `${p.epoch}/${p.shard}`;
      if (this.loaded !== key) {
        this.instances = BatchStream.shardInstances(this.docs, this.data, this.special, this.seed, p.epoch, p.shard, this.shards[p.shard]);
        this.loaded = key;
      }
      if (p.next >= this.instances.length) {
        if (this.instances.length === 0 && ++emptyShards > this.shards.length) throw new PretrainError("the corpus makes no training examples (its documents are too short)");
        p.shard++;
        p.next = 0;
        continue;
      }
      emptyShards = 0;
      const take = Math.min(this.batch - out.length, this.instances.length - p.next);
      for (let i = p.next; i < p.next + take; i++) out.push(this.instances[i]);
      p.next += take;
    }
    return collate(out, this.data, this.special, this.rng);
  }
}

/** Adds MLM and NSP hits of a batch (predictions from the graph's ArgMax outputs) to `acc`. */
function addHits(
  feeds: Record<string, ort.Tensor>,
  out: Record<string, ort.Tensor>,
  acc: { mlm_correct: number; mlm_count: number; nsp_correct: number; nsp_count: number },
): void {
  const labels = feeds.masked_lm_labels.data as BigInt64Array;
  const pred = out.mlm_predictions.data as BigInt64Array;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] < 0n) continue;
    acc.mlm_count++;
    if (pred[i] === labels[i]) acc.mlm_correct++;
  }
  if (!out.nsp_predictions) return; // masked LM only
  const nl = feeds.next_sentence_label.data as BigInt64Array;
  const np = out.nsp_predictions.data as BigInt64Array;
  for (let i = 0; i < nl.length; i++) {
    acc.nsp_count++;
    if (np[i] === nl[i]) acc.nsp_correct++;
  }
}
