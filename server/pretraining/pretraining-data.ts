// MLM + NSP examples as Google's create_pretraining_data.py makes them, on token ids:
// segments pack sentences up to max_seq_length (shorter with short_seq_prob), B is the true continuation
// half the time and a span of another document otherwise, and 15% of tokens are predicted (80% [MASK],
// 10% a random token, 10% kept), at most max_predictions_per_seq, optionally whole words.
// Masks are drawn when a batch is built, so every epoch sees fresh ones (dynamic masking).
import * as ort from "onnxruntime-node";
import type { TokenCorpus, TokenIds } from "../text/token-corpus.js";
import { Rng } from "../util/rng.js";
import { inputFeeds } from "../model/heads.js";
import type { BertTokenizer } from "../text/tokenizer.js";


export interface Instance {
  /** [CLS] A [SEP] B [SEP], unmasked. */
  ids: Int32Array;
  /** Index of the first token of segment B. */
  bStart: number;
  /** 1 when B is a random span from another document (HF next_sentence_label = 1). */
  isRandomNext: number;
}

export interface PretrainingOptions {
  maxSeqLength: number;
  shortSeqProb: number;
  maskedLmProb: number;
  maxPredictionsPerSeq: number;
  wholeWordMask: boolean;
  /**
   * What a predicted token becomes: BERT's 80% [MASK] / 10% random / 10% kept (default, for training), or
   * always [MASK] (for evaluation: a kept token is a free answer, and inflates accuracy).
   */
  replacement?: "80-10-10" | "all-mask";
  /**
   * Next-sentence pairs (default): B is a random span of another document half the time. False: B always
   * continues A, for MLM-only pretraining (RoBERTa's and Cramming's recipe: NSP off, contiguous text).
   */
  nextSentence?: boolean;
}

export const DEFAULT_PRETRAINING: PretrainingOptions = {
  maxSeqLength: 128,
  shortSeqProb: 0.1,
  maskedLmProb: 0.15,
  maxPredictionsPerSeq: 20,
  wholeWordMask: false,
};

export interface SpecialIds {
  cls: number;
  sep: number;
  mask: number;
  pad: number;
  vocabSize: number;
  /** Marks word-piece continuations ("##..."), for whole-word masking. */
  isContinuation?: Uint8Array;
}

function randInt(rng: Rng, lo: number, hi: number): number {
  // inclusive bounds, as Python's random.randint
  return lo + rng.int(hi - lo + 1);
}

/** Truncates the longer of a and b, one token at a time from a random end, until they fit. */
function truncatePair(a: number[], b: number[], maxTokens: number, rng: Rng): void {
  while (a.length + b.length > maxTokens) {
    const t = a.length > b.length ? a : b;
    if (rng.uniform() < 0.5) t.shift();
    else t.pop();
  }
}

/** The instances of one document (create_instances_from_document). */
export function instancesFromDocument(docs: TokenCorpus, index: number, opts: PretrainingOptions, special: SpecialIds, rng: Rng): Instance[] {
  if (opts.nextSentence === false) return segmentsFromDocument(docs, index, opts, special, rng);
  const sentences = docs.sentences(index);
  const maxTokens = opts.maxSeqLength - 3;
  const target = rng.uniform() < opts.shortSeqProb ? randInt(rng, 2, maxTokens) : maxTokens;
  const out: Instance[] = [];
  let chunk: TokenIds[] = [];
  let length = 0;
  for (let i = 0; i < sentences; i++) {
    const sentence = docs.sentence(index, i);
    chunk.push(sentence);
    length += sentence.length;
    if (i !== sentences - 1 && length < target) continue;
    if (chunk.length > 0) {
      const aEnd = chunk.length >= 2 ? randInt(rng, 1, chunk.length - 1) : 1;
      const a: number[] = chunk.slice(0, aEnd).flatMap((s) => Array.from(s));
      let b: number[] = [];
      let isRandomNext = 0;
      if ((chunk.length === 1 || rng.uniform() < 0.5) && docs.length > 1) {
        isRandomNext = 1;
        const targetB = target - a.length;
        let other = index;
        for (let tries = 0; tries < 10 && other === index; tries++) other = randInt(rng, 0, docs.length - 1);
        if (other === index) other = (index + 1) % docs.length;
        const otherSentences = docs.sentences(other);
        for (let j = randInt(rng, 0, otherSentences - 1); j < otherSentences; j++) {
          b.push(...docs.sentence(other, j));
          if (b.length >= targetB) break;
        }
        i -= chunk.length - aEnd; // the unused segments go back into the pool
      } else {
        b = chunk.slice(aEnd).flatMap((s) => Array.from(s));
      }
      truncatePair(a, b, maxTokens, rng);
      if (a.length >= 1 && b.length >= 1) {
        const ids = Int32Array.from([special.cls, ...a, special.sep, ...b, special.sep]);
        out.push({ ids, bStart: a.length + 2, isRandomNext });
      }
    }
    chunk = [];
    length = 0;
  }
  return out;
}

