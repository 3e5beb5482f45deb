// Masked-LM (and next-sentence) evaluation of a pretrained model on text it was not trained on: the one
// implementation behind the trainer's held-out figures and `bert-studio evaluate --text`.
//
// Protocol. Masked LM: `[CLS] text [SEP]` segments of consecutive sentences of one document, up to the
// sequence length (as fill-mask sees text: one segment, no pair, no random second half), 15% of the tokens
// predicted (at most 15% of the sequence length), each replaced by [MASK] ("all-mask"): BERT's 10% kept
// tokens would be free answers and inflate accuracy, so they are not drawn. Next sentence (pretraining
// heads only): sentence pairs made as for training (create_pretraining_data: half the B segments from
// another document). Segments, pairs and masks come from a fixed seed, so two models scored on the same
// text see the same questions. Top-1 and top-5 accuracy over the masked tokens, perplexity = exp(mean
// masked-token cross-entropy), NSP accuracy over the pairs.
import type * as ort from "onnxruntime-node";
import type { BertConfig } from "../model/config.js";
import { loadModelFolder } from "../model/folder.js";
import { headFromArchitectures } from "../model/heads.js";
import type { ParamStore } from "../model/params.js";
import { createSession } from "../model/session.js";
import type { Device } from "../../common/settings.js";
import { buildTrainGraph } from "../training/train-graph.js";
import { Rng } from "../util/rng.js";
import { CorpusError } from "../text/corpus.js";
import { tokenizeCorpus } from "../text/token-cache.js";
import { BertTokenizer } from "../text/tokenizer.js";
import { collate, createInstances, pretrainingOptions, specialIds, type Instance, type PretrainingOptions, type SpecialIds } from "./pretraining-data.js";
import type { TokenCorpus } from "../text/token-corpus.js";

export interface MlmScores {
  mlm_loss: number;
  mlm_perplexity: number;
  /** Top-1 accuracy over the masked tokens. */
  mlm_acc: number;
  mlm_top5: number;
  /** NSP figures: only for a model with the pretraining head. */
  nsp_loss?: number;
  nsp_acc?: number;
  /** As the training loss: mlm_loss, plus nsp_loss with the NSP head. */
  loss?: number;
  masked_tokens: number;
  sequences: number;
}

