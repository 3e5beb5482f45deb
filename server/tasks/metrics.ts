// Task metrics: accuracy and macro-F1; SQuAD v1.1 exact match and F1 (the official evaluate-v1.1.py
// rules); entity-level precision, recall and F1 per type and micro-averaged (seqeval, strict BIO).
import { entities } from "./ner.js";

export function accuracy(gold: readonly (string | number)[], pred: readonly (string | number)[]): number {
  if (gold.length === 0) return 0;
  let hit = 0;
  for (let i = 0; i < gold.length; i++) if (gold[i] === pred[i]) hit++;
  return hit / gold.length;
}

/** Mean over classes (those in gold or predictions) of each class's F1, as sklearn's f1_score(average="macro"). */
export function macroF1(gold: readonly (string | number)[], pred: readonly (string | number)[]): number {
  const classes = new Set([...gold, ...pred]);
  if (classes.size === 0) return 0;
  let sum = 0;
  for (const c of classes) {
    let tp = 0, fp = 0, fn = 0;
    for (let i = 0; i < gold.length; i++) {
      if (pred[i] === c && gold[i] === c) tp++;
      else if (pred[i] === c) fp++;
      else if (gold[i] === c) fn++;
    }
    sum += tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
  }
  return sum / classes.size;
}

// Python's \w (str.isalnum() or "_") for the article rule's word boundaries.
const ARTICLES = /(?<![\p{L}\p{N}_])(a|an|the)(?![\p{L}\p{N}_])/gu;
const PUNCTUATION = new Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");

/** evaluate-v1.1.py's normalize_answer: lower-case, drop punctuation, drop articles, collapse white space. */
export function normalizeAnswer(s: string): string {
  const noPunct = Array.from(s.toLowerCase()).filter((c) => !PUNCTUATION.has(c)).join("");
  return noPunct.replace(ARTICLES, " ").split(/\s+/u).filter(Boolean).join(" ");
}

function tokenF1(prediction: string, gold: string): number {
  const p = normalizeAnswer(prediction).split(" ").filter(Boolean);
  const g = normalizeAnswer(gold).split(" ").filter(Boolean);
  const counts = new Map<string, number>();
  for (const t of g) counts.set(t, (counts.get(t) ?? 0) + 1);
  let same = 0;
  for (const t of p) {
    const c = counts.get(t) ?? 0;
    if (c > 0) {
      same++;
      counts.set(t, c - 1);
    }
  }
  if (same === 0) return 0;
  const precision = same / p.length;
  const recall = same / g.length;
  return (2 * precision * recall) / (precision + recall);
}

/**
 * SQuAD v1.1: per question the best exact match and F1 over its gold answers, averaged, in percent.
 * A question without a prediction scores 0 (the official script warns and does the same).
 */
export function squadScores(gold: { id: string; answers: string[] }[], predictions: Map<string, string>): { exact_match: number; f1: number } {
  let em = 0, f1 = 0;
  for (const q of gold) {
    const p = predictions.get(q.id);
    if (p === undefined) continue;
    em += Math.max(...q.answers.map((a) => (normalizeAnswer(p) === normalizeAnswer(a) ? 1 : 0)));
    f1 += Math.max(...q.answers.map((a) => tokenF1(p, a)));
  }
  const n = Math.max(1, gold.length);
  return { exact_match: (100 * em) / n, f1: (100 * f1) / n };
}

export interface Prf {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

/** Entity-level scores over sentences of BIO tags: per type and micro-averaged (seqeval, strict IOB2). */
export function entityScores(gold: string[][], pred: string[][]): { micro: Prf; perType: Record<string, Prf> } {
  const counts = new Map<string, { tp: number; predicted: number; gold: number }>();
  const get = (t: string) => counts.get(t) ?? counts.set(t, { tp: 0, predicted: 0, gold: 0 }).get(t)!;
  gold.forEach((g, i) => {
    const key = (e: { type: string; start: number; end: number }) => `${e.type}\u0000${e.start}\u0000${e.end}`;
    const ge = entities(g);
    const pe = entities(pred[i]);
    const goldKeys = new Set(ge.map(key));
    for (const e of ge) get(e.type).gold++;
    for (const e of pe) {
      const c = get(e.type);
      c.predicted++;
      if (goldKeys.has(key(e))) c.tp++;
    }
  });
  const prf = (tp: number, predicted: number, g: number): Prf => {
    const precision = predicted === 0 ? 0 : tp / predicted;
    const recall = g === 0 ? 0 : tp / g;
    return { precision, recall, f1: precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall), support: g };
  };
  const perType: Record<string, Prf> = {};
  let tp = 0, predicted = 0, g = 0;
  for (const [type, c] of [...counts].sort(([a], [b]) => (a < b ? -1 : 1))) {
    perType[type] = prf(c.tp, c.predicted, c.gold);
    tp += c.tp;
    predicted += c.predicted;
    g += c.gold;
  }
  return { micro: prf(tp, predicted, g), perType };
}
