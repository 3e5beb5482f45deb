// WordPiece vocabulary training, as HF tokenizers' WordPieceTrainer (the BertWordPieceTokenizer recipe):
// words come from BERT normalisation + pre-tokenisation; the vocabulary starts with the special tokens
// and the alphabet (at most `limitAlphabet` most frequent characters), non-initial characters carry the
// "##" prefix, then the most frequent adjacent pair is merged (min frequency `minFrequency`) until
// `vocabSize` is reached. The npm binding of `tokenizers` cannot set a trainer's size, hence this.
import { bertNormalizer, bertPreTokenizer } from "tokenizers";
import { SPECIAL_TOKENS } from "./tokenizer.js";

export interface VocabTrainerOptions {
  vocabSize: number;
  minFrequency?: number;
  limitAlphabet?: number;
  lowercase?: boolean;
}

const PREFIX = "##";

/** Counts the words of the texts after BERT normalisation and pre-tokenisation. */
export class WordCounter {
  readonly counts = new Map<string, number>();
  private readonly normalizer;
  private readonly preTokenizer = bertPreTokenizer();

  constructor(lowercase = true) {
    this.normalizer = bertNormalizer({ cleanText: true, handleChineseChars: true, stripAccents: lowercase, lowercase });
  }

  add(text: string): void {
    if (!text.trim()) return;
    for (const [word] of this.preTokenizer.preTokenizeString(this.normalizer.normalizeString(text))) {
      this.counts.set(word, (this.counts.get(word) ?? 0) + 1);
    }
  }
}

/** A max-heap of (count, pair) with HF's order: higher count first, then the smaller pair. */
class PairHeap {
  private readonly items: { key: number; count: number }[] = [];
  get size(): number {
    return this.items.length;
  }
  private before(a: { key: number; count: number }, b: { key: number; count: number }): boolean {
    return a.count !== b.count ? a.count > b.count : a.key < b.key;
  }
  push(key: number, count: number): void {
    const it = this.items;
    it.push({ key, count });
    let i = it.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(it[i], it[p])) break;
      [it[i], it[p]] = [it[p], it[i]];
      i = p;
    }
  }
  pop(): { key: number; count: number } | undefined {
    const it = this.items;
    if (it.length === 0) return undefined;
    const top = it[0];
    const last = it.pop()!;
    if (it.length > 0) {
      it[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < it.length && this.before(it[l], it[m])) m = l;
        if (r < it.length && this.before(it[r], it[m])) m = r;
        if (m === i) break;
        [it[i], it[m]] = [it[m], it[i]];
        i = m;
      }
    }
    return top;
  }
}

const SHIFT = 2 ** 21; // token ids stay below 2M
const pairKey = (a: number, b: number) => a * SHIFT + b;

/** Trains a WordPiece vocabulary (special tokens first) from word counts. */
export function trainWordPiece(counts: Map<string, number>, opts: VocabTrainerOptions): string[] {
  const minFrequency = opts.minFrequency ?? 2;
  const vocab: string[] = [...SPECIAL_TOKENS];
  const ids = new Map<string, number>(vocab.map((t, i) => [t, i]));
  const add = (t: string) => {
    let id = ids.get(t);
    if (id === undefined) {
      id = vocab.length;
      vocab.push(t);
      ids.set(t, id);
    }
    return id;
  };
  // Alphabet: every character, weighted by word counts; the rarest beyond the limit are dropped.
  const chars = new Map<string, number>();
  for (const [word, n] of counts) for (const c of word) chars.set(c, (chars.get(c) ?? 0) + n);
  let kept = [...chars];
  const limit = opts.limitAlphabet ?? 1000;
  if (kept.length > limit) kept = kept.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, limit);
  kept.sort((a, b) => a[0].codePointAt(0)! - b[0].codePointAt(0)!);
  for (const [c] of kept) add(c);

  // Words as symbol ids; characters outside the alphabet are dropped, as HF does.
  const words: number[][] = [];
  const wordCounts: number[] = [];
  for (const [word, n] of [...counts].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const symbols: number[] = [];
    let first = true;
    for (const c of word) {
      if (!ids.has(c)) continue;
      symbols.push(add(first ? c : PREFIX + c));
      first = false;
    }
    words.push(symbols);
    wordCounts.push(n);
  }

  const pairCounts = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  words.forEach((w, wi) => {
    for (let i = 0; i + 1 < w.length; i++) {
      const k = pairKey(w[i], w[i + 1]);
      pairCounts.set(k, (pairCounts.get(k) ?? 0) + wordCounts[wi]);
      let s = where.get(k);
      if (!s) where.set(k, (s = new Set()));
      s.add(wi);
    }
  });
  const heap = new PairHeap();
  for (const [k, c] of pairCounts) if (c > 0) heap.push(k, c);

  while (vocab.length < opts.vocabSize && heap.size > 0) {
    const top = heap.pop()!;
    const current = pairCounts.get(top.key) ?? 0;
    if (current !== top.count) {
      if (current > 0) heap.push(top.key, current); // stale entry: requeue with its current count
      continue;
    }
    if (top.count < 1 || top.count < minFrequency) break;
    const a = Math.floor(top.key / SHIFT);
    const b = top.key % SHIFT;
    const partB = vocab[b].startsWith(PREFIX) ? vocab[b].slice(PREFIX.length) : vocab[b];
    const merged = add(vocab[a] + partB);
    const touched = new Map<number, number>(); // pair → count change
    const change = (k: number, d: number, wi: number) => {
      touched.set(k, (touched.get(k) ?? 0) + d);
      if (d > 0) {
        let s = where.get(k);
        if (!s) where.set(k, (s = new Set()));
        s.add(wi);
      }
    };
    for (const wi of where.get(top.key) ?? []) {
      const w = words[wi];
      const n = wordCounts[wi];
      for (let i = 0; i + 1 < w.length; i++) {
        if (w[i] !== a || w[i + 1] !== b) continue;
        if (i > 0) {
          change(pairKey(w[i - 1], a), -n, wi);
          change(pairKey(w[i - 1], merged), n, wi);
        }
        if (i + 2 < w.length) {
          change(pairKey(b, w[i + 2]), -n, wi);
          change(pairKey(merged, w[i + 2]), n, wi);
        }
        w.splice(i, 2, merged);
      }
    }
    pairCounts.delete(top.key);
    where.delete(top.key);
    for (const [k, d] of touched) {
      const c = (pairCounts.get(k) ?? 0) + d;
      pairCounts.set(k, c);
      if (d > 0 && c > 0) heap.push(k, c);
    }
  }
  return vocab;
}
