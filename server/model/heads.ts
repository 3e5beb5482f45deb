// The heads of BERT with Hugging Face names (a Head: pretraining, masked_lm, sequence_classification, ...;
// the user-facing fine-tuning tasks of server/tasks map onto them), and their losses. Each head declares its
// graph inputs, builds itself on the encoder and returns named outputs plus the loss when labels are given.
import { bert, denseGelu, dropout, layerNorm, linear, pooler, type BuildContext, type BertInputs } from "./bert.js";
import type { BertConfig } from "./config.js";
import type * as ort from "onnxruntime-node";
import type { Dim, Graph, Value } from "./graph.js";

/** The graphs' inputs besides the parameters: the names the feeds are spelled with (HF's argument names). */
export const INPUT_NAMES = ["input_ids", "token_type_ids", "attention_mask", "masked_positions", "masked_lm_labels", "next_sentence_label", "labels", "start_positions", "end_positions"] as const;
export type InputName = (typeof INPUT_NAMES)[number];
/** Feeds of those inputs; the type checks their names wherever they are written. */
export type InputFeeds = { [K in InputName]?: ort.Tensor };

/** `f` as the feeds of a session run. */
export function inputFeeds(f: InputFeeds): Record<string, ort.Tensor> {
  return Object.fromEntries(Object.entries(f).filter(([, t]) => t !== undefined)) as Record<string, ort.Tensor>;
}

export const HEADS = [
  "pretraining",
  "masked_lm",
  "sequence_classification",
  "token_classification",
  "question_answering",
  "multiple_choice",
] as const;
export type Head = (typeof HEADS)[number];

const ARCHITECTURES: Record<string, Head> = {
  BertForPreTraining: "pretraining",
  BertForMaskedLM: "masked_lm",
  BertForSequenceClassification: "sequence_classification",
  BertForTokenClassification: "token_classification",
  BertForQuestionAnswering: "question_answering",
  BertForMultipleChoice: "multiple_choice",
};

export function headFromArchitectures(architectures: string[] | undefined): Head | undefined {
  for (const a of architectures ?? []) if (ARCHITECTURES[a]) return ARCHITECTURES[a];
  return undefined;
}

export function architectureOf(task: Head): string {
  return Object.entries(ARCHITECTURES).find(([, t]) => t === task)![0];
}

export interface Dims {
  batch: Dim;
  seq: Dim;
  /** Multiple choice: choices per example. */
  choices?: Dim;
  /** Masked LM: number of predicted positions in the batch. */
  predictions?: Dim;
}

export interface HeadGraph {
  /** Graph inputs by HF name: input_ids, token_type_ids, attention_mask, and the label inputs. */
  inputs: Record<string, Value>;
  /** Named outputs (HF names: prediction_logits, seq_relationship_logits, logits, start_logits, ...). */
  outputs: Record<string, Value>;
  /** Scalar losses by name (loss, and mlm_loss / nsp_loss for pretraining); absent without labels. */
  losses: Record<string, Value>;
}

/** Number of labels of a classification head. */
export function numLabels(cfg: BertConfig): number {
  return cfg.id2label ? Object.keys(cfg.id2label).length : 2;
}

/**
 * Mean cross-entropy over rows whose label is not negative (HF's ignore_index = -100).
 * logits [N, C], labels [N] int64.
 */
export function crossEntropy(g: Graph, logits: Value, labels: Value): Value {
  const valid = g.greater(labels, g.constant("int64", [-1], []));
  const safe = g.where(valid, labels, g.constant("int64", [0], []));
  const logp = g.logSoftmax(logits, -1);
  const picked = g.squeeze(g.gatherElements(logp, g.unsqueeze(safe, [1]), 1), [1]);
  const weight = g.cast(valid, "float32");
  const total = g.reduceSum(g.mul(picked, weight), undefined, false);
  const count = g.max(g.reduceSum(weight, undefined, false), g.scalar(1));
  return g.neg(g.div(total, count));
}

/** MLM head on the given rows of the flattened sequence: transform, GELU, LayerNorm, tied decoder. */
function mlmHead(ctx: BuildContext, rows: Value): Value {
  const { g, cfg } = ctx;
  const h = cfg.hiddenSize;
  const t = layerNorm(ctx, denseGelu(ctx, rows, "cls.predictions.transform.dense", h, h), "cls.predictions.transform.LayerNorm");
  const decoder = cfg.tieWordEmbeddings
    ? ctx.param("bert.embeddings.word_embeddings.weight", [cfg.vocabSize, h])
    : ctx.param("cls.predictions.decoder.weight", [cfg.vocabSize, h]);
  return g.gemm(t, decoder, ctx.param("cls.predictions.bias", [cfg.vocabSize]), false, true);
}

/** Builds encoder + head for `task`. With `labels`, label inputs and the loss are added. */
/** A graph input of one of the InputName names. */
const input = (g: Graph, name: InputName, type: "int64" | "float32", shape: Dim[]): Value => g.input(name, type, shape);

