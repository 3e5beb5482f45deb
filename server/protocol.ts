// The custom requests and notifications between the extension (client/) and the BERT server (server/lsp.ts):
// one typed definition that both sides import. Long jobs report LSP work-done progress and honour
// $/cancelRequest; their metrics stream as `bert/metrics` notifications.
import { NotificationType, RequestType, RequestType0 } from "vscode-languageserver-protocol";

export interface PretrainParams {
  /** Folder of text to pretrain on (a workspace folder). */
  folder: string;
  /** Run folder; a run already there is resumed when `resume` is set. */
  out: string;
  preset: "tiny" | "small" | "base";
  steps: number;
  batch: number;
  seq: number;
  lr: number;
  schedule: string;
  device: string;
  /** WordPiece vocabulary file; without it, one of `trainVocab` tokens is trained on the folder. */
  vocab?: string;
  trainVocab?: number;
  include?: string[];
  exclude?: string[];
  maxFileMb?: number;
  resume: boolean;
  evalEvery?: number;
  checkpointEvery?: number;
}

export interface FinetuneParams {
  task: "classify" | "pair" | "choice" | "qa" | "ner" | "auto";
  train: string;
  eval?: string;
  model: string;
  out: string;
  epochs: number;
  batch: number;
  maxLength: number;
  lr: number;
  schedule: string;
  device: string;
  resume: boolean;
}

export interface JobResult {
  out: string;
  /** True when the job was cancelled (a checkpoint was kept). */
  stopped: boolean;
  steps: number;
  /** Final metrics row. */
  metrics?: Record<string, number>;
}

export interface MetricsEvent {
  job: string;
  kind: "pretrain" | "finetune";
  out: string;
  row: Record<string, number>;
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

export interface PredictParams {
  model: string;
  text: string;
  pair?: string;
  question?: string;
}

export interface StatusResult {
  model: string | undefined;
  /** The server's process id. */
  pid: number;
  jobs: { id: string; kind: "pretrain" | "finetune"; out: string; step: number; steps: number; loss?: number }[];
}

export interface ModelInfo {
  dir: string;
  architecture: string;
  task?: string;
}

export interface ExportParams {
  model: string;
  format: "onnx" | "hf";
  dest: string;
}

export const Pretrain = new RequestType<PretrainParams, JobResult, void>("bert/pretrain");
export const Finetune = new RequestType<FinetuneParams, JobResult, void>("bert/finetune");
export const DetectTask = new RequestType<{ file: string }, { task: "classify" | "pair" | "choice" | "qa" | "ner"; why: string }, void>("bert/detectTask");
export const FillMask = new RequestType<FillMaskParams, FillMaskResult, void>("bert/fillMask");
export const Predict = new RequestType<PredictParams, Record<string, unknown>, void>("bert/predict");
/** Cancels every running job (each stops after its current step, keeping a checkpoint). */
export const Cancel = new RequestType0<number, void>("bert/cancel");
export const Status = new RequestType0<StatusResult, void>("bert/status");
export const ListModels = new RequestType<{ folders: string[] }, ModelInfo[], void>("bert/listModels");
export const SelectModel = new RequestType<{ dir: string }, ModelInfo, void>("bert/selectModel");
export const ImportModel = new RequestType<{ dir: string; dest: string }, ModelInfo, void>("bert/importModel");
export const ExportModel = new RequestType<ExportParams, { files: string[] }, void>("bert/exportModel");
export const Metrics = new NotificationType<MetricsEvent>("bert/metrics");
/** Log lines of the server (corpus reports, skipped files, warnings) for the output channel. */
export const Message = new NotificationType<{ text: string }>("bert/message");
