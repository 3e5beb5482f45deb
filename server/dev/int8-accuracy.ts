// `bench fill-mask --int8`'s accuracy check: the same masked text predicted by a model's fp32 and int8
// sessions. Masks as the masked-LM evaluation draws them (pretraining/mlm-eval.ts: segments of
// consecutive sentences, 15% of the tokens, each replaced by [MASK], from a fixed seed), so two runs on
// the same text ask the same questions.
import type { FillMaskPipeline, MaskedInput } from "../inference/fill-mask.js";
import { evalSet } from "../pretraining/mlm-eval.js";
import { maskTokens, pretrainingOptions, specialIds } from "../pretraining/pretraining-data.js";
import { CorpusError } from "../text/corpus.js";
import { tokenizeCorpus } from "../text/token-cache.js";
import { Rng } from "../util/rng.js";

export interface Int8Accuracy {
  /** The text file or folder the masks were drawn from. */
  text: string;
  sequences: number;
  masked_tokens: number;
  /** Top-1 accuracy of each session over the masked tokens. */
  fp32_acc: number;
  int8_acc: number;
  /** Share of the masked tokens where both sessions' top-1 tokens are the same. */
  top1_agreement: number;
}

/** At most `maxSequences` segments of `text` (128 tokens, or the model's positions if fewer), in batches of 16. */
export async function int8Accuracy(fp32: FillMaskPipeline, int8: FillMaskPipeline, text: string, o: { seed?: number; maxSequences?: number } = {}): Promise<Int8Accuracy> {
  const seed = o.seed ?? 42;
  const { docs } = await tokenizeCorpus(text, fp32.tokenizer);
  const data = { ...pretrainingOptions(Math.min(128, fp32.maxPositions)), replacement: "all-mask" as const };
  const special = specialIds(fp32.tokenizer);
  const { segments } = evalSet(docs, data, special, seed, o.maxSequences ?? 256, { pairs: false });
  if (segments.length === 0) throw new CorpusError(`${text}: the text makes no segments to score (too short)`);
  const rng = new Rng(seed + 1);
  const sum = { masked: 0, fp32: 0, int8: 0, agree: 0 };
  for (let i = 0; i < segments.length; i += 16) {
    const inputs: MaskedInput[] = [];
    const labels: number[] = [];
    for (const s of segments.slice(i, i + 16)) {
      const m = maskTokens(s.ids, data, special, rng);
      inputs.push({ ids: Array.from(m.ids), typeIds: new Array<number>(m.ids.length).fill(0), masks: m.positions });
      labels.push(...m.labels);
    }
    const top1 = async (p: FillMaskPipeline) => (await p.predictBatch(inputs, 1)).flat().map((m) => m.top[0].id);
    const [a, b] = [await top1(fp32), await top1(int8)];
    labels.forEach((label, j) => {
      sum.masked++;
      if (a[j] === label) sum.fp32++;
      if (b[j] === label) sum.int8++;
      if (a[j] === b[j]) sum.agree++;
    });
  }
  const share = (n: number) => n / Math.max(1, sum.masked);
  return { text, sequences: segments.length, masked_tokens: sum.masked, fp32_acc: share(sum.fp32), int8_acc: share(sum.int8), top1_agreement: share(sum.agree) };
}
