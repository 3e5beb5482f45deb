// BERT (Devlin et al. 2018) as an ONNX graph, with Hugging Face `modeling_bert.py` parameter names:
// token + segment + learned position embeddings, post-LayerNorm encoder layers with GELU feed-forward,
// and a tanh pooler on [CLS].
import type { BertConfig } from "./config.js";
import type { Dim, Graph, Value } from "./graph.js";

/** Returns the graph value of a parameter (a graph input while training, an initializer for inference). */
export type ParamFactory = (name: string, shape: number[]) => Value;

export interface BuildContext {
  readonly g: Graph;
  readonly cfg: BertConfig;
  readonly param: ParamFactory;
  /** Training mode turns dropout on. */
  readonly training: boolean;
  /** Each dropout node gets its own seed, mixed from this one and the node's index. */
  dropoutSeed: number;
  /** Dropout nodes built so far. */
  dropoutNodes?: number;
}

export interface BertInputs {
  /** [batch, seq] int64 */
  inputIds: Value;
  tokenTypeIds: Value;
  attentionMask: Value;
}

export interface BertOutputs {
  embeddingOutput: Value;
  /** [batch, seq, hidden] */
  sequenceOutput: Value;
  /** [batch * seq, hidden]: the sequence output with batch and positions flattened, for row gathers. */
  flatSequence: Value;
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
  const w = ctx.param(`${name}.weight`, [outFeatures, inFeatures]);
  const b = ctx.param(`${name}.bias`, [outFeatures]);
  return ctx.g.gemm(x, w, b, false, true);
}

export function layerNorm(ctx: BuildContext, x: Value, name: string): Value {
  const h = ctx.cfg.hiddenSize;
  return ctx.g.layerNorm(x, ctx.param(`${name}.weight`, [h]), ctx.param(`${name}.bias`, [h]), ctx.cfg.layerNormEps).y;
}

function embeddings(ctx: BuildContext, inputs: BertInputs): Value {
  const { g, cfg } = ctx;
  const h = cfg.hiddenSize;
  const word = g.embedding(ctx.param("bert.embeddings.word_embeddings.weight", [cfg.vocabSize, h]), inputs.inputIds, cfg.padTokenId);
  const seqLen = g.squeeze(g.shapeOf(inputs.inputIds, 1, 2), [0]);
  const positionIds = g.range(g.constant("int64", [0], []), seqLen, g.constant("int64", [1], []));
  const position = g.gather(ctx.param("bert.embeddings.position_embeddings.weight", [cfg.maxPositionEmbeddings, h]), positionIds);
  const segment = g.gather(ctx.param("bert.embeddings.token_type_embeddings.weight", [cfg.typeVocabSize, h]), inputs.tokenTypeIds);
  const sum = g.add(g.add(word, segment), position);
  return dropout(ctx, layerNorm(ctx, sum, "bert.embeddings.LayerNorm"), cfg.hiddenDropoutProb);
}

/** Additive attention mask [batch, 1, 1, seq]: 0 where attended, float32 min where padded (as HF). */
function extendedMask(ctx: BuildContext, attentionMask: Value): Value {
  const { g } = ctx;
  const m = g.cast(g.unsqueeze(attentionMask, [1, 2]), "float32");
  return g.mul(g.sub(g.scalar(1), m), g.scalar(-3.4028234663852886e38));
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
  const scores = g.add(g.matmul(g.mul(q, g.scalar(1 / Math.sqrt(d))), k), mask);
  const probs = dropout(ctx, g.softmax(scores, -1), cfg.attentionProbsDropoutProb);
  const context = g.reshape(g.transpose(g.matmul(probs, v), [0, 2, 1, 3]), [-1, h]);
  const out = dropout(ctx, linear(ctx, context, `${prefix}.attention.output.dense`, h, h), cfg.hiddenDropoutProb);
  return layerNorm(ctx, g.add(out, x), `${prefix}.attention.output.LayerNorm`);
}

function feedForward(ctx: BuildContext, x: Value, prefix: string): Value {
  const { g, cfg } = ctx;
  const inner = g.gelu(linear(ctx, x, `${prefix}.intermediate.dense`, cfg.hiddenSize, cfg.intermediateSize));
  const out = dropout(ctx, linear(ctx, inner, `${prefix}.output.dense`, cfg.intermediateSize, cfg.hiddenSize), cfg.hiddenDropoutProb);
  return layerNorm(ctx, g.add(out, x), `${prefix}.output.LayerNorm`);
}

/** The encoder works on [batch * seq, hidden] rows: every dense layer is one plain 2-D GEMM. */
export function bert(ctx: BuildContext, inputs: BertInputs): BertOutputs {
  const { g, cfg } = ctx;
  const embeddingOutput = embeddings(ctx, inputs);
  const mask = extendedMask(ctx, inputs.attentionMask);
  const dims = inputs.inputIds.shape;
  const headShape = g.concat([g.shapeOf(inputs.inputIds), g.ints([cfg.numAttentionHeads, cfg.hiddenSize / cfg.numAttentionHeads])], 0);
  let x = g.reshape(embeddingOutput, [-1, cfg.hiddenSize]);
  for (let i = 0; i < cfg.numHiddenLayers; i++) {
    const prefix = `bert.encoder.layer.${i}`;
    x = feedForward(ctx, selfAttention(ctx, x, mask, headShape, dims, prefix), prefix);
  }
  const sequenceOutput = g.reshapeTo(x, g.concat([g.shapeOf(inputs.inputIds), g.ints([cfg.hiddenSize])], 0), [...dims, cfg.hiddenSize]);
  return { embeddingOutput, sequenceOutput, flatSequence: x };
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