/**
 * Without NSP: `[CLS] text [SEP]`, one segment of consecutive sentences filling the sequence (RoBERTa's
 * FULL-SENTENCES within a document), as fill-mask sees text. A sentence longer than the sequence is cut.
 */
function segmentsFromDocument(docs: TokenCorpus, index: number, opts: PretrainingOptions, special: SpecialIds, rng: Rng): Instance[] {
  const maxTokens = opts.maxSeqLength - 2;
  const out: Instance[] = [];
  let target = rng.uniform() < opts.shortSeqProb ? randInt(rng, 2, maxTokens) : maxTokens;
  let a: number[] = [];
  const flush = () => {
    if (a.length === 0) return;
    const ids = Int32Array.from([special.cls, ...a.slice(0, maxTokens), special.sep]);
    out.push({ ids, bStart: ids.length, isRandomNext: 0 });
    a = [];
    target = rng.uniform() < opts.shortSeqProb ? randInt(rng, 2, maxTokens) : maxTokens;
  };
  for (let i = 0; i < docs.sentences(index); i++) {
    const sentence = docs.sentence(index, i);
    if (a.length > 0 && a.length + sentence.length > target) flush();
    for (const t of sentence) a.push(t);
    if (a.length >= target) flush();
  }
  flush();
  return out;
}

/**
 * The instances of documents [from, to) (default: all), shuffled. B of a random-next pair may come from
 * any document of `docs`.
 */
export function createInstances(docs: TokenCorpus, opts: PretrainingOptions, special: SpecialIds, rng: Rng, from = 0, to = docs.length): Instance[] {
  const all: Instance[] = [];
  for (let d = from; d < to; d++) for (const inst of instancesFromDocument(docs, d, opts, special, rng)) all.push(inst);
  return rng.shuffle(all);
}

/**
 * Consecutive document ranges of at least `tokensPerShard` tokens (the last may be smaller): an epoch's
 * instances are made and shuffled one shard at a time, as Google's create_pretraining_data does per
 * output file, so their memory is bounded by the shard, not the corpus.
 */
export function shards(docs: TokenCorpus, tokensPerShard: number): [number, number][] {
  const out: [number, number][] = [];
  let start = 0;
  for (let d = 0; d < docs.length; d++) {
    if (docs.tokens(start, d + 1) >= tokensPerShard) {
      out.push([start, d + 1]);
      start = d + 1;
    }
  }
  if (start < docs.length) out.push([start, docs.length]);
  return out;
}

export interface Masked {
  ids: Int32Array;
  /** Positions (ascending) and original ids of the predicted tokens. */
  positions: number[];
  labels: number[];
}

