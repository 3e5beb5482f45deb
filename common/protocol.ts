// The custom requests and notifications between the extension (client/) and the BERT server (server/main.ts):
// one typed definition that both sides import. Long jobs honour $/cancelRequest and bert/stopJob; their
// metrics (with the steps planned and the time left) stream as `bert/metrics` notifications, from which the
// extension draws its progress notification, status item and curves.
//
// Paths come from the client, so the server checks every path it writes: runs (pretrain, finetune, import)
// only inside `<workspace folder>/.bert-studio/runs` of the folders it was given at initialize (and told of
// by workspace/didChangeWorkspaceFolders); an export only where the user chose in a dialog, never into a
// model. The server alone decides about a run folder: a run already there is resumed, kept as `NAME-<n>`
// (a rename) on request, or left alone with a RUN_EXISTS error; a run is removed only by bert/deleteRun,
// which moves it to the user's trash (after the extension asked), never deletes it.
import { NotificationType, RequestType, RequestType0 } from "vscode-languageserver-protocol";
import type { Device, Preset } from "./settings.js";

/**
 * Pretrain and Finetune read `corpus`/`train`/`eval`/`vocab`/`model`/`from` (wherever they are) and write only
 * `out`, which must lie inside a workspace folder's `.bert-studio/runs`. A run already in `out`
 * (trainer_state.json or model.safetensors) is resumed with `resume`, moved to the next free `out-<n>` with
 * `replace`, and otherwise answered with a RUN_EXISTS error (data: RunExists). Refused while a job (of this
 * server, or any process holding the run's lock file) trains into `out`, and when `out` is, or contains, the
 * model they start from (`model`, `from`).
 */
export interface RunParams {
  /** Run folder, inside `<workspace folder>/.bert-studio/runs`. */
  out: string;
  /** Continue the run in `out` from its checkpoint (a folder without one starts a new run). */
  resume: boolean;
  /** Keep a run already in `out` as `out-<n>` and start a new one; not while a job trains there. */
  replace?: boolean;
}

/**
 * A pretraining run as the user describes it, in the editor (settings) or on the command line (flags):
 * the engine takes this type as it is (server/pretraining/pretrain.ts), and every field left out takes its
 * default from common/settings.ts there, so that both run the same defaults.
 */
export interface PretrainParams extends RunParams {
  /** Folder of text to pretrain on (a workspace folder). */
  corpus: string;
  preset: Preset;
  steps: number;
  /** Train for this many passes over the examples instead of `steps`. */
  epochs?: number;
  /**
   * Train for this many minutes instead of `steps` (the training loop's time, after the corpus is read): the
   * schedule's warmup and decay follow the elapsed time, and the run ends on time with a checkpoint.
   */
  minutes?: number;
  batch: number;
  seq: number;
  lr: number;
  schedule: string;
  /** Default: pretrainDefaults.warmupSteps(steps). */
  warmupSteps?: number;
  device: Device;
  /**
   * Continue pretraining from this model folder (a pretraining run, or an HF BertForPreTraining,
   * BertForMaskedLM or BertModel folder): its vocabulary and size are kept (no `vocab`, `trainVocab`).
   */
  from?: string;
  /** WordPiece vocabulary file; without it, one of `trainVocab` tokens is trained on the folder. A resumed run uses its own. */
  vocab?: string;
  trainVocab?: number;
  /** Keep case and accents (default: lower-case, as bert-base-uncased). */
  cased?: boolean;
  include?: string[];
  exclude?: string[];
  maxFileMb?: number;
  evalEvery?: number;
  checkpointEvery?: number;
  seed?: number;
  /** Micro-batches of `batch` examples per optimizer step (gradient accumulation). */
  accumulationSteps?: number;
  wholeWordMask?: boolean;
  /** Dropout probability of hidden states and attention weights; default the preset's (0.1). */
  dropout?: number;
  /** Share of the tokens predicted (BERT's masked_lm_prob, default 0.15); max predictions per sequence follow it. */
  maskRate?: number;
  /** AdamW's beta2 (default 0.999, as BERT and HF's Trainer). */
  beta2?: number;
  /** Share of the steps (or of the time budget) spent warming the learning rate up; HF's warmup_ratio. */
  warmupRatio?: number;
  /** Next-sentence prediction (default true). Off: a BertForMaskedLM trained on contiguous text, no NSP head. */
  nsp?: boolean;
  /** Standard deviation of a new model's initial weights (HF's initializer_range, BERT's 0.02). */
  initStd?: number;
  /** How a new model's position embeddings start: BERT's random normal (default) or the Transformer's sinusoids. */
  positionInit?: "normal" | "sinusoidal";
  /** Model shape instead of the preset's (a new model only): layers, hidden size, heads, feed-forward size. */
  layers?: number;
  hidden?: number;
  heads?: number;
  intermediate?: number;
}

