// Fill-mask: the top-k tokens for every [MASK] of a text, from a run folder or an HF model folder.
import * as path from "node:path";
import * as ort from "onnxruntime-node";
import { readConfig } from "./model/config.js";
import { createInferenceSession } from "./model/inference.js";
import { loadParams, ParamStore, paramShapes, requireComplete } from "./model/params.js";
import { readSafetensors } from "./model/safetensors.js";
import type { Device } from "./model/session.js";
import { BertTokenizer } from "./training/tokenizer.js";

export interface Prediction {
  token: string;
  id: number;
  score: number;
}

export class FillMask {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly tokenizer: BertTokenizer,
  ) {}

  static async load(dir: string, device: Device = "cpu"): Promise<FillMask> {
    const cfg = await readConfig(dir);
    const params = ParamStore.fromShapes(paramShapes(cfg, "masked_lm"));
    const file = path.join(dir, "model.safetensors");
    requireComplete(loadParams(params, (await readSafetensors(file)).tensors, file), dir);
    const tokenizer = await BertTokenizer.fromDir(dir);
    return new FillMask(await createInferenceSession(cfg, "masked_lm", params, { outputs: ["prediction_logits"], device }), tokenizer);
  }

  /** Predictions for each [MASK] of `text`, in order; an error when there is none. */
  async predict(text: string, topK = 5): Promise<Prediction[][]> {
    const e = await this.tokenizer.encode(text);
    const positions = e.ids.flatMap((id, i) => (id === this.tokenizer.maskId ? [i] : []));
    if (positions.length === 0) throw new Error(`no [MASK] in ${JSON.stringify(text)}`);
    const i64 = (xs: number[], dims: number[]) => new ort.Tensor("int64", BigInt64Array.from(xs.map(BigInt)), dims);
    const T = e.ids.length;
    const out = await this.session.run({
      input_ids: i64(e.ids, [1, T]),
      token_type_ids: i64(e.typeIds, [1, T]),
      attention_mask: i64(e.ids.map(() => 1), [1, T]),
      masked_positions: i64(positions, [positions.length]),
    });
    const logits = out.prediction_logits.data as Float32Array;
    const V = logits.length / positions.length;
    return positions.map((_, p) => {
      const row = logits.subarray(p * V, (p + 1) * V);
      let max = -Infinity;
      for (const x of row) max = Math.max(max, x);
      let sum = 0;
      for (const x of row) sum += Math.exp(x - max);
      const top: number[] = [];
      for (let i = 0; i < V; i++) {
        if (top.length < topK || row[i] > row[top[top.length - 1]]) {
          top.push(i);
          top.sort((a, b) => row[b] - row[a]);
          if (top.length > topK) top.pop();
        }
      }
      return top.map((id) => ({ token: this.tokenizer.idToToken(id), id, score: Math.exp(row[id] - max) / sum }));
    });
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
