// BERT (Devlin et al. 2018) as an ONNX graph, with Hugging Face `modeling_bert.py` parameter names:
// token + segment + learned position embeddings, post-LayerNorm encoder layers with GELU feed-forward,
// and a tanh pooler on [CLS].
import type { BertConfig } from "./config.js";
import type { Dim, Graph, Value } from "./graph.js";

/**
 * ONNX Runtime's fused contrib ops in eval graphs, which have no autodiff rules (the parameters and outputs
 * are the same): "attention", one Attention per layer (Q/K/V projections, scores, mask, softmax, context)
 * and EmbedLayerNormalization; "all" also SkipLayerNormalization (residual + LayerNorm) and BiasGelu.
 * On the CPU "attention" is the faster (ORT 1.30, 2-core Zen 3, one thread, 21 tokens, calls alternating
 * with the plain graph's): BERT-Base 48.6-50.1 ms against 49.0-50.3 plain, the small preset 3.2-3.4 against
 * 3.3-3.7, where "all" took 49.4-51.6 against 48.1-50.4: ORT's CPU SkipLayerNormalization takes 2.2 ms a
 * call where Add + LayerNormalization take 0.9, and BiasGelu 1.0 where Gelu after a Gemm with the bias
 * takes 0.6. One Attention costs what its Q/K/V Gemms and the attention ops did: the Gemms are 90% of it.
 */
export type Fusion = "none" | "attention" | "all";

/** Returns the graph value of a parameter (a graph input while training, an initializer for inference). */
export type ParamFactory = (name: string, shape: number[]) => Value;

/**
 * The int8 form of the nn.Linear weight `name` [out, in]: `weight` int8 [in, out] (transposed, for
 * DynamicQuantizeMatMul) and `scale` float [out], one per output feature.
 */
export type Int8ParamFactory = (name: string, outFeatures: number, inFeatures: number) => { weight: Value; scale: Value };

export interface BuildContext {
  readonly g: Graph;
  readonly cfg: BertConfig;
  readonly param: ParamFactory;
  /** Training mode turns dropout on. */
  readonly training: boolean;
  /** An inference graph (inference/inference-graph.ts): no gradients are taken through it. */
  readonly inference?: boolean;
  /** Eval graphs: which of ONNX Runtime's fused ops to build with (see Fusion); training graphs keep the plain ops. */
  readonly fusion?: Fusion;
  /**
   * Eval graphs: when given, the encoder's, pooler's and heads' dense layers multiply by int8 weights
   * (DynamicQuantizeMatMul: the activations quantized per call); embeddings, LayerNorms, attention scores
   * and the MLM decoder stay float.
   */
  readonly int8?: Int8ParamFactory;
  /** Each dropout node gets its own seed, mixed from this one and the node's index. */
  dropoutSeed: number;
  /** Dropout nodes built so far. */
  dropoutNodes?: number;
}

/** Whether the encoder is built of fused ops (any fusion but "none"). */
const fused = (ctx: BuildContext) => ctx.fusion !== undefined && ctx.fusion !== "none";

export interface BertInputs {
  /** [batch, seq] int64 */
  inputIds: Value;
  tokenTypeIds: Value;
  attentionMask: Value;
  /**
   * Inference graphs: rows of the flattened batch × seq (int64 [rows]) whose last-layer outputs are
   * wanted alone, as BertOutputs.lastRows (the masked LM's positions).
   */
  outputRows?: Value;
}

export interface BertOutputs {
  embeddingOutput: Value;
  /** [batch, seq, hidden] */
  sequenceOutput: Value;
  /** [batch * seq, hidden]: the sequence output with batch and positions flattened, for row gathers. */
  flatSequence: Value;
  /**
   * With BertInputs.outputRows: the sequence output at those rows [rows, hidden], the last layer computed
   * for them alone (its keys and values from every position): the same numbers as gathering flatSequence,
   * with 6.6% fewer of BERT-Base's multiply-adds at one mask among 21 tokens (measured 4% faster).
   */
  lastRows?: Value;
}

export function dropout(ctx: BuildContext, x: Value, p: number): Value {
  if (!ctx.training || p === 0) return x;
  ctx.dropoutNodes = (ctx.dropoutNodes ?? 0) + 1;
  return ctx.g.dropout(x, p, mixSeed(ctx.dropoutSeed, ctx.dropoutNodes)).y;
}

