// Surprising tokens: each word of a text scored by a masked language model with the pseudo-log-likelihood
// of Salazar et al. (2020), "Masked Language Model Scoring": every word piece is masked in a copy of its
// window, and the word's surprise is −Σ log2 p(original piece) over its pieces. The copies run in batches
// through FillMaskPipeline.predictBatch, the same session as fill-mask.
import type { WordSurprise } from "../../common/protocol.js";
import { maskWindows, type FillMaskPipeline, type MaskedInput } from "./fill-mask.js";
import { utf16Offsets } from "./predict.js";

export interface SurpriseOptions {
  /** Predictions kept per word (for its first piece). Default 5. */
  topK?: number;
  /** Copies per ONNX Runtime run. Default 32. */
  batchSize?: number;
  /** Tokens per window, [CLS] and [SEP] included (at most the model's max positions); default SURPRISE_WINDOW. */
  window?: number;
  /** Asked before each batch: true stops the scoring with a SurpriseCancelled error. */
  isCancelled?: () => boolean;
}

/**
 * 128 tokens, the default pretraining length (common/settings.ts), unless the model reads fewer. Every piece
 * costs one pass over its window: on 1,188 words of WikiText (2-core AMD EPYC), 128-token windows took 1.2
 * ms a word with the tiny preset and 8.3 with small, 512-token ones 12.9 and 62.5. And on a tiny model
 * pretrained at 128 tokens (max positions 512), 512-token windows made the words more surprising, not less
 * (mean 11.2 bits against 7.1 over 618 words; 256 tokens: 10.9): positions past the pretraining length are
 * untrained.
 */
export const SURPRISE_WINDOW = 128;

export class SurpriseCancelled extends Error {
  constructor() {
    super("cancelled");
  }
}

/** A word piece to score: its position in the text's tokens (without [CLS]) and its word. */
interface Piece {
  at: number;
  id: number;
  word: number;
}

/**
 * Every word of `text` (the tokenizer's words: punctuation apart, CJK characters one by one) with its
 * surprise in bits and the model's top-k for its first piece, in order, with UTF-16 offsets into `text`.
 * Special tokens are never scored: neither the [CLS] and [SEP] around the text nor a [MASK], [SEP]… written
 * in it, nor [UNK] (a word outside the vocabulary, of which the model can say only that it is unknown).
 * A text longer than the window is read in windows of `window` tokens, each piece with up to half a window
 * of text before it (maskWindows), so that pieces in the middle of a long text see context on both sides.
 */
export async function surprise(model: FillMaskPipeline, text: string, o: SurpriseOptions = {}): Promise<WordSurprise[]> {
  const tok = model.tokenizer;
  const e = await tok.encode(text);
  const special = new Set([tok.padId, tok.unkId, tok.clsId, tok.sepId, tok.maskId]);
  // The tokens between the [CLS] and [SEP] that encode adds; windows are cut from these.
  const content = e.ids.slice(1, -1);
  const pieces: Piece[] = [];
  content.forEach((id, i) => {
    const word = e.wordIds[i + 1];
    if (word !== null && !special.has(id)) pieces.push({ at: i, id, word });
  });
  const size = Math.max(1, Math.min(o.window ?? SURPRISE_WINDOW, model.maxPositions) - 2);
  const batchSize = o.batchSize ?? 32;
  const topK = o.topK ?? 5;
  const logProbs: number[] = [];
  const tops: WordSurprise["top"][] = [];
  for (let b = 0; b < pieces.length; b += batchSize) {
    if (o.isCancelled?.()) throw new SurpriseCancelled();
    const batch = pieces.slice(b, b + batchSize);
    const inputs = batch.map((p): MaskedInput => {
      const [{ start }] = maskWindows(content.length, [p.at], size);
      const ids = [tok.clsId, ...content.slice(start, start + size), tok.sepId];
      ids[1 + p.at - start] = tok.maskId;
      return { ids, typeIds: ids.map(() => 0), masks: [1 + p.at - start] };
    });
    const predicted = await model.predictBatch(inputs, topK);
    batch.forEach((p, k) => {
      const [m] = predicted[k];
      logProbs.push(m.logProb(p.id) / Math.LN2);
      tops.push(m.top.map(({ token, score }) => ({ token, score })));
    });
  }
  // Pieces of one word are consecutive and share its word id.
  const at = utf16Offsets(text);
  const words: WordSurprise[] = [];
  pieces.forEach((p, k) => {
    const [start, end] = e.offsets[p.at + 1];
    const last = words[words.length - 1];
    if (k > 0 && pieces[k - 1].word === p.word && pieces[k - 1].at === p.at - 1) {
      last.end = at[end];
      last.bits -= logProbs[k];
    } else {
      words.push({ start: at[start], end: at[end], bits: -logProbs[k], top: tops[k] });
    }
  });
  return words;
}