export function buildHead(ctx: BuildContext, task: Head, dims: Dims, labels: boolean): HeadGraph {
  const { g, cfg } = ctx;
  const h = cfg.hiddenSize;
  const tokenShape: Dim[] = task === "multiple_choice" ? [dims.batch, dims.choices ?? "choices", dims.seq] : [dims.batch, dims.seq];
  const inputs: Record<string, Value> = {
    input_ids: input(g, "input_ids", "int64", tokenShape),
    token_type_ids: input(g, "token_type_ids", "int64", tokenShape),
    attention_mask: input(g, "attention_mask", "int64", tokenShape),
  };
  let enc: BertInputs = { inputIds: inputs.input_ids, tokenTypeIds: inputs.token_type_ids, attentionMask: inputs.attention_mask };
  if (task === "multiple_choice") {
    // [B, C, T] -> [B*C, T]
    const flatten = (v: Value) => g.reshapeTo(v, g.concat([g.ints([-1]), g.shapeOf(v, 2)], 0), ["rows", dims.seq]);
    enc = { inputIds: flatten(enc.inputIds), tokenTypeIds: flatten(enc.tokenTypeIds), attentionMask: flatten(enc.attentionMask) };
  }
  // The masked LM's inference graphs compute the last layer at the masked positions alone (bert's lastRows).
  const maskedPositions = () => (inputs.masked_positions ??= input(g, "masked_positions", "int64", [dims.predictions ?? "predictions"]));
  const out = bert(ctx, task === "masked_lm" && ctx.inference ? { ...enc, outputRows: maskedPositions() } : enc);
  const outputs: Record<string, Value> = { last_hidden_state: out.sequenceOutput, embedding_output: out.embeddingOutput };
  const losses: Record<string, Value> = {};
  const hiddenDrop = cfg.classifierDropout ?? cfg.hiddenDropoutProb;

  switch (task) {
    case "pretraining":
    case "masked_lm": {
      // Logits only at the masked positions (flat indices into batch*seq), as Google's original BERT.
      outputs.prediction_logits = mlmHead(ctx, out.lastRows ?? g.gather(out.flatSequence, maskedPositions()));
      outputs.mlm_predictions = g.argMax(outputs.prediction_logits, -1);
      // For fill-mask: log-probabilities over the vocabulary by ONNX Runtime's LogSoftmax.
      if (ctx.inference) outputs.prediction_log_probs = g.logSoftmax(outputs.prediction_logits, -1);
      if (labels) {
        inputs.masked_lm_labels = input(g, "masked_lm_labels", "int64", [dims.predictions ?? "predictions"]);
        losses.mlm_loss = crossEntropy(g, outputs.prediction_logits, inputs.masked_lm_labels);
      }
      if (task === "pretraining") {
        const pooled = (outputs.pooler_output = pooler(ctx, out, enc.inputIds));
        outputs.seq_relationship_logits = linear(ctx, pooled, "cls.seq_relationship", h, 2);
        outputs.nsp_predictions = g.argMax(outputs.seq_relationship_logits, -1);
        if (labels) {
          inputs.next_sentence_label = input(g, "next_sentence_label", "int64", [dims.batch]);
          losses.nsp_loss = crossEntropy(g, outputs.seq_relationship_logits, inputs.next_sentence_label);
          losses.loss = g.add(losses.mlm_loss, losses.nsp_loss);
        }
      } else if (labels) {
        losses.loss = losses.mlm_loss;
      }
      break;
    }
    case "sequence_classification": {
      const pooled = (outputs.pooler_output = pooler(ctx, out, enc.inputIds));
      const n = numLabels(cfg);
      outputs.logits = linear(ctx, dropout(ctx, pooled, hiddenDrop), "classifier", h, n);
      if (labels) {
        if (n === 1 || cfg.problemType === "regression") {
          inputs.labels = input(g, "labels", "float32", [dims.batch]);
          const diff = g.sub(g.squeeze(outputs.logits, [1]), inputs.labels);
          losses.loss = g.reduceMean(g.mul(diff, diff), undefined, false);
        } else {
          inputs.labels = input(g, "labels", "int64", [dims.batch]);
          losses.loss = crossEntropy(g, outputs.logits, inputs.labels);
        }
      }
      break;
    }
    case "token_classification": {
      const n = numLabels(cfg);
      const logits = linear(ctx, dropout(ctx, out.flatSequence, hiddenDrop), "classifier", h, n);
      outputs.logits = g.reshapeTo(logits, g.concat([g.shapeOf(inputs.input_ids), g.ints([n])], 0), [...tokenShape, n]);
      if (labels) {
        inputs.labels = input(g, "labels", "int64", tokenShape);
        losses.loss = crossEntropy(g, logits, g.reshape(inputs.labels, [-1]));
      }
      break;
    }
    case "question_answering": {
      const logits = linear(ctx, out.flatSequence, "qa_outputs", h, 2); // [B*T, 2]
      const columns = g.transpose(logits, [1, 0]); // [2, B*T]
      const perToken = (col: number) => g.reshapeLike(g.gather(columns, g.constant("int64", [col], [])), inputs.input_ids);
      outputs.start_logits = perToken(0);
      outputs.end_logits = perToken(1);
      if (labels) {
        inputs.start_positions = input(g, "start_positions", "int64", [dims.batch]);
        inputs.end_positions = input(g, "end_positions", "int64", [dims.batch]);
        const start = crossEntropy(g, outputs.start_logits, inputs.start_positions);
        const end = crossEntropy(g, outputs.end_logits, inputs.end_positions);
        losses.loss = g.mul(g.add(start, end), g.scalar(0.5));
      }
      break;
    }
    case "multiple_choice": {
      const pooled = pooler(ctx, out, enc.inputIds);
      const scores = linear(ctx, dropout(ctx, pooled, hiddenDrop), "classifier", h, 1); // [B*C, 1]
      outputs.logits = g.reshapeTo(scores, g.shapeOf(inputs.input_ids, 0, 2), tokenShape.slice(0, 2)); // [B, C]
      if (labels) {
        inputs.labels = input(g, "labels", "int64", [dims.batch]);
        losses.loss = crossEntropy(g, outputs.logits, inputs.labels);
      }
      break;
    }
  }
  return { inputs, outputs, losses };
}