/** The five fine-tuning tasks of the BERT paper (server/tasks/tasks.ts has their specs). */
export const FINETUNE_TASKS = ["classify", "pair", "choice", "qa", "ner"] as const;
export type FinetuneTask = (typeof FINETUNE_TASKS)[number];

/** Which columns of a table hold the texts and the label. */
export interface TableColumns {
  /** Column name (with a header) or 0-based index of the text, the second text of a pair, and the label. */
  text?: string;
  pair?: string;
  label?: string;
  /** Whether the first row is a header; default: detected (it names a known or requested column). */
  header?: boolean;
}

/**
 * A fine-tuning run as the user describes it (editor settings, CLI flags): the engine takes this type as it
 * is (server/tasks/finetune.ts, with the task detected when "auto"); fields left out default there from
 * common/settings.ts. Also refused when `out` is, or contains, `model` or the selected model.
 */
export interface FinetuneParams extends RunParams {
  task: FinetuneTask | "auto";
  train: string;
  eval?: string;
  /** The encoder to start from (read only): a pretraining run or any HF BERT folder. */
  model: string;
  epochs: number;
  /** Train for this many steps instead of `epochs`. */
  steps?: number;
  batch: number;
  maxLength: number;
  /** Question answering: the stride between windows of a long context. */
  docStride?: number;
  /** Peak learning rate; default finetuneDefaults.lrFor(the model's hidden size): 5e-5 for BERT-Base, 5e-4 for the tiny preset. */
  lr?: number;
  schedule: string;
  /** Default: finetuneDefaults.warmupSteps(steps), 10% (BERT's recipe). */
  warmupSteps?: number;
  accumulationSteps?: number;
  /** Evaluate (and checkpoint) every N steps; default once per epoch. */
  evalEvery?: number;
  checkpointEvery?: number;
  seed?: number;
  device: Device;
  columns?: TableColumns;
  /**
   * Without `eval`: the share of the labelled examples held out for evaluation (a seeded split, said in the
   * log), default finetuneDefaults.evalSplit (0.1); 0 trains on every example and reports no score.
   */
  evalSplit?: number;
}

/** Error code of a Pretrain/Finetune refused because `out` holds a run and neither resume nor replace was set. */
export const RUN_EXISTS = 2;

/** The `data` of a RUN_EXISTS error: what replacing would move aside. */
export interface RunExists {
  out: string;
  /** The run's step (trainer_state.json); absent for a model folder without one. */
  step?: number;
  /** Size of the folder's files. */
  bytes: number;
  /** Where `replace` would keep it now (the next free `out-<n>`). */
  keptAs: string;
}

export interface JobResult {
  out: string;
  /** True when the job was cancelled (a checkpoint was kept). */
  stopped: boolean;
  steps: number;
  /** Final metrics row. */
  metrics?: Record<string, number>;
  /** Fine-tuning: the score of the best checkpoint on the evaluation examples, when there were any. */
  score?: FinetuneScore;
}

/** How good a fine-tuned model is, for the done message and the Runs view. */
export interface FinetuneScore {
  /** The task's main metric ("accuracy", "f1", "exact_match", "entity f1"…) and its value in [0, 1]. */
  metric: string;
  value: number;
  step: number;
  /** The evaluation examples: "eval" (the --eval file) or "held-out" (a seeded share of the training file). */
  on: "eval" | "held-out";
  examples: number;
  /** The same metric of always answering the most frequent training label (classify, pair, choice). */
  majority?: number;
}

export interface MetricsEvent {
  job: string;
  kind: "pretrain" | "finetune";
  out: string;
  row: Record<string, number>;
  /** The run's total steps as known now (a time budget's is an estimate), and the seconds left. */
  steps?: number;
  eta_s?: number;
}

export interface FillMaskParams {
  text: string;
  topK: number;
}

export interface FillMaskResult {
  /** Run folder of the model that answered; empty when no model is selected. */
  model: string;
  /** Per [MASK] of the text, in order: tokens with probabilities. */
  masks: { token: string; score: number }[][];
}

export interface StatusResult {
  /** The selected language model (BertForPreTraining, BertForMaskedLM, BertModel): fill-mask, surprise, fine-tuning's base. */
  model: string | undefined;
  /** The selected fine-tuned model (a task head): BERT: Predict. */
  taskModel: string | undefined;
  /** The server's process id. */
  pid: number;
  /** Running jobs; each trains in a process of its own (`pid`, once it has started). */
  jobs: { id: string; kind: "pretrain" | "finetune"; out: string; step: number; steps: number; loss?: number; pid?: number }[];
}

export interface ModelInfo {
  dir: string;
  architecture: string;
  task?: string;
}

/** What SelectModel did: a language model takes the `model` slot, a fine-tuned one the `taskModel` slot. */
export interface SelectResult extends ModelInfo {
  slot: "model" | "taskModel";
}