export class MlmEvaluator {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly nsp: boolean,
    private readonly batch: number,
  ) {}

  /** An eval-mode graph of `head` for batches of `dims` (predictions = batch × max predictions per sequence). */
  static async create(cfg: BertConfig, head: "pretraining" | "masked_lm", dims: { batch: number; seq: number; predictions: number }, o: { device: Device; threads?: number }): Promise<MlmEvaluator> {
    const expose = head === "pretraining" ? ["prediction_logits", "mlm_predictions", "nsp_predictions"] : ["prediction_logits", "mlm_predictions"];
    const graph = buildTrainGraph(cfg, head, { mode: "eval", dims, dropout: false, expose });
    const { session } = await createSession(graph.model, { device: o.device, threads: o.threads });
    return new MlmEvaluator(session, head === "pretraining", dims.batch);
  }

  /**
   * Scores whole batches (a last partial batch is left out) of `set.segments` (masked LM) and, for a model
   * with the NSP head, of `set.pairs` (next sentence); masks drawn from `seed`.
   */
  async score(params: ParamStore, set: EvalSet, data: PretrainingOptions, special: SpecialIds, seed: number): Promise<MlmScores | undefined> {
    const rng = new Rng(seed);
    const masking = { ...data, replacement: "all-mask" as const };
    const sum = { mlm: 0, nsp: 0, batches: 0, nspBatches: 0, masked: 0, top1: 0, top5: 0, nspRight: 0, pairs: 0 };
    const run = async (instances: Instance[]) => {
      const feeds = collate(instances, masking, special, rng);
      if (!this.nsp) delete feeds.next_sentence_label; // a masked-LM graph has no such input
      return { feeds, out: await this.session.run({ ...feeds, ...params.feeds() }) };
    };
    for (let i = 0; i + this.batch <= set.segments.length; i += this.batch) {
      const { feeds, out } = await run(set.segments.slice(i, i + this.batch));
      sum.mlm += Number(out.mlm_loss.data[0]);
      sum.batches++;
      const labels = feeds.masked_lm_labels.data as BigInt64Array;
      const top1 = out.mlm_predictions.data as BigInt64Array;
      const logits = out.prediction_logits.data as Float32Array;
      const V = logits.length / labels.length;
      for (let r = 0; r < labels.length; r++) {
        if (labels[r] < 0n) continue;
        sum.masked++;
        if (top1[r] === labels[r]) sum.top1++;
        // In the top 5 when fewer than 5 logits of the row are larger than the label's.
        const row = logits.subarray(r * V, (r + 1) * V);
        const own = row[Number(labels[r])];
        let larger = 0;
        for (let v = 0; v < V && larger < 5; v++) if (row[v] > own) larger++;
        if (larger < 5) sum.top5++;
      }
    }
    for (let i = 0; this.nsp && i + this.batch <= set.pairs.length; i += this.batch) {
      const { feeds, out } = await run(set.pairs.slice(i, i + this.batch));
      sum.nsp += Number(out.nsp_loss.data[0]);
      sum.nspBatches++;
      const nl = feeds.next_sentence_label.data as BigInt64Array;
      const np = out.nsp_predictions.data as BigInt64Array;
      for (let b = 0; b < nl.length; b++) {
        sum.pairs++;
        if (np[b] === nl[b]) sum.nspRight++;
      }
    }
    if (sum.batches === 0) return undefined;
    const mlm_loss = sum.mlm / sum.batches;
    const scores: MlmScores = {
      mlm_loss,
      mlm_perplexity: Math.exp(mlm_loss),
      mlm_acc: sum.top1 / Math.max(1, sum.masked),
      mlm_top5: sum.top5 / Math.max(1, sum.masked),
      masked_tokens: sum.masked,
      sequences: sum.batches * this.batch,
    };
    scores.loss = mlm_loss;
    if (this.nsp && sum.nspBatches > 0) {
      scores.nsp_loss = sum.nsp / sum.nspBatches;
      scores.nsp_acc = sum.nspRight / Math.max(1, sum.pairs);
      scores.loss = mlm_loss + scores.nsp_loss;
    }
    return scores;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** What an evaluation scores: masked-LM segments and next-sentence pairs (see the protocol above). */
export interface EvalSet {
  segments: Instance[];
  pairs: Instance[];
}

/**
 * The evaluation set of documents [from, to) of `docs` (default all): at most `max` segments and, when
 * `pairs` (a model with the NSP head), `max` pairs, drawn by `seed` (the sequence length and mask share are
 * `data`'s, 15% for the protocol).
 */
export function evalSet(docs: TokenCorpus, data: PretrainingOptions, special: SpecialIds, seed: number, max: number, o: { pairs: boolean; from?: number; to?: number }): EvalSet {
  const [from, to] = [o.from ?? 0, o.to ?? docs.length];
  const segments = createInstances(docs, { ...data, nextSentence: false, shortSeqProb: 0 }, special, new Rng(seed), from, to).slice(0, max);
  const pairs = o.pairs ? createInstances(docs, { ...data, nextSentence: true }, special, new Rng(seed + 1), from, to).slice(0, max) : [];
  return { segments, pairs };
}

export interface TextEvalOptions {
  /** Sequence length of the pairs (default 128, at most the model's positions). */
  seq?: number;
  batch?: number;
  seed?: number;
  /** Score at most this many segments (and as many NSP pairs), drawn at random by the seed (default 2048). */
  maxSequences?: number;
  device: Device;
  threads?: number;
  onMessage?: (m: string) => void;
}

export interface TextEvalResult extends MlmScores {
  model: string;
  text: string;
  protocol: "all-mask";
  seq: number;
  seed: number;
  documents: number;
}

/**
 * Scores the masked-LM model folder `dir` (a pretraining run, BertForPreTraining or BertForMaskedLM) on
 * the text of `text` (a file, or a folder read as pretraining reads a corpus).
 */
export async function evaluateOnText(dir: string, text: string, o: TextEvalOptions): Promise<TextEvalResult> {
  const { cfg, head, tokenizer, params } = await loadModelFolder(dir, {
    tokenizer: (d: string) => BertTokenizer.fromDir(d),
    head: (c) => {
      const h = headFromArchitectures(c.architectures);
      if (h === "pretraining" || h === "masked_lm") return h;
      throw new Error(`${dir}: ${JSON.stringify(c.architectures ?? ["BertModel"])} has no masked-LM head to evaluate (evaluate --data scores a fine-tuned model on a labelled file)`);
    },
  });
  const seq = o.seq ?? 128;
  if (seq > cfg.maxPositionEmbeddings) throw new Error(`--seq ${seq} is longer than the model's ${cfg.maxPositionEmbeddings} positions`);
  const seed = o.seed ?? 42;
  const { docs } = await tokenizeCorpus(text, tokenizer, { warn: o.onMessage });
  if (docs.tokens() === 0) throw new CorpusError(`${text}: no text found to evaluate on`);
  const data = pretrainingOptions(seq);
  const special = specialIds(tokenizer);
  const set = evalSet(docs, data, special, seed + 1, o.maxSequences ?? 2048, { pairs: head === "pretraining" });
  if (set.segments.length === 0) throw new CorpusError(`${text}: the text makes no segments to score (too short)`);
  const batch = Math.min(o.batch ?? 32, set.segments.length);
  const evaluator = await MlmEvaluator.create(cfg, head as "pretraining" | "masked_lm", { batch, seq, predictions: batch * data.maxPredictionsPerSeq }, { device: o.device, threads: o.threads });
  try {
    const scores = (await evaluator.score(params, set, data, special, seed + 2))!;
    return { model: dir, text, protocol: "all-mask", seq, seed, documents: docs.length, ...scores };
  } finally {
    await evaluator.release();
  }
}
