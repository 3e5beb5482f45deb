// Fill-mask: the top-k tokens for every [MASK] of a text, from a run folder or an HF model folder.
import * as ort from "onnxruntime-node";
import { loadInferenceSession } from "./session-cache.js";
import { openModelFolder } from "../model/folder.js";
import type { Fusion } from "../model/bert.js";
import type { Device } from "../../common/settings.js";
import { BertTokenizer } from "../text/tokenizer.js";
import { topIndices } from "../util/softmax.js";
import { inputFeeds } from "../model/heads.js";

export interface TokenPrediction {
  token: string;
  id: number;
  score: number;
}

/** One input of at most max_position_embeddings tokens and the positions of its masks in `ids`. */
export interface MaskedInput {
  ids: number[];
  typeIds: number[];
  masks: number[];
}

/** What the model predicts at one mask: its top-k tokens, and the log-probability of any vocabulary id. */
export interface MaskPrediction {
  top: TokenPrediction[];
  /** Natural log of the probability of token `id` at the mask. */
  logProb(id: number): number;
}

/** A masked-LM model folder ready to fill masks (named as HF's pipeline; the `bert/fillMask` request uses it). */
export class FillMaskPipeline {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly tokenizer: BertTokenizer,
    /** max_position_embeddings: the longest input the model reads, [CLS] and [SEP] included. */
    readonly maxPositions: number,
  ) {}

  /**
   * `fusion`: which of ONNX Runtime's fused ops the graph has (inference-graph.ts; "none" is the plain-op
   * graph); `cache: false` neither reads nor writes the session cache (session-cache.ts).
   */
  static async load(dir: string, device: Device = "cpu", o: { fusion?: Fusion; int8?: boolean; cache?: boolean } = {}): Promise<FillMaskPipeline> {
    const { cfg, tokenizer } = await openModelFolder(dir, BertTokenizer.fromDir);
    const { session } = await loadInferenceSession(dir, cfg, "masked_lm", { outputs: ["prediction_log_probs"], device, ...o });
    return new FillMaskPipeline(session, tokenizer, cfg.maxPositionEmbeddings);
  }

  /**
   * Predictions for each [MASK] of `text`, in order; an error when there is none. A text longer than the
   * model's positions is read in windows of max_position_embeddings tokens, one per group of nearby masks
   * (see maskWindows), so that a long line in the editor gets predictions instead of ONNX Runtime's
   * broadcast error; each mask is predicted once, from its group's window.
   */
  async predict(text: string, topK = 5): Promise<TokenPrediction[][]> {
    const e = await this.tokenizer.encode(text);
    const masks = e.ids.flatMap((id, i) => (id === this.tokenizer.maskId ? [i] : []));
    if (masks.length === 0) throw new Error(`no [MASK] in ${JSON.stringify(text)}`);
    if (e.ids.length <= this.maxPositions) return this.predictWindow(e.ids, e.typeIds, masks, topK);
    // Windows over the text between [CLS] and [SEP], which each window gets again.
    const size = Math.max(1, this.maxPositions - 2);
    const [cls, sep] = [e.ids[0], e.ids[e.ids.length - 1]];
    const out: TokenPrediction[][] = [];
    for (const w of maskWindows(e.ids.length - 2, masks.map((m) => m - 1), size)) {
      const content = (xs: number[]) => xs.slice(1 + w.start, 1 + w.start + size);
      const ids = [cls, ...content(e.ids), sep];
      const typeIds = [0, ...content(e.typeIds), 0];
      out.push(...(await this.predictWindow(ids, typeIds, w.masks.map((m) => m + 1 - w.start), topK)));
    }
    return out;
  }

  /** The top-k tokens at `masks` (positions in `ids`) of one input of at most max_position_embeddings tokens. */
  private async predictWindow(ids: number[], typeIds: number[], masks: number[], topK: number): Promise<TokenPrediction[][]> {
    const [row] = await this.predictBatch([{ ids, typeIds, masks }], topK);
    return row.map((m) => m.top);
  }

  /**
   * One ONNX Runtime run over `inputs` (padded to the longest, each at most max_position_embeddings
   * tokens): per input, per mask in its order, the top-k tokens and the log-probability of any token there.
   * Logits are computed only at the masks (the head gathers them first), so a batch of copies of one
   * window, each masked at one place, costs the encoder's pass and one vocabulary row per copy.
   */
  async predictBatch(inputs: MaskedInput[], topK: number): Promise<MaskPrediction[][]> {
    const long = inputs.find((x) => x.ids.length > this.maxPositions);
    if (long) throw new Error(`an input of ${long.ids.length} tokens is longer than the model's ${this.maxPositions} positions`);
    const B = inputs.length;
    const T = Math.max(...inputs.map((x) => x.ids.length));
    const ids = new BigInt64Array(B * T).fill(BigInt(this.tokenizer.padId));
    const types = new BigInt64Array(B * T);
    const attention = new BigInt64Array(B * T);
    const positions: bigint[] = [];
    inputs.forEach((x, b) => {
      x.ids.forEach((id, t) => {
        ids[b * T + t] = BigInt(id);
        types[b * T + t] = BigInt(x.typeIds[t]);
        attention[b * T + t] = 1n;
      });
      for (const m of x.masks) positions.push(BigInt(b * T + m)); // flat indices into batch × seq
    });
    const out = await this.session.run(
      inputFeeds({
        input_ids: new ort.Tensor("int64", ids, [B, T]),
        token_type_ids: new ort.Tensor("int64", types, [B, T]),
        attention_mask: new ort.Tensor("int64", attention, [B, T]),
        masked_positions: new ort.Tensor("int64", BigInt64Array.from(positions), [positions.length]),
      }),
    );
    // Log-probabilities from the graph's LogSoftmax: a JavaScript log Σ exp over a 30,522-token row took
    // 0.38 ms a mask, ORT's LogSoftmax 16 µs (2-core EPYC).
    const logProbs = out.prediction_log_probs.data as Float32Array;
    const V = logProbs.length / positions.length;
    let at = 0; // the next row: masks in input order
    return inputs.map((x) =>
      x.masks.map(() => {
        const row = logProbs.subarray(at * V, (at + 1) * V);
        at++;
        const logProb = (id: number) => row[id];
        return { top: topIndices(row, topK).map((id) => ({ token: this.tokenizer.idToToken(id), id, score: Math.exp(logProb(id)) })), logProb };
      }),
    );
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * Windows of `size` tokens over a text of `length` tokens for the masks at `masks` (ascending): a mask
 * less than half a window after its group's first mask joins that group, and the group's window is
 * centred on it (clamped to the text), so every mask has at least floor(size / 4) tokens of context on
 * each side where the text has them. A lone mask has floor(size / 2) tokens before it, the rest after.
 */
export function maskWindows(length: number, masks: number[], size: number): { start: number; masks: number[] }[] {
  if (length <= size) return [{ start: 0, masks }];
  const windows: { start: number; masks: number[] }[] = [];
  for (let i = 0; i < masks.length; ) {
    let j = i + 1;
    while (j < masks.length && masks[j] - masks[i] < size / 2) j++;
    const group = masks.slice(i, j);
    const centre = (group[0] + group[group.length - 1] + 1) / 2;
    windows.push({ start: Math.min(Math.max(0, Math.floor(centre - size / 2)), length - size), masks: group });
    i = j;
  }
  return windows;
}