/** How a run ended (or that it trains): read from its folder (outcome.json, trainer_state.json) and the jobs. */
export type RunState = "training" | "stopped" | "done" | "failed" | "diverged" | "model";

/** A run (or model folder) of a workspace's .bert-studio/runs, for the Runs view. */
export interface RunInfo {
  dir: string;
  name: string;
  kind: "pretrain" | "finetune" | "model";
  architecture: string;
  task?: FinetuneTask;
  state: RunState;
  /** Why it failed or diverged (the trainer's message). */
  message?: string;
  step?: number;
  /** Planned steps, when known. */
  steps?: number;
  /** Fine-tuning: the best checkpoint's score; pretraining: the latest held-out masked-token accuracy. */
  best?: { metric: string; value: number };
  /** Last change to the run (ms since the epoch). */
  modified: number;
  /** The job of this server training there. */
  job?: string;
}

/**
 * The `outcome.json` a trainer writes into its run folder when it ends (CLI or editor): what the Runs view
 * shows for a run that no job trains.
 */
export interface RunOutcome {
  state: "stopped" | "done" | "failed" | "diverged";
  step: number;
  steps?: number;
  message?: string;
  score?: FinetuneScore;
  /** ISO time. */
  ended: string;
}

/** BERT: Predict on a text with the selected (or given) fine-tuned model. Offsets are UTF-16 (the editor's), into `text`. */
export interface PredictParams {
  text: string;
  /** Sentence-pair models: the second text. */
  pair?: string;
  /** Question answering: the question (`text` is the context). */
  question?: string;
  /** Default: the selected task model. */
  model?: string;
}

export interface PredictResult {
  model: string;
  task: FinetuneTask;
  /** classify, pair: the label and every label's probability, most likely first. */
  label?: string;
  probabilities?: { label: string; score: number }[];
  /** ner: the entities found, with UTF-16 offsets into `text`. */
  entities?: { type: string; text: string; start: number; end: number }[];
  /** qa: the answer span in `text`; `score` is its start + end logits (HF run_qa's ranking), not a probability. */
  answer?: { text: string; start: number; end: number; score: number };
}

/**
 * Surprising tokens: each word of `text` scored by the selected language model with that word masked (its
 * word pieces each masked in turn, their log-probabilities summed: the pseudo-log-likelihood), each in a
 * 128-token window around it (the length our pretraining trains at). Offsets are UTF-16 into `text`.
 */
export interface SurpriseParams {
  text: string;
  /** Alternatives kept per word. */
  topK?: number;
}

export interface WordSurprise {
  start: number;
  end: number;
  /** −log2 of the word's probability under the model (bits); higher is more surprising. */
  bits: number;
  /** The model's top predictions for the word's first piece, when masked. */
  top: { token: string; score: number }[];
}

export interface SurpriseResult {
  model: string;
  words: WordSurprise[];
}

/**
 * What the preset picker shows: each preset's size for this vocabulary and its pretraining step time on this
 * machine. Reads only `vocab` (whose size then wins over `vocabSize`). Answered at once; with `measure` the
 * server first runs a few training steps of the tiny preset (a few seconds, once a session for each batch,
 * seq and device), unless a job is training (it would skew the figure): `stepSeconds` is then absent unless
 * measured earlier.
 */
export interface EstimatePretrainParams {
  batch: number;
  seq: number;
  vocabSize: number;
  vocab?: string;
  device: Device;
  measure?: boolean;
}

export interface PresetEstimate {
  preset: Preset;
  layers: number;
  hidden: number;
  parameters: number;
  /** Seconds per optimizer step, estimated for this machine (tiny measured, the others scaled by FLOPs). */
  stepSeconds?: number;
}

/** A BERT model folder in the user's Hugging Face cache: one snapshot (revision) of a model repository. */
export interface CachedModel {
  /** The snapshot folder, `<cache>/models--ORG--NAME/snapshots/<revision>` (its files are links into blobs/). */
  dir: string;
  /** The repository as the Hub names it: "ORG/NAME" (or "NAME" for the old unprefixed ones). */
  repo: string;
  revision: string;
  /** The cache's refs that point at this revision ("main", a tag). */
  refs: string[];
  architecture: string;
  /** Why it cannot be imported (e.g. only PyTorch weights); absent when it can. */
  problem?: string;
}

/**
 * Writes into `dest` (created if needed) the model's files (hf: config.json, model.safetensors, vocab and
 * tokenizer files; onnx: model.onnx, config.json, vocab and tokenizer files), overwriting those names there;
 * trainer: a new folder for Hugging Face's Trainer to continue the run in (model/, the Adam moments, data/
 * made from `corpus` or `taskData`, recipe.json, train.py, requirements.txt, README.md), written beside
 * `dest` and renamed into it, which must not exist or be empty. It only reads the run and the corpus or
 * labelled file. `dest` is a folder the user chose in a dialog; refused when it is the model itself, holds a
 * training run (trainer_state.json), is a model folder in a workspace's runs, or a job trains into it.
 */
