// Extractive QA as HF's run_qa.py does it: a context longer than the room left after the question is
// cut into windows that overlap by `docStride` tokens; a training window that does not hold the answer
// points at [CLS]; prediction picks the best (start, end) over all windows of a question from the n-best
// start and end logits, at most `maxAnswerLength` tokens long, mapped back to the context's characters.

export interface QaWindow {
  /** Input ids: [CLS] question [SEP] context piece [SEP]. */
  ids: number[];
  typeIds: number[];
  /** Per token: its [start, end) code-point offsets in the context, or null outside the context. */
  contextOffsets: ([number, number] | null)[];
}

export interface QaEncodingOptions {
  maxLength: number;
  docStride: number;
  maxQueryLength: number;
}

export const DEFAULT_QA: QaEncodingOptions & { nBest: number; maxAnswerLength: number } = {
  maxLength: 384,
  docStride: 128,
  maxQueryLength: 64,
  nBest: 20,
  maxAnswerLength: 30,
};

/** run_qa's doc stride (128) when the windows are long enough for it, else a third of the window. */
export function defaultDocStride(maxLength: number): number {
  return Math.min(DEFAULT_QA.docStride, Math.floor(maxLength / 3));
}

/** Windows over the context tokens (ids and offsets from the tokenizer without special tokens). */
export function qaWindows(
  question: number[],
  context: { ids: number[]; offsets: [number, number][] },
  special: { cls: number; sep: number },
  opts: QaEncodingOptions,
): QaWindow[] {
  const q = question.slice(0, opts.maxQueryLength);
  const room = opts.maxLength - q.length - 3;
  if (room <= opts.docStride) {
    throw new Error(`max length ${opts.maxLength} leaves ${room} tokens of context after a ${q.length}-token question, not more than --doc-stride ${opts.docStride}`);
  }
  const windows: QaWindow[] = [];
  for (let start = 0; ; start += room - opts.docStride) {
    const end = Math.min(start + room, context.ids.length);
    const piece = context.ids.slice(start, end);
    windows.push({
      ids: [special.cls, ...q, special.sep, ...piece, special.sep],
      typeIds: [...Array<number>(q.length + 2).fill(0), ...Array<number>(piece.length + 1).fill(1)],
      contextOffsets: [...Array<null>(q.length + 2).fill(null), ...context.offsets.slice(start, end), null],
    });
    if (end >= context.ids.length) break;
  }
  return windows;
}

/**
 * Token positions of the answer [startChar, endChar) in a window, or [0, 0] ([CLS]) when the window
 * does not hold all of it (run_qa's rule).
 */
export function answerPositions(w: QaWindow, startChar: number, endChar: number): [number, number] {
  const inContext = w.contextOffsets.map((o, i) => (o ? i : -1)).filter((i) => i >= 0);
  if (inContext.length === 0) return [0, 0];
  const first = inContext[0];
  const last = inContext[inContext.length - 1];
  if (!(w.contextOffsets[first]![0] <= startChar && w.contextOffsets[last]![1] >= endChar)) return [0, 0];
  let s = first;
  while (s <= last && w.contextOffsets[s]![0] <= startChar) s++;
  let e = last;
  while (e >= first && w.contextOffsets[e]![1] >= endChar) e--;
  return [s - 1, e + 1];
}

export interface QaAnswer {
  text: string;
  /** Code-point offsets in the context. */
  start: number;
  end: number;
  /** start logit + end logit. */
  score: number;
}

function topIndices(logits: ArrayLike<number>, n: number): number[] {
  return Array.from({ length: logits.length }, (_, i) => i)
    .sort((a, b) => logits[b] - logits[a])
    .slice(0, n);
}

/** The best answer over the windows of one question; empty text when no span is valid. */
export function bestAnswer(
  context: string[],
  windows: { window: QaWindow; start: ArrayLike<number>; end: ArrayLike<number> }[],
  opts: { nBest: number; maxAnswerLength: number },
): QaAnswer {
  let best: QaAnswer = { text: "", start: 0, end: 0, score: -Infinity };
  for (const { window, start, end } of windows) {
    const offsets = window.contextOffsets;
    for (const s of topIndices(start, opts.nBest)) {
      for (const e of topIndices(end, opts.nBest)) {
        if (s >= offsets.length || e >= offsets.length || !offsets[s] || !offsets[e]) continue;
        if (e < s || e - s + 1 > opts.maxAnswerLength) continue;
        const score = start[s] + end[e];
        if (score > best.score) {
          const [a, b] = [offsets[s]![0], offsets[e]![1]];
          best = { text: context.slice(a, b).join(""), start: a, end: b, score };
        }
      }
    }
  }
  return best;
}