/** A 24-bit seed from (base, index), so that nearby bases and indices give unrelated random streams. */
export function mixSeed(base: number, index: number): number {
  let h = Math.imul(base ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 0x632be5ab, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return ((h ^ (h >>> 16)) >>> 0) & 0xffffff;
}

/** y = x Wᵀ + b on rows x [n, in], with W stored [out, in] as in PyTorch's nn.Linear: one Gemm. */
export function linear(ctx: BuildContext, x: Value, name: string, inFeatures: number, outFeatures: number): Value {
  return dense(ctx, x, name, inFeatures, outFeatures, true);
}

/** x Wᵀ (+ b when `withBias`): a Gemm, or with ctx.int8 a DynamicQuantizeMatMul. */
function dense(ctx: BuildContext, x: Value, name: string, inFeatures: number, outFeatures: number, withBias: boolean): Value {
  const bias = () => (withBias ? ctx.param(`${name}.bias`, [outFeatures]) : null);
  if (ctx.int8) {
    const q = ctx.int8(`${name}.weight`, outFeatures, inFeatures);
    return ctx.g.dynamicQuantizeMatMul(x, q.weight, q.scale, bias());
  }
  const w = ctx.param(`${name}.weight`, [outFeatures, inFeatures]);
  return ctx.g.gemm(x, w, bias(), false, true);
}

/** GELU(x Wᵀ + b): the intermediate layer and the MLM transform; with fusion "all", one Gemm and a BiasGelu. */
export function denseGelu(ctx: BuildContext, x: Value, name: string, inFeatures: number, outFeatures: number): Value {
  if (ctx.fusion !== "all") return ctx.g.gelu(linear(ctx, x, name, inFeatures, outFeatures));
  return ctx.g.biasGelu(dense(ctx, x, name, inFeatures, outFeatures, false), ctx.param(`${name}.bias`, [outFeatures]));
}

/** LayerNorm(x Wᵀ + b + residual): the end of the attention block and of the feed-forward block ("all": SkipLayerNormalization). */
function denseAddNorm(ctx: BuildContext, x: Value, residual: Value, name: string, inFeatures: number, norm: string): Value {
  const { g, cfg } = ctx;
  const h = cfg.hiddenSize;
  if (ctx.fusion !== "all") return layerNorm(ctx, g.add(dropout(ctx, linear(ctx, x, name, inFeatures, h), cfg.hiddenDropoutProb), residual), norm);
  const y = dense(ctx, x, name, inFeatures, h, false);
  return g.skipLayerNorm(y, residual, ctx.param(`${norm}.weight`, [h]), ctx.param(`${norm}.bias`, [h]), ctx.param(`${name}.bias`, [h]), cfg.layerNormEps);
}

export function layerNorm(ctx: BuildContext, x: Value, name: string): Value {
  const h = ctx.cfg.hiddenSize;
  return ctx.g.layerNorm(x, ctx.param(`${name}.weight`, [h]), ctx.param(`${name}.bias`, [h]), ctx.cfg.layerNormEps).y;
}

function embeddings(ctx: BuildContext, inputs: BertInputs): Value {
  const { g, cfg } = ctx;
  const h = cfg.hiddenSize;
  if (fused(ctx)) return fusedEmbeddings(ctx, inputs);
  const word = g.embedding(ctx.param("bert.embeddings.word_embeddings.weight", [cfg.vocabSize, h]), inputs.inputIds, cfg.padTokenId);
  const seqLen = g.squeeze(g.shapeOf(inputs.inputIds, 1, 2), [0]);
  const positionIds = g.range(g.constant("int64", [0], []), seqLen, g.constant("int64", [1], []));
  const position = g.gather(ctx.param("bert.embeddings.position_embeddings.weight", [cfg.maxPositionEmbeddings, h]), positionIds);
  const segment = g.gather(ctx.param("bert.embeddings.token_type_embeddings.weight", [cfg.typeVocabSize, h]), inputs.tokenTypeIds);
  const sum = g.add(g.add(word, segment), position);
  return dropout(ctx, layerNorm(ctx, sum, "bert.embeddings.LayerNorm"), cfg.hiddenDropoutProb);
}

/** The same sum and LayerNorm as one EmbedLayerNormalization (its ids are int32; positions 0..seq−1). */
function fusedEmbeddings(ctx: BuildContext, inputs: BertInputs): Value {
  const { g, cfg } = ctx;
  const h = cfg.hiddenSize;
  const word = ctx.param("bert.embeddings.word_embeddings.weight", [cfg.vocabSize, h]);
  const position = ctx.param("bert.embeddings.position_embeddings.weight", [cfg.maxPositionEmbeddings, h]);
  const segment = ctx.param("bert.embeddings.token_type_embeddings.weight", [cfg.typeVocabSize, h]);
  const [gamma, beta] = [ctx.param("bert.embeddings.LayerNorm.weight", [h]), ctx.param("bert.embeddings.LayerNorm.bias", [h])];
  return g.embedLayerNorm(g.cast(inputs.inputIds, "int32"), g.cast(inputs.tokenTypeIds, "int32"), word, position, segment, gamma, beta, cfg.layerNormEps);
}

/** float32's lowest value: what HF adds to the scores of padded positions. */
const MASKED = -3.4028234663852886e38;

/** Additive attention mask [batch, 1, 1, seq]: 0 where attended, float32 min where padded (as HF). */
function extendedMask(ctx: BuildContext, attentionMask: Value): Value {
  const { g } = ctx;
  const m = g.cast(g.unsqueeze(attentionMask, [1, 2]), "float32");
  return g.mul(g.sub(g.scalar(1), m), g.scalar(MASKED));
}

/** softmax(q kᵀ / √d + mask) v, dropout on the probabilities; q [.., Tq, D], k already transposed [.., D, T], v [.., T, D]. */
function attend(ctx: BuildContext, q: Value, k: Value, v: Value, mask: Value): Value {
  const { g, cfg } = ctx;
  const d = cfg.hiddenSize / cfg.numAttentionHeads;
  const scores = g.add(g.matmul(g.mul(q, g.scalar(1 / Math.sqrt(d))), k), mask);
  return g.matmul(dropout(ctx, g.softmax(scores, -1), cfg.attentionProbsDropoutProb), v);
}

/** x is [batch * seq, hidden]; `headShape` is the runtime [batch, seq, heads, head_size]. */
function selfAttention(ctx: BuildContext, x: Value, mask: Value, headShape: Value, dims: Dim[], prefix: string): Value {
  const { g, cfg } = ctx;
  const h = cfg.hiddenSize;
  const heads = cfg.numAttentionHeads;
  const d = h / heads;
  const split = (name: string) => g.reshapeTo(linear(ctx, x, `${prefix}.attention.self.${name}`, h, h), headShape, [...dims, heads, d]);
  const q = g.transpose(split("query"), [0, 2, 1, 3]); // [B, A, T, D]
  const k = g.transpose(split("key"), [0, 2, 3, 1]); // [B, A, D, T]
  const v = g.transpose(split("value"), [0, 2, 1, 3]); // [B, A, T, D]
  const context = g.reshape(g.transpose(attend(ctx, q, k, v, mask), [0, 2, 1, 3]), [-1, h]);
  return denseAddNorm(ctx, context, x, `${prefix}.attention.output.dense`, h, `${prefix}.attention.output.LayerNorm`);
}

/**
 * The same as one Attention op: its merged weights [in, 3·hidden] are Transpose(Concat(Wq, Wk, Wv)) of
 * the HF tensors, which ONNX Runtime folds into one initializer when the session is made. `mask` is the
 * int32 attention mask; `shape3` the runtime [batch, seq, hidden].
 */
function fusedSelfAttention(ctx: BuildContext, x: Value, mask: Value, shape3: Value, dims: Dim[], prefix: string): Value {
  const { g, cfg } = ctx;
  const h = cfg.hiddenSize;
  const qkv = ["query", "key", "value"].map((n) => ({
    w: ctx.param(`${prefix}.attention.self.${n}.weight`, [h, h]),
    b: ctx.param(`${prefix}.attention.self.${n}.bias`, [h]),
  }));
  const weights = g.transpose(g.concat(qkv.map((p) => p.w), 0), [1, 0]);
  const bias = g.concat(qkv.map((p) => p.b), 0);
  const context = g.attention(g.reshapeTo(x, shape3, [...dims, h]), weights, bias, mask, cfg.numAttentionHeads, MASKED);
  return denseAddNorm(ctx, g.reshape(context, [-1, h]), x, `${prefix}.attention.output.dense`, h, `${prefix}.attention.output.LayerNorm`);
}

function feedForward(ctx: BuildContext, x: Value, prefix: string): Value {
  const { cfg } = ctx;
  const inner = denseGelu(ctx, x, `${prefix}.intermediate.dense`, cfg.hiddenSize, cfg.intermediateSize);
  return denseAddNorm(ctx, inner, x, `${prefix}.output.dense`, cfg.intermediateSize, `${prefix}.output.LayerNorm`);
}

/** The encoder works on [batch * seq, hidden] rows: every dense layer is one plain 2-D GEMM. */
export function bert(ctx: BuildContext, inputs: BertInputs): BertOutputs {
  const { g, cfg } = ctx;
  if (fused(ctx) && ctx.training) throw new Error("fused graphs are for inference: their ops have no gradients");
  const embeddingOutput = embeddings(ctx, inputs);
  const dims = inputs.inputIds.shape;
  const shape3 = () => g.concat([g.shapeOf(inputs.inputIds), g.ints([cfg.hiddenSize])], 0);
  const mask = fused(ctx) ? g.cast(inputs.attentionMask, "int32") : extendedMask(ctx, inputs.attentionMask);
  // Fused, Attention reads [batch, seq, hidden]; else the heads are split to [batch, seq, heads, head_size].
  const headShape = fused(ctx) ? shape3() : g.concat([g.shapeOf(inputs.inputIds), g.ints([cfg.numAttentionHeads, cfg.hiddenSize / cfg.numAttentionHeads])], 0);
  const attention = fused(ctx) ? fusedSelfAttention : selfAttention;
  let x = g.reshape(embeddingOutput, [-1, cfg.hiddenSize]);
  let beforeLast = x;
  for (let i = 0; i < cfg.numHiddenLayers; i++) {
    const prefix = `bert.encoder.layer.${i}`;
    beforeLast = x;
    x = feedForward(ctx, attention(ctx, x, mask, headShape, dims, prefix), prefix);
  }
  const sequenceOutput = g.reshapeTo(x, fused(ctx) ? headShape : shape3(), [...dims, cfg.hiddenSize]);
  const out: BertOutputs = { embeddingOutput, sequenceOutput, flatSequence: x };
  if (inputs.outputRows && cfg.numHiddenLayers > 0) {
    if (!ctx.inference) throw new Error("outputRows is for inference graphs");
    const prefix = `bert.encoder.layer.${cfg.numHiddenLayers - 1}`;
    out.lastRows = feedForward(ctx, attentionAtRows(ctx, beforeLast, inputs, prefix), prefix);
  }
  return out;
}

/**
 * Self-attention for the queries at `inputs.outputRows` alone (plain ops, any fusion): keys and values
 * from every position of each query's own sequence, scores masked as HF masks them; returns the
 * attention block's output [rows, hidden] (after its residual LayerNorm), the input of the feed-forward.
 */
function attentionAtRows(ctx: BuildContext, x: Value, inputs: BertInputs, prefix: string): Value {
  const { g, cfg } = ctx;
  const h = cfg.hiddenSize;
  const heads = cfg.numAttentionHeads;
  const d = h / heads;
  const rows = inputs.outputRows!;
  const seqLen = g.squeeze(g.shapeOf(inputs.inputIds, 1, 2), [0]);
  const sequenceOf = g.div(rows, seqLen); // the batch row of each query
  const xq = g.gather(x, rows); // [P, H]
  const perSequence = g.concat([g.shapeOf(inputs.inputIds), g.ints([heads, d])], 0); // [B, T, A, D]
  const projected = (name: string, at: Value, shape: Value, dims: Dim[]) => g.reshapeTo(linear(ctx, at, `${prefix}.attention.self.${name}`, h, h), shape, dims);
  const [B, T] = inputs.inputIds.shape;
  const k = g.gather(g.transpose(projected("key", x, perSequence, [B, T, heads, d]), [0, 2, 3, 1]), sequenceOf); // [P, A, D, T]
  const v = g.gather(g.transpose(projected("value", x, perSequence, [B, T, heads, d]), [0, 2, 1, 3]), sequenceOf); // [P, A, T, D]
  const q = g.reshape(linear(ctx, xq, `${prefix}.attention.self.query`, h, h), [-1, heads, 1, d]); // [P, A, 1, D]
  const mask = g.gather(extendedMask(ctx, inputs.attentionMask), sequenceOf); // [P, 1, 1, T]
  const context = g.reshape(attend(ctx, q, k, v, mask), [-1, h]); // [P, H]
  return denseAddNorm(ctx, context, xq, `${prefix}.attention.output.dense`, h, `${prefix}.attention.output.LayerNorm`);
}

/** tanh(dense(hidden state of [CLS])): rows 0, T, 2T, ... of the flattened sequence. */
export function pooler(ctx: BuildContext, out: BertOutputs, inputIds: Value): Value {
  const { g } = ctx;
  const rows = g.squeeze(g.shapeOf(out.flatSequence, 0, 1), [0]);
  const seqLen = g.squeeze(g.shapeOf(inputIds, -1), [0]);
  const cls = g.gather(out.flatSequence, g.range(g.constant("int64", [0], []), rows, seqLen));
  const h = ctx.cfg.hiddenSize;
  return g.tanh(linear(ctx, cls, "bert.pooler.dense", h, h));
}
