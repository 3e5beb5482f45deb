// The five fine-tuning tasks of the BERT paper, each as one table entry: how its file is read, how
// examples become features (token ids, labels), which head trains on them, how the head's outputs become
// predictions, and how predictions are scored.
import { promises as fs } from "node:fs";
import * as path from "node:path";
import * as ort from "onnxruntime-node";
import { inputFeeds, type Head, type InputFeeds } from "../model/heads.js";
import type { BertTokenizer } from "../text/tokenizer.js";
import { softmax } from "../util/softmax.js";
import { accuracy, entityScores, macroF1, squadScores } from "./metrics.js";
import { entities, normalizeTags, tagLabels } from "./ner.js";
import { answerPositions, bestAnswer, DEFAULT_QA, defaultDocStride, qaWindows, type QaWindow } from "./qa.js";
import {
  codePoints,
  DataError,
  parseCsvRecord,
  readChoiceExamples,
  readSquad,
  readTaggedSentences,
  readTextExamples,
  type ChoiceExample,
  type SquadExample,
  type TaggedSentence,
  type TextExample,
} from "./readers.js";

import type { FinetuneTask, TableColumns } from "../../common/protocol.js";

/** One model input row (several for multiple choice) with what training needs of its example. */
export interface Feature {
  /** Index of the example it comes from. */
  example: number;
  inputs: { ids: number[]; typeIds: number[] }[];
  /** Classification / multiple choice label index; -100 when unknown. */
  label?: number;
  /** Token classification labels per token (-100: not scored). */
  tokenLabels?: number[];
  /** QA: answer token positions in this window. */
  start?: number;
  end?: number;
  window?: QaWindow;
  /** NER: the feature covers words [firstWord, firstWord + wordTokens.length); each word's first-piece index (-1: no piece). */
  firstWord?: number;
  wordTokens?: number[];
}

export interface EncodeOptions {
  maxLength: number;
  /** Label names by index (the model's id2label). */
  labels: string[];
  docStride?: number;
  onBadRow?: (message: string) => void;
}

export interface ReadTaskOptions {
  columns?: TableColumns;
  /** Whether rows must carry labels (training and evaluation) or not (prediction). */
  labelled: boolean;
  onBadRow?: (message: string) => void;
}

/** A prediction for one example, as `predict --json` prints it. */
export type Prediction = Record<string, unknown>;

