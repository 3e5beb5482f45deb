// What a fine-tuned model's config.json says of its task (task, labels, settings), and running features
// through a forward function in batches: shared by the fine-tuning trainer and task inference.
import type * as ort from "onnxruntime-node";
import type { BertConfig } from "../model/config.js";
import { headFromArchitectures } from "../model/heads.js";
import { DataError } from "./readers.js";
import { collateFeatures, splitOutputs, TASK_SPECS, type Feature } from "./tasks.js";
import { FINETUNE_TASKS, type FinetuneTask } from "../../common/protocol.js";

/** What fine-tuning records in config.json besides HF's keys. */
export interface TaskSettings {
  max_length: number;
  doc_stride?: number;
}

/** The fine-tuning task of a model folder: config.json's `finetuning_task`, else its architecture. */
export function taskOfConfig(cfg: BertConfig, source: string): FinetuneTask {
  const t = cfg.extra.finetuning_task;
  if (typeof t === "string" && (FINETUNE_TASKS as readonly string[]).includes(t)) return t as FinetuneTask;
  const head = headFromArchitectures(cfg.architectures);
  const byHead: Record<string, FinetuneTask> = { sequence_classification: "classify", multiple_choice: "choice", question_answering: "qa", token_classification: "ner" };
  if (head && byHead[head]) return byHead[head];
  throw new DataError(`${source}: not a fine-tuned model (architectures ${JSON.stringify(cfg.architectures ?? [])}); fine-tune one with \`bert-studio finetune\``);
}

export function labelsOfConfig(cfg: BertConfig): string[] {
  return cfg.id2label ? Object.entries(cfg.id2label).sort(([a], [b]) => Number(a) - Number(b)).map(([, l]) => l) : [];
}

/**
 * Runs `features` through `forward` in batches of `batchSize` (padded per batch) and returns each
 * feature's rows of `outputs`.
 */
export async function forwardFeatures(
  task: FinetuneTask,
  features: Feature[],
  forward: (feeds: Record<string, ort.Tensor>) => Promise<Record<string, ort.Tensor>>,
  opts: { batchSize: number; padId: number; labelled: boolean },
): Promise<Map<Feature, Record<string, Float32Array>>> {
  const out = new Map<Feature, Record<string, Float32Array>>();
  const names = TASK_SPECS[task].outputs;
  // Sorting by length keeps padding small; results are keyed by feature, so order does not matter.
  const sorted = [...features].sort((a, b) => a.inputs[0].ids.length - b.inputs[0].ids.length);
  for (let i = 0; i < sorted.length; i += opts.batchSize) {
    const batch = sorted.slice(i, i + opts.batchSize);
    splitOutputs(batch, await forward(collateFeatures(task, batch, opts.padId, opts.labelled)), names, out);
  }
  return out;
}