/** create_masked_lm_predictions: 15% of the non-special tokens, 80/10/10, whole words optionally. */
export function maskTokens(ids: Int32Array, opts: PretrainingOptions, special: SpecialIds, rng: Rng): Masked {
  const candidates: number[][] = [];
  for (let i = 0; i < ids.length; i++) {
    const t = ids[i];
    if (t === special.cls || t === special.sep || t === special.pad) continue;
    if (opts.wholeWordMask && candidates.length > 0 && special.isContinuation?.[t]) candidates[candidates.length - 1].push(i);
    else candidates.push([i]);
  }
  rng.shuffle(candidates);
  const out = Int32Array.from(ids);
  const numToPredict = Math.min(opts.maxPredictionsPerSeq, Math.max(1, Math.round(ids.length * opts.maskedLmProb)));
  const picked: number[] = [];
  for (const group of candidates) {
    if (picked.length >= numToPredict) break;
    if (picked.length + group.length > numToPredict) continue;
    for (const i of group) {
      picked.push(i);
      if (opts.replacement === "all-mask" || rng.uniform() < 0.8) out[i] = special.mask;
      else if (rng.uniform() >= 0.5) out[i] = rng.int(special.vocabSize);
      // else: keep the original token
    }
  }
  picked.sort((x, y) => x - y);
  return { ids: out, positions: picked, labels: picked.map((i) => ids[i]) };
}

/**
 * Graph feeds for a batch: padded to seqLength, masked positions flattened into batch*seq indices and
 * padded to maxPredictionsPerSeq per row with label -100 (ignored by the loss).
 */
export function collate(instances: Instance[], opts: PretrainingOptions, special: SpecialIds, rng: Rng): Record<string, ort.Tensor> {
  const B = instances.length;
  const T = opts.maxSeqLength;
  const P = opts.maxPredictionsPerSeq;
  const ids = new BigInt64Array(B * T).fill(BigInt(special.pad));
  const types = new BigInt64Array(B * T);
  const mask = new BigInt64Array(B * T);
  const positions = new BigInt64Array(B * P);
  const labels = new BigInt64Array(B * P).fill(-100n);
  const nsp = new BigInt64Array(B);
  instances.forEach((inst, b) => {
    const m = maskTokens(inst.ids, opts, special, rng);
    for (let t = 0; t < m.ids.length; t++) {
      ids[b * T + t] = BigInt(m.ids[t]);
      types[b * T + t] = t >= inst.bStart ? 1n : 0n;
      mask[b * T + t] = 1n;
    }
    for (let j = 0; j < P; j++) {
      positions[b * P + j] = BigInt(b * T + (j < m.positions.length ? m.positions[j] : 0));
      if (j < m.positions.length) labels[b * P + j] = BigInt(m.labels[j]);
    }
    nsp[b] = BigInt(inst.isRandomNext);
  });
  return inputFeeds({
    input_ids: new ort.Tensor("int64", ids, [B, T]),
    token_type_ids: new ort.Tensor("int64", types, [B, T]),
    attention_mask: new ort.Tensor("int64", mask, [B, T]),
    masked_positions: new ort.Tensor("int64", positions, [B * P]),
    masked_lm_labels: new ort.Tensor("int64", labels, [B * P]),
    next_sentence_label: new ort.Tensor("int64", nsp, [B]),
  });
}

export function specialIds(tok: BertTokenizer): SpecialIds {
  return { cls: tok.clsId, sep: tok.sepId, mask: tok.maskId, pad: tok.padId, vocabSize: tok.vocabSize, isContinuation: tok.continuationMask() };
}

/**
 * BERT's settings for a sequence length: 15% masked, max_predictions_per_seq = 15% of it (19 at 128; Google's
 * scripts use 20). A
 * higher `maskRate` (MosaicBERT's 30%) predicts that share, with max_predictions_per_seq to match.
 */
export function pretrainingOptions(seq: number, maskRate = DEFAULT_PRETRAINING.maskedLmProb): PretrainingOptions {
  return { ...DEFAULT_PRETRAINING, maxSeqLength: seq, maskedLmProb: maskRate, maxPredictionsPerSeq: Math.max(1, Math.round(seq * maskRate)) };
}
