// A fine-tuned model folder in use: its task, labels and tokenizer, an eval-mode inference session, and
// predict / evaluate over a file or a text. Also the batched forward pass the trainer's evaluation shares.
import * as path from "node:path";
import type * as ort from "onnxruntime-node";
import { readConfig, type BertConfig } from "../model/config.js";
import { taskFromArchitectures } from "../model/heads.js";
import { createInferenceSession } from "../model/inference.js";
import { checkModelFolder, loadParams, ParamStore, paramShapes, requireComplete } from "../model/params.js";
import { readSafetensors } from "../model/safetensors.js";
import type { Device } from "../model/session.js";
import { exists } from "../training/run-folder.js";
import { BertTokenizer } from "../training/tokenizer.js";
import { DataError } from "./readers.js";
import { collateFeatures, FINETUNE_TASKS, splitOutputs, splitWords, TASK_SPECS, type Feature, type FinetuneTask, type Prediction, type ReadTaskOptions } from "./tasks.js";

/** What fine-tuning records in config.json besides HF's keys. */
export interface TaskSettings {
  max_length: number;
  doc_stride?: number;
}

/** The fine-tuning task of a model folder: config.json's `finetuning_task`, else its architecture. */
export function taskOfConfig(cfg: BertConfig, source: string): FinetuneTask {
  const t = cfg.extra.finetuning_task;
  if (typeof t === "string" && (FINETUNE_TASKS as readonly string[]).includes(t)) return t as FinetuneTask;
  const head = taskFromArchitectures(cfg.architectures);
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

/** A model folder, or its `best/` checkpoint when it is a fine-tuning run that has one. */
export async function resolveModelDir(dir: string): Promise<string> {
  return (await exists(path.join(dir, "best", "config.json"))) ? path.join(dir, "best") : dir;
}

export class TaskModel {
  private constructor(
    readonly dir: string,
    readonly task: FinetuneTask,
    readonly labels: string[],
    readonly settings: TaskSettings,
    readonly tokenizer: BertTokenizer,
    private readonly session: ort.InferenceSession,
  ) {}

  static async load(dir: string, device: Device = "cpu"): Promise<TaskModel> {
    const resolved = await resolveModelDir(dir);
    const cfg = await readConfig(resolved);
    const task = taskOfConfig(cfg, path.join(resolved, "config.json"));
    const spec = TASK_SPECS[task];
    const tokenizer = await BertTokenizer.fromDir(resolved);
    await checkModelFolder(resolved, cfg, tokenizer);
    const params = ParamStore.fromShapes(paramShapes(cfg, spec.head));
    const file = path.join(resolved, "model.safetensors");
    requireComplete(loadParams(params, (await readSafetensors(file)).tensors, file), resolved);
    const settings = { max_length: 128, ...(cfg.extra.bert_studio as Partial<TaskSettings> | undefined) };
    const session = await createInferenceSession(cfg, spec.head, params, { outputs: spec.outputs, device });
    return new TaskModel(resolved, task, labelsOfConfig(cfg), settings, tokenizer, session);
  }

  /** Predictions for examples as the task's reader returns them. */
  async predictExamples(examples: unknown[], onBadRow?: (m: string) => void): Promise<Prediction[]> {
    const spec = TASK_SPECS[this.task];
    const features = await spec.encode(examples, this.tokenizer, { maxLength: this.settings.max_length, docStride: this.settings.doc_stride, labels: this.labels, onBadRow });
    const outputs = await forwardFeatures(this.task, features, (feeds) => this.session.run(feeds), { batchSize: 16, padId: this.tokenizer.padId, labelled: false });
    return spec.predict(examples, features, outputs, this.labels);
  }

  readFile(file: string, opts: ReadTaskOptions): Promise<unknown[]> {
    return TASK_SPECS[this.task].read(file, opts);
  }

  /** Examples from free text: the text (classify), text + pair (pair), context + question (qa), words (ner). */
  fromText(text: string, opts: { pair?: string; question?: string }): unknown[] {
    switch (this.task) {
      case "classify":
        return [{ text, line: 0 }];
      case "pair":
        if (!opts.pair) throw new DataError("a sentence-pair model needs the second text: --pair TEXT");
        return [{ text, pair: opts.pair, line: 0 }];
      case "qa":
        if (!opts.question) throw new DataError("a question-answering model needs a question: --question TEXT (the text is the context)");
        return [{ id: "0", title: "", question: opts.question, context: text, answers: [] }];
      case "ner": {
        const { tokens, offsets } = splitWords(text);
        if (tokens.length === 0) throw new DataError("the text has no words");
        return [{ tokens, tags: tokens.map(() => "O"), line: 0, text, offsets }];
      }
      case "choice":
        throw new DataError("a multiple-choice model predicts from a SWAG-layout CSV file (sent1, sent2, ending0..), not from one text");
    }
  }

  /** Scores on a labelled file: the task's metrics plus the number of rows skipped and why. */
  async evaluate(file: string, opts: { columns?: ReadTaskOptions["columns"]; onBadRow?: (m: string) => void } = {}): Promise<Record<string, unknown>> {
    const spec = TASK_SPECS[this.task];
    const examples = await spec.read(file, { labelled: true, columns: opts.columns, onBadRow: opts.onBadRow });
    if (examples.length === 0) throw new DataError(`${file}: no labelled examples`);
    const predictions = await this.predictExamples(examples, opts.onBadRow);
    return { task: this.task, model: this.dir, ...spec.score(examples, predictions, this.labels) };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
