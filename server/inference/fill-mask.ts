// Fill-mask: the top-k tokens for every [MASK] of a text, from a run folder or an HF model folder.
import * as ort from "onnxruntime-node";
import { createInferenceSession } from "./inference-graph.js";
import { loadModelFolder } from "../model/folder.js";
import type { Device } from "../../common/settings.js";
import { BertTokenizer } from "../text/tokenizer.js";
import { softmax, topIndices } from "../util/softmax.js";
import { inputFeeds } from "../model/heads.js";

export interface TokenPrediction {
  token: string;
  id: number;
  score: number;
}

/** A masked-LM model folder ready to fill masks (named as HF's pipeline; the `bert/fillMask` request uses it). */
export class FillMaskPipeline {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly tokenizer: BertTokenizer,
    /** max_position_embeddings: the longest input the model reads, [CLS] and [SEP] included. */
    private readonly maxPositions: number,
  ) {}

  static async load(dir: string, device: Device = "cpu"): Promise<FillMaskPipeline> {
    const { cfg, tokenizer, params } = await loadModelFolder(dir, { head: "masked_lm", tokenizer: BertTokenizer.fromDir });
    return new FillMaskPipeline(await createInferenceSession(cfg, "masked_lm", params, { outputs: ["prediction_logits"], device }), tokenizer, cfg.maxPositionEmbeddings);
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
    const i64 = (xs: number[], dims: number[]) => new ort.Tensor("int64", BigInt64Array.from(xs.map(BigInt)), dims);
    const T = ids.length;
    const out = await this.session.run(
      inputFeeds({
        input_ids: i64(ids, [1, T]),
        token_type_ids: i64(typeIds, [1, T]),
        attention_mask: i64(ids.map(() => 1), [1, T]),
        masked_positions: i64(masks, [masks.length]),
      }),
    );
    const logits = out.prediction_logits.data as Float32Array;
    const V = logits.length / masks.length;
    return masks.map((_, p) => {
      const row = logits.subarray(p * V, (p + 1) * V);
      const probs = softmax(row);
      return topIndices(row, topK).map((id) => ({ token: this.tokenizer.idToToken(id), id, score: probs[id] }));
    });
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