export interface TaskSpec<E> {
  head: Head;
  /** The metric that picks the best checkpoint (higher is better). */
  mainMetric: string;
  /** Model outputs the predictions are read from. */
  outputs: string[];
  read(file: string, opts: ReadTaskOptions): Promise<E[]>;
  /** Label names the training examples use, in the order they get ids. */
  labelsOf(examples: E[]): string[];
  encode(examples: E[], tok: BertTokenizer, opts: EncodeOptions): Promise<Feature[]>;
  predict(examples: E[], features: Feature[], outputs: Map<Feature, Record<string, Float32Array>>, labels: string[]): Prediction[];
  /** Scores of predictions against the examples' labels. */
  score(examples: E[], predictions: Prediction[], labels: string[]): Record<string, number | Record<string, unknown>>;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Sorted label names: numerically when all are numbers. */
function sortedLabels(seen: Iterable<string>): string[] {
  const all = [...new Set(seen)];
  const numeric = all.every((l) => /^-?\d+(\.\d+)?$/.test(l));
  return all.sort((a, b) => (numeric ? Number(a) - Number(b) : a < b ? -1 : a > b ? 1 : 0));
}

function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** Label index of an example, or -100 with a message when the model does not know the label. */
function labelIndex(label: string | undefined, labels: string[], where: string, bad?: (m: string) => void): number {
  if (label === undefined) return -100;
  const i = labels.indexOf(label);
  if (i < 0) bad?.(`${where}: label ${JSON.stringify(label)} is not one the model was trained on (${labels.join(", ")}); not scored`);
  return i < 0 ? -100 : i;
}

function textTask(pair: boolean): TaskSpec<TextExample> {
  return {
    head: "sequence_classification",
    mainMetric: "accuracy",
    outputs: ["logits"],
    read: async (file, o) => {
      const rows = await collect(readTextExamples(file, { pair, columns: o.columns, onBadRow: o.onBadRow }));
      if (!o.labelled) return rows;
      return rows.filter((r) => r.label !== undefined || (o.onBadRow?.(`${file}:${r.line}: no label`), false));
    },
    labelsOf: (examples) => sortedLabels(examples.map((e) => e.label!)),
    async encode(examples, tok, o) {
      const out: Feature[] = [];
      for (let i = 0; i < examples.length; i++) {
        const e = await tok.encode(examples[i].text, examples[i].pair, { maxLength: o.maxLength });
        out.push({ example: i, inputs: [{ ids: e.ids, typeIds: e.typeIds }], label: labelIndex(examples[i].label, o.labels, `line ${examples[i].line}`, o.onBadRow) });
      }
      return out;
    },
    predict: (_examples, features, outputs, labels) =>
      features.map((f) => {
        const p = softmax(outputs.get(f)!.logits);
        return { label: labels[argmax(p)], probabilities: Object.fromEntries(labels.map((l, i) => [l, p[i]])) };
      }),
    score(examples, predictions, labels) {
      const scored = examples.map((e, i) => [e.label, predictions[i].label] as const).filter(([g]) => g !== undefined && labels.includes(g));
      return { accuracy: accuracy(scored.map((s) => s[0]!), scored.map((s) => s[1] as string)), macro_f1: macroF1(scored.map((s) => s[0]!), scored.map((s) => s[1] as string)), examples: scored.length };
    },
  };
}

const choice: TaskSpec<ChoiceExample> = {
  head: "multiple_choice",
  mainMetric: "accuracy",
  outputs: ["logits"],
  read: async (file, o) => {
    const rows = await collect(readChoiceExamples(file, { onBadRow: o.onBadRow }));
    if (!o.labelled) return rows;
    return rows.filter((r) => r.label !== undefined || (o.onBadRow?.(`${file}:${r.line}: no label`), false));
  },
  labelsOf: (examples) => examples[0]?.endings.map((_, i) => String(i)) ?? [],
  async encode(examples, tok, o) {
    const out: Feature[] = [];
    for (let i = 0; i < examples.length; i++) {
      const ex = examples[i];
      if (ex.endings.length !== o.labels.length) {
        o.onBadRow?.(`line ${ex.line}: ${ex.endings.length} endings, the model chooses among ${o.labels.length}; skipped`);
        continue;
      }
      const inputs = [];
      // run_swag: first sentence = sent1, second = sent2 + " " + ending.
      for (const ending of ex.endings) {
        const e = await tok.encode(ex.context, `${ex.start} ${ending}`, { maxLength: o.maxLength });
        inputs.push({ ids: e.ids, typeIds: e.typeIds });
      }
      out.push({ example: i, inputs, label: ex.label ?? -100 });
    }
    return out;
  },
  predict: (examples, features, outputs) => {
    const preds: Prediction[] = examples.map(() => ({ label: null, error: "not predicted" }));
    for (const f of features) {
      const p = softmax(outputs.get(f)!.logits);
      preds[f.example] = { label: argmax(p), probabilities: p };
    }
    return preds;
  },
  score(examples, predictions) {
    const scored = examples.map((e, i) => [e.label, predictions[i].label] as const).filter(([g]) => g !== undefined);
    return { accuracy: accuracy(scored.map((s) => s[0]!), scored.map((s) => s[1] as number)), examples: scored.length };
  },
};

const qa: TaskSpec<SquadExample> = {
  head: "question_answering",
  mainMetric: "f1",
  outputs: ["start_logits", "end_logits"],
  read: async (file, o) => readSquad(file, { onBadRow: o.onBadRow, keepUnanswered: !o.labelled }),
  labelsOf: () => [],
  async encode(examples, tok, o) {
    const out: Feature[] = [];
    const contexts = new Map<string, { ids: number[]; offsets: [number, number][] }>();
    for (let i = 0; i < examples.length; i++) {
      const ex = examples[i];
      let context = contexts.get(ex.context);
      if (!context) {
        const e = await tok.encode(ex.context, null, { addSpecialTokens: false });
        context = { ids: e.ids, offsets: e.offsets };
        contexts.set(ex.context, context);
      }
      const question = (await tok.encode(ex.question.trimStart(), null, { addSpecialTokens: false })).ids;
      const windows = qaWindows(question, context, { cls: tok.clsId, sep: tok.sepId }, { ...DEFAULT_QA, maxLength: o.maxLength, docStride: o.docStride ?? defaultDocStride(o.maxLength) });
      const answer = ex.answers[0];
      for (const w of windows) {
        const [start, end] = answer ? answerPositions(w, answer.start, answer.start + codePoints(answer.text).length) : [-100, -100];
        out.push({ example: i, inputs: [{ ids: w.ids, typeIds: w.typeIds }], start, end, window: w });
      }
    }
    return out;
  },
  predict(examples, features, outputs) {
    const byExample = new Map<number, Feature[]>();
    for (const f of features) (byExample.get(f.example) ?? byExample.set(f.example, []).get(f.example)!).push(f);
    return examples.map((ex, i) => {
      const windows = (byExample.get(i) ?? []).map((f) => ({ window: f.window!, start: outputs.get(f)!.start_logits, end: outputs.get(f)!.end_logits }));
      const a = bestAnswer(codePoints(ex.context), windows, DEFAULT_QA);
      return { id: ex.id, answer: a.text, score: a.score, start: a.start, end: a.end };
    });
  },
  score(examples, predictions) {
    const gold = examples.filter((e) => e.answers.length > 0).map((e) => ({ id: e.id, answers: e.answers.map((a) => a.text) }));
    const s = squadScores(gold, new Map(predictions.map((p) => [p.id as string, p.answer as string])));
    return { ...s, examples: gold.length };
  },
};

/** Words of free text for NER prediction: each CJK character, each run of letters/digits, each other symbol. */
export function splitWords(text: string): { tokens: string[]; offsets: [number, number][] } {
  const chars = codePoints(text);
  const tokens: string[] = [];
  const offsets: [number, number][] = [];
  const word = /[\p{L}\p{N}\p{M}_]/u;
  const cjk = /\p{Script=Han}|\p{Script=Hiragana}|\p{Script=Katakana}|\p{Script=Hangul}/u;
  for (let i = 0; i < chars.length; ) {
    const c = chars[i];
    if (/\s/u.test(c)) {
      i++;
      continue;
    }
    let j = i + 1;
    if (word.test(c) && !cjk.test(c)) while (j < chars.length && word.test(chars[j]) && !cjk.test(chars[j])) j++;
    tokens.push(chars.slice(i, j).join(""));
    offsets.push([i, j]);
    i = j;
  }
  return { tokens, offsets };
}

/** A tagged sentence, with character offsets of its tokens when it came from free text. */
export type NerExample = TaggedSentence & { text?: string; offsets?: [number, number][] };

const ner: TaskSpec<NerExample> = {
  head: "token_classification",
  mainMetric: "f1",
  outputs: ["logits"],
  async read(file, o) {
    let repaired = 0;
    const out = (await collect(readTaggedSentences(file, { onBadRow: o.onBadRow, tagged: o.labelled }))).map((s) => {
      const n = normalizeTags(s.tags);
      repaired += n.repaired;
      return { ...s, tags: n.tags };
    });
    if (repaired > 0 && o.labelled) o.onBadRow?.(`${file}: ${repaired} I- tags that start an entity read as B- (IOB1 or mismatched BIO; normalised to BIO)`);
    return out;
  },
  labelsOf: (examples) => tagLabels(examples.flatMap((e) => e.tags)),
  async encode(examples, tok, o) {
    const out: Feature[] = [];
    const room = o.maxLength - 2;
    for (let i = 0; i < examples.length; i++) {
      const ex = examples[i];
      const pieces = await tok.tokenizeBatch(ex.tokens);
      const tagIds = ex.tags.map((t) => {
        const k = o.labels.indexOf(t);
        if (k < 0 && t !== "O") o.onBadRow?.(`line ${ex.line}: tag ${t} is not one the model was trained on; not scored`);
        return k < 0 ? -100 : k;
      });
      // Words are packed into features of at most maxLength tokens; a word longer than that is cut.
      for (let w = 0; w < ex.tokens.length; ) {
        const ids = [tok.clsId];
        const labels = [-100];
        const wordTokens: number[] = [];
        const first = w;
        while (w < ex.tokens.length && (wordTokens.length === 0 || ids.length - 1 + pieces[w].length <= room)) {
          const p = Array.from(pieces[w].subarray(0, room - (ids.length - 1)));
          wordTokens.push(p.length > 0 ? ids.length : -1);
          p.forEach((id, k) => {
            ids.push(id);
            labels.push(k === 0 ? tagIds[w] : -100);
          });
          w++;
        }
        ids.push(tok.sepId);
        labels.push(-100);
        out.push({ example: i, inputs: [{ ids, typeIds: ids.map(() => 0) }], tokenLabels: labels, firstWord: first, wordTokens });
      }
    }
    return out;
  },
  predict(examples, features, outputs, labels) {
    const tags = examples.map((e) => e.tokens.map(() => "O"));
    for (const f of features) {
      const logits = outputs.get(f)!.logits;
      const n = labels.length;
      f.wordTokens!.forEach((t, k) => {
        if (t >= 0) tags[f.example][f.firstWord! + k] = labels[argmax(logits.subarray(t * n, (t + 1) * n))];
      });
    }
    return examples.map((ex, i) => {
      const t = normalizeTags(tags[i]).tags; // a predicted I-X after O reads as B-X, as conlleval does
      return {
        tags: t,
        entities: entities(t).map((e) => {
          const text = ex.text !== undefined && ex.offsets ? codePoints(ex.text).slice(ex.offsets[e.start][0], ex.offsets[e.end - 1][1]).join("") : ex.tokens.slice(e.start, e.end).join(" ");
          return { type: e.type, text, ...(ex.offsets ? { start: ex.offsets[e.start][0], end: ex.offsets[e.end - 1][1] } : { first_token: e.start, last_token: e.end - 1 }) };
        }),
      };
    });
  },
  score(examples, predictions) {
    const s = entityScores(examples.map((e) => e.tags), predictions.map((p) => p.tags as string[]));
    return { precision: s.micro.precision, recall: s.micro.recall, f1: s.micro.f1, per_type: s.perType, sentences: examples.length };
  },
};

export const TASK_SPECS: Record<FinetuneTask, TaskSpec<unknown>> = {
  classify: textTask(false) as TaskSpec<unknown>,
  pair: textTask(true) as TaskSpec<unknown>,
  choice: choice as TaskSpec<unknown>,
  qa: qa as TaskSpec<unknown>,
  ner: ner as TaskSpec<unknown>,
};

/** Extensions of prose: such a file is a labelled table only when its columns are tab- or `_!_`-separated. */
const PROSE = new Set([".md", ".markdown", ".rst", ".html", ".htm", ".txt"]);
const NEEDS_TABLE = "fine-tuning needs a labelled table (TSV/CSV with text and label columns, JSON lines, CoNLL, SQuAD JSON, SWAG CSV)";

/**
 * The task a file is for, from its layout: SQuAD JSON → qa; SWAG CSV header → choice; token-and-tag
 * lines → ner; two texts and a label → pair; else classify. Returns the task and why. A file that is no
 * labelled table is refused (DataError) before anything trains: prose (Markdown, a .txt of sentences)
 * would otherwise read as a one-column table, or its commas as columns.
 */
export async function detectTask(file: string): Promise<{ task: FinetuneTask; why: string }> {
  const handle = await fs.open(file, "r").catch((e: NodeJS.ErrnoException) => {
    throw new DataError(`${file}: cannot read (${e.code ?? e.message})`);
  });
  const buf = Buffer.alloc(65536);
  const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
  await handle.close();
  const head = buf.subarray(0, bytesRead).toString("utf8").replace(/^\uFEFF/, "");
  const firstLines = head.split(/\r?\n/).filter((l) => l.trim() !== "").slice(0, 20);
  if (firstLines.length === 0) throw new DataError(`${file}: the file is empty`);
  if (/^\s*\{[\s\S]*"data"\s*:\s*\[/.test(head) && head.includes('"paragraphs"')) return { task: "qa", why: "SQuAD JSON (data/paragraphs/qas)" };
  if (/(^|,)sent1(,|$)/.test(firstLines[0]) && firstLines[0].includes("ending0")) return { task: "choice", why: "SWAG CSV header (sent1, sent2, ending0..)" };
  const tagged = firstLines.filter((l) => l !== "-DOCSTART-" && !l.startsWith("-DOCSTART-"));
  if (tagged.length > 0 && tagged.every((l) => /^\S+(\s+\S+)*\s+(O|[BIES]-\S+)$/.test(l.trim()) && l.trim().split(/\s+/).length <= 6)) {
    return { task: "ner", why: "one token and its tag per line (CoNLL)" };
  }
  const first = firstLines[0];
  if (first.trimStart().startsWith("{")) {
    try {
      const obj = JSON.parse(first) as Record<string, unknown>;
      const pair = ["text_pair", "sentence2", "hypothesis", "question2"].some((k) => k in obj);
      return { task: pair ? "pair" : "classify", why: `JSON lines with ${Object.keys(obj).join(", ")}` };
    } catch {
      // not JSON lines after all
    }
  }
  const sep = first.includes("_!_") ? "_!_" : first.includes("\t") ? "\t" : ",";
  const fields = (l: string) => (sep === "," ? (parseCsvRecord(l) ?? l.split(",")) : l.split(sep));
  // A row has two fields that are not blank (a tab-indented line of prose has one); most first lines are rows.
  const isRow = (l: string) => fields(l).filter((f) => f.trim() !== "").length >= 2;
  const table = isRow(first) && 2 * firstLines.filter(isRow).length >= firstLines.length;
  if (PROSE.has(path.extname(file).toLowerCase()) && (sep === "," || !table)) throw new DataError(`${file} is prose (no label column): ${NEEDS_TABLE}`);
  if (!table) throw new DataError(`${file}: its first lines have one column (no label column): ${NEEDS_TABLE}`);
  const cols = first.split(sep);
  const lower = cols.map((c) => c.trim().toLowerCase());
  if (lower.some((c) => ["sentence2", "hypothesis", "text_pair", "question2"].includes(c))) return { task: "pair", why: `a header with a second text column (${cols.join(", ")})` };
  if (first.includes("_!_") && cols.length === 3) return { task: "pair", why: "text_!_text_!_label lines" };
  return { task: "classify", why: `${cols.length} columns: text and label` };
}

/** Inputs of a batch of features, padded to its longest row; with `labelled`, the head's label inputs too. */
export function collateFeatures(task: FinetuneTask, features: Feature[], padId: number, labelled: boolean): Record<string, ort.Tensor> {
  const B = features.length;
  const C = features[0].inputs.length;
  const T = Math.max(...features.flatMap((f) => f.inputs.map((x) => x.ids.length)));
  const ids = new BigInt64Array(B * C * T).fill(BigInt(padId));
  const types = new BigInt64Array(B * C * T);
  const mask = new BigInt64Array(B * C * T);
  features.forEach((f, b) =>
    f.inputs.forEach((x, c) => {
      const at = (b * C + c) * T;
      x.ids.forEach((id, t) => {
        ids[at + t] = BigInt(id);
        types[at + t] = BigInt(x.typeIds[t]);
        mask[at + t] = 1n;
      });
    }),
  );
  const shape = task === "choice" ? [B, C, T] : [B, T];
  const feeds: InputFeeds = {
    input_ids: new ort.Tensor("int64", ids, shape),
    token_type_ids: new ort.Tensor("int64", types, shape),
    attention_mask: new ort.Tensor("int64", mask, shape),
  };
  if (!labelled) return inputFeeds(feeds);
  const i64 = (xs: number[], dims: number[]) => new ort.Tensor("int64", BigInt64Array.from(xs, (x) => BigInt(x)), dims);
  if (task === "qa") {
    feeds.start_positions = i64(features.map((f) => f.start ?? -100), [B]);
    feeds.end_positions = i64(features.map((f) => f.end ?? -100), [B]);
  } else if (task === "ner") {
    feeds.labels = i64(features.flatMap((f) => Array.from({ length: T }, (_, t) => f.tokenLabels![t] ?? -100)), [B, T]);
  } else {
    feeds.labels = i64(features.map((f) => f.label ?? -100), [B]);
  }
  return inputFeeds(feeds);
}

/** Splits batch outputs back into per-feature rows (NER and QA rows keep only the feature's own tokens). */
export function splitOutputs(features: Feature[], out: Record<string, ort.Tensor>, names: string[], into: Map<Feature, Record<string, Float32Array>>): void {
  features.forEach((f, b) => {
    const row: Record<string, Float32Array> = {};
    for (const name of names) {
      const t = out[name];
      const per = (t.data as Float32Array).length / features.length;
      row[name] = (t.data as Float32Array).slice(b * per, (b + 1) * per);
    }
    into.set(f, row);
  });
}