export interface ExportParams {
  model: string;
  format: "onnx" | "hf" | "trainer";
  dest: string;
  /** trainer, for a pretraining run: the corpus folder (the workspace folder); default the run's own. */
  corpus?: string;
  /** trainer, for a fine-tuned run: its labelled file; default the one it was trained on. */
  taskData?: string;
}

/** What an export wrote, and what it had to say (a trainer folder: assumed defaults, a changed corpus). */
export interface ExportResult {
  files: string[];
  notes: string[];
}

/**
 * Checks the HF folder `dir` (read only) and copies its model files into `dest`, which must lie inside a
 * workspace folder's `.bert-studio/runs`; when `dest` already holds a model (or a job trains there) the
 * next free `dest-<n>` is used instead, so nothing is overwritten. The result names the folder written.
 */
export interface ImportParams {
  dir: string;
  dest: string;
}

/** Writes only `out` (see RunParams). */
export const Pretrain = new RequestType<PretrainParams, JobResult, void>("bert/pretrain");
/** Writes only `out` (see RunParams and FinetuneParams). */
export const Finetune = new RequestType<FinetuneParams, JobResult, void>("bert/finetune");
/** Reads only. */
export const DetectTask = new RequestType<{ file: string }, { task: FinetuneTask; why: string }, void>("bert/detectTask");
/** Reads only. */
export const FillMask = new RequestType<FillMaskParams, FillMaskResult, void>("bert/fillMask");
/** Cancels every running job (each stops after its current step, keeping a checkpoint); the number cancelled. */
export const Cancel = new RequestType0<number, void>("bert/cancel");
/** Stops one job (by StatusResult's job id) after its current step, keeping a checkpoint; false when no such job runs. */
export const StopJob = new RequestType<{ job: string }, boolean, void>("bert/stopJob");
export const Status = new RequestType0<StatusResult, void>("bert/status");
/** Reads only. */
export const ListModels = new RequestType<{ folders: string[] }, ModelInfo[], void>("bert/listModels");
/** How the server runs the models the editor uses: int8 weights or fp32 (the setting bertStudio.int8); the loaded ones are loaded again. */
export const SetInference = new RequestType<{ int8: boolean }, void, void>("bert/setInference");
/** Reads only. Selects a language model for fill-mask or a fine-tuned model for Predict (see SelectResult). */
export const SelectModel = new RequestType<{ dir: string }, SelectResult, void>("bert/selectModel");
/** Reads only: the runs and models of these runs folders, newest first. */
export const ListRuns = new RequestType<{ folders: string[] }, RunInfo[], void>("bert/listRuns");
/**
 * Moves a run folder (inside a workspace's .bert-studio/runs) to the user's trash; refused while a job trains
 * there. Answers where it went. A selected model inside it is deselected.
 */
export const DeleteRun = new RequestType<{ dir: string }, { trashedTo: string }, void>("bert/deleteRun");
/** Reads only (see PredictParams). */
export const Predict = new RequestType<PredictParams, PredictResult, void>("bert/predict");
/** Reads only (see SurpriseParams); honours $/cancelRequest between windows. */
export const Surprise = new RequestType<SurpriseParams, SurpriseResult, void>("bert/surprise");
/** Reads only: the BERT models of the Hugging Face cache ($HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub). */
export const ListCachedModels = new RequestType0<CachedModel[], void>("bert/listCachedModels");
/**
 * Reads only: the text files pretraining would read in `corpus` (the same walk: .gitignore, globs, size
 * limit, binaries skipped) and their size, for the preset picker's estimate. Walks names and sizes only.
 */
export const DescribeCorpus = new RequestType<{ corpus: string; include?: string[]; exclude?: string[]; maxFileMb?: number }, { files: number; bytes: number }, void>("bert/describeCorpus");
/** Reads only (see EstimatePretrainParams). */
export const EstimatePretrain = new RequestType<EstimatePretrainParams, PresetEstimate[], void>("bert/estimatePretrain");
/** Writes only `dest` or the next free `dest-<n>` (see ImportParams). */
export const ImportModel = new RequestType<ImportParams, ModelInfo, void>("bert/importModel");
/** Writes the model's files into `dest`, a folder the user chose in a dialog (see ExportParams). */
export const ExportModel = new RequestType<ExportParams, ExportResult, void>("bert/exportModel");
export const Metrics = new NotificationType<MetricsEvent>("bert/metrics");
/** Log lines of the server (corpus reports, skipped files, warnings) for the output channel. */
export const Message = new NotificationType<{ text: string }>("bert/message");
