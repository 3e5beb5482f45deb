// A fine-tuned model folder in use: its task, labels and tokenizer, an eval-mode inference session, and
// predict / evaluate over a file or a text.
import * as path from "node:path";
import type * as ort from "onnxruntime-node";
import { readConfig, type BertConfig } from "../model/config.js";
import { loadInferenceSession } from "./session-cache.js";
import { openModelFolder } from "../model/folder.js";
import type { Device } from "../../common/settings.js";
import { exists } from "../util/fs.js";
import { BertTokenizer } from "../text/tokenizer.js";
import { DataError } from "../tasks/readers.js";
import { forwardFeatures, labelsOfConfig, taskOfConfig, type TaskSettings } from "../tasks/task-config.js";
import { splitWords, TASK_SPECS, type Prediction, type ReadTaskOptions } from "../tasks/tasks.js";
import type { FinetuneTask } from "../../common/protocol.js";

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

  /** `int8`: int8 weights in the dense layers (inference/quantize.ts). */
  static async load(dir: string, device: Device = "cpu", o: { int8?: boolean } = {}): Promise<TaskModel> {
    const resolved = await resolveModelDir(dir);
    const taskOf = (cfg: BertConfig) => taskOfConfig(cfg, path.join(resolved, "config.json"));
    taskOf(await readConfig(resolved)); // a config that names no task is refused before its tokenizer is read
    const { cfg, tokenizer } = await openModelFolder(resolved, BertTokenizer.fromDir);
    const task = taskOf(cfg);
    const spec = TASK_SPECS[task];
    const settings = { max_length: 128, ...(cfg.extra.bert_studio as Partial<TaskSettings> | undefined) };
    const { session } = await loadInferenceSession(resolved, cfg, spec.head, { outputs: spec.outputs, device, int8: o.int8 });
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
