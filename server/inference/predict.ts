// BERT: Predict on one text in the editor: a fine-tuned model's prediction (server/tasks' predict, as the CLI
// prints it) in the protocol's shape, with offsets in UTF-16 code units, the editor's, where the tasks
// count code points (an emoji before an entity is one code point and two code units).
import * as path from "node:path";
import type { PredictParams, PredictResult } from "../../common/protocol.js";
import type { Device } from "../../common/settings.js";
import { readConfig } from "../model/config.js";
import { DataError } from "../tasks/readers.js";
import { taskOfConfig } from "../tasks/task-config.js";
import { resolveModelDir, TaskModel } from "./task-model.js";

/** Where each code point of `text` starts in UTF-16 code units; the last entry is text.length. */
export function utf16Offsets(text: string): number[] {
  const at = [0];
  for (const c of text) at.push(at[at.length - 1] + c.length);
  return at;
}

/** A fine-tuned model folder (or its run's best/) for Predict; a language model is refused, saying what to do. */
export async function loadTaskModel(dir: string, o: { device?: Device; int8?: boolean } = {}): Promise<TaskModel> {
  const resolved = await resolveModelDir(dir);
  const cfg = await readConfig(resolved);
  try {
    taskOfConfig(cfg, path.join(resolved, "config.json"));
  } catch (e) {
    if (!(e instanceof DataError)) throw e;
    const architecture = cfg.architectures?.[0] ?? "BertModel";
    throw new DataError(`${dir} is a language model (${architecture}), not a fine-tuned one: fine-tune it on a labelled file first, or select a fine-tuned model`);
  }
  return TaskModel.load(dir, o.device ?? "cpu", { int8: o.int8 });
}

/**
 * The model's prediction for one text: classify and pair, the label and every label's probability (most
 * likely first); ner, the entities; qa, the answer in `text` (the context) to `question`, scored by its
 * start + end logits as run_qa does (not a probability), or an empty answer (score 0) when no span of the
 * context is a valid one.
 */
export async function predictText(model: TaskModel, p: Omit<PredictParams, "model">): Promise<PredictResult> {
  const { task } = model;
  // TaskModel.fromText words these for the command line (--pair, --question): the editor's words here.
  if (task === "choice") throw new DataError(`${model.dir} is a multiple-choice model: it predicts from a SWAG-layout CSV file (sent1, sent2, ending0..), not from one text; evaluate it on such a file`);
  if (task === "pair" && !p.pair) throw new DataError(`${model.dir} is a sentence-pair model: it needs a second text`);
  if (task === "qa" && !p.question?.trim()) throw new DataError(`${model.dir} answers questions: it needs a question (the text is the context)`);
  const [prediction] = await model.predictExamples(model.fromText(p.text, { pair: p.pair, question: p.question }));
  const at = utf16Offsets(p.text);
  const span = (start: number, end: number) => ({ text: p.text.slice(at[start], at[end]), start: at[start], end: at[end] });
  switch (task) {
    case "classify":
    case "pair": {
      const probabilities = Object.entries(prediction.probabilities as Record<string, number>)
        .map(([label, score]) => ({ label, score }))
        .sort((a, b) => b.score - a.score);
      return { model: model.dir, task, label: prediction.label as string, probabilities };
    }
    case "ner": {
      const found = prediction.entities as { type: string; start: number; end: number }[];
      return { model: model.dir, task, entities: found.map((e) => ({ type: e.type, ...span(e.start, e.end) })) };
    }
    case "qa": {
      const a = prediction as { score: number; start: number; end: number };
      const answer = Number.isFinite(a.score) ? { ...span(a.start, a.end), score: a.score } : { text: "", start: 0, end: 0, score: 0 };
      return { model: model.dir, task, answer };
    }
  }
}
