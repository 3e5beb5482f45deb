// A small typed graph builder that emits ONNX. Every op method infers its output dtype and shape
// (dimensions are numbers or symbolic names such as "batch"), which the autodiff rules rely on.
import { DataType, encodeModel, type AttrValue, type NodeProto, type TensorProto } from "./onnx.js";

export type DType = "float32" | "int64" | "int32" | "bool" | "uint8" | "int8";
export type Dim = number | string;
export type Shape = Dim[];

export const OPSET = 20;
/** ONNX Runtime's contrib ops (Attention, SkipLayerNormalization, ...): eval graphs only, no autodiff rules. */
export const CONTRIB = "com.microsoft";

export interface Value {
  readonly id: number;
  name: string;
  readonly dtype: DType;
  readonly shape: Shape;
  /** The node that produces this value; absent for graph inputs and initializers. */
  readonly producer?: Node;
}

export interface Node {
  readonly op: string;
  readonly domain: string;
  readonly inputs: (Value | null)[];
  readonly outputs: Value[];
  readonly attrs: Record<string, AttrValue>;
  /** Facts for the backward pass that ONNX does not carry (e.g. an embedding's padding index). */
  meta?: { paddingIdx?: number };
}

const DTYPE_CODE: Record<DType, DataType> = {
  float32: DataType.FLOAT,
  int64: DataType.INT64,
  int32: DataType.INT32,
  bool: DataType.BOOL,
  uint8: DataType.UINT8,
  int8: DataType.INT8,
};

export class GraphError extends Error {}

let symbolCounter = 0;
/** A fresh symbolic dimension, for shapes the builder cannot know statically. */
function freshDim(): string {
  return `d${++symbolCounter}`;
}

function size(shape: Shape): number | undefined {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== "number") return undefined;
    n *= d;
  }
  return n;
}

export function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new GraphError(`axis ${axis} out of range for rank ${rank}`);
  return a;
}

/** NumPy-style broadcast of two shapes. */
export function broadcastShapes(a: Shape, b: Shape): Shape {
  const rank = Math.max(a.length, b.length);
  const out: Shape = [];
  for (let i = 0; i < rank; i++) {
    const da = i < rank - a.length ? 1 : a[i - (rank - a.length)];
    const db = i < rank - b.length ? 1 : b[i - (rank - b.length)];
    if (da === 1) out.push(db);
    else if (db === 1 || da === db) out.push(da);
    else if (typeof da === "number" && typeof db === "number")
      throw new GraphError(`cannot broadcast [${a}] with [${b}]`);
    else out.push(typeof da === "number" ? da : db);
  }
  return out;
}

export class Graph {
  readonly nodes: Node[] = [];
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  readonly initializers = new Map<Value, TensorProto>();
  private nextId = 0;
  private readonly usedNames = new Set<string>();
  private readonly constCache = new Map<string, Value>();

  constructor(readonly name = "bert") {}

  private value(dtype: DType, shape: Shape, name?: string, producer?: Node): Value {
    const id = this.nextId++;
    const v: Value = { id, name: name ?? `t${id}`, dtype, shape, producer };
    if (name !== undefined) {
      if (this.usedNames.has(name)) throw new GraphError(`duplicate value name ${name}`);
      this.usedNames.add(name);
    }
    return v;
  }

  input(name: string, dtype: DType, shape: Shape): Value {
    const v = this.value(dtype, shape, name);
    this.inputs.push(v);
    return v;
  }

  /** Marks `v` as a graph output called `name` (an Identity is inserted when the name is taken). */
  output(v: Value, name: string): Value {
    let out = v;
    if (v.name !== name) {
      if (v.producer && !this.usedNames.has(v.name) && !this.usedNames.has(name)) {
        // An unnamed intermediate simply takes the output's name: no copy.
        v.name = name;
        this.usedNames.add(name);
      } else {
        out = this.node("Identity", [v], {}, [{ dtype: v.dtype, shape: v.shape, name }])[0];
      }
    }
    this.outputs.push(out);
    return out;
  }

  /** An initializer with its bytes, or (`external`) bytes at an offset of an external data file. */
  initializer(name: string, dtype: DType, shape: Shape, raw: Uint8Array, external?: TensorProto["external"]): Value {
    const dims = shape.map((d) => {
      if (typeof d !== "number") throw new GraphError(`initializer ${name} needs a static shape`);
      return d;
    });
    const v = this.value(dtype, shape, name);
    this.initializers.set(v, { name, dataType: DTYPE_CODE[dtype], dims, raw, ...(external && { external }) });
    return v;
  }

  /** A small constant, shared when the same one is asked for twice. */
  constant(dtype: "float32" | "int64", values: number[], shape: Shape = [values.length]): Value {
    const key = `${dtype}:${shape.join(",")}:${values.join(",")}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const raw =
      dtype === "float32"
        ? new Uint8Array(Float32Array.from(values).buffer)
        : new Uint8Array(BigInt64Array.from(values.map((x) => BigInt(x))).buffer);
    const v = this.initializer(`const${this.nextId}`, dtype, shape, raw);
    this.constCache.set(key, v);
    return v;
  }

  /** The values of an int64 constant made by `constant`, if `v` is one. */
  constantValues(v: Value): number[] | undefined {
    const t = this.initializers.get(v);
    if (!t || v.dtype !== "int64") return undefined;
    return Array.from(new BigInt64Array(t.raw.slice().buffer), Number);
  }

  scalar(x: number): Value {
    return this.constant("float32", [x], []);
  }

  ints(xs: number[]): Value {
    return this.constant("int64", xs);
  }

  node(
    op: string,
    inputs: (Value | null)[],
    attrs: Record<string, AttrValue>,
    outs: { dtype: DType; shape: Shape; name?: string }[],
    domain = "",
  ): Value[] {
    const outputs: Value[] = [];
    const node: Node = { op, domain, inputs, outputs, attrs };
    for (const o of outs) outputs.push(this.value(o.dtype, o.shape, o.name, node));
    this.nodes.push(node);
    return outputs;
  }

  private one(op: string, inputs: (Value | null)[], attrs: Record<string, AttrValue>, dtype: DType, shape: Shape): Value {
    return this.node(op, inputs, attrs, [{ dtype, shape }])[0];
  }

  // ---- elementwise ----
  private binary(op: string, a: Value, b: Value, dtype: DType = a.dtype): Value {
    return this.one(op, [a, b], {}, dtype, broadcastShapes(a.shape, b.shape));
  }
  add(a: Value, b: Value): Value {
    return this.binary("Add", a, b);
  }
  sub(a: Value, b: Value): Value {
    return this.binary("Sub", a, b);
  }
  mul(a: Value, b: Value): Value {
    return this.binary("Mul", a, b);
  }
  div(a: Value, b: Value): Value {
    return this.binary("Div", a, b);
  }
  max(a: Value, b: Value): Value {
    return this.binary("Max", a, b);
  }
  min(a: Value, b: Value): Value {
    return this.binary("Min", a, b);
  }
  equal(a: Value, b: Value): Value {
    return this.binary("Equal", a, b, "bool");
  }
  greater(a: Value, b: Value): Value {
    return this.binary("Greater", a, b, "bool");
  }
  private unary(op: string, x: Value, attrs: Record<string, AttrValue> = {}): Value {
    return this.one(op, [x], attrs, x.dtype, x.shape);
  }
  neg(x: Value): Value {
    return this.unary("Neg", x);
  }
  exp(x: Value): Value {
    return this.unary("Exp", x);
  }
  sqrt(x: Value): Value {
    return this.unary("Sqrt", x);
  }
  tanh(x: Value): Value {
    return this.unary("Tanh", x);
  }
  erf(x: Value): Value {
    return this.unary("Erf", x);
  }
  /** Exact (erf) GELU, as BERT's `hidden_act: "gelu"`. */
  gelu(x: Value): Value {
    return this.unary("Gelu", x);
  }
  not(x: Value): Value {
    return this.unary("Not", x);
  }
  cast(x: Value, to: DType): Value {
    return this.one("Cast", [x], { to: DTYPE_CODE[to] }, to, x.shape);
  }
  where(cond: Value, a: Value, b: Value): Value {
    return this.one("Where", [cond, a, b], {}, a.dtype, broadcastShapes(cond.shape, broadcastShapes(a.shape, b.shape)));
  }
  softmax(x: Value, axis = -1): Value {
    return this.unary("Softmax", x, { axis });
  }
  logSoftmax(x: Value, axis = -1): Value {
    return this.unary("LogSoftmax", x, { axis });
  }

  // ---- linear algebra ----
  matmul(a: Value, b: Value): Value {
    if (a.shape.length < 2 || b.shape.length < 2) throw new GraphError("matmul needs rank >= 2 operands");
    const [m, k1] = a.shape.slice(-2);
    const [k2, n] = b.shape.slice(-2);
    if (typeof k1 === "number" && typeof k2 === "number" && k1 !== k2)
      throw new GraphError(`matmul inner dimensions differ: [${a.shape}] x [${b.shape}]`);
    const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
    return this.one("MatMul", [a, b], {}, a.dtype, [...batch, m, n]);
  }

  /** General matrix multiply of 2-D operands: y = op(a) op(b) + c, op = transpose when asked. */
  gemm(a: Value, b: Value, c: Value | null, transA = false, transB = false): Value {
    if (a.shape.length !== 2 || b.shape.length !== 2) throw new GraphError("gemm needs 2-D operands");
    const m = transA ? a.shape[1] : a.shape[0];
    const n = transB ? b.shape[0] : b.shape[1];
    const attrs: Record<string, AttrValue> = {};
    if (transA) attrs.transA = 1;
    if (transB) attrs.transB = 1;
    return this.one("Gemm", c ? [a, b, c] : [a, b], attrs, a.dtype, [m, n]);
  }

  /** Swaps the last two axes. */
  transposeLast(x: Value): Value {
    const r = x.shape.length;
    const perm = [...Array(r).keys()];
    [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
    return this.transpose(x, perm);
  }

  // ---- shape ----
  transpose(x: Value, perm: number[]): Value {
    return this.one("Transpose", [x], { perm }, x.dtype, perm.map((p) => x.shape[p]));
  }

  /** Reshape to a static target (0 copies the input's dimension, -1 is inferred). */
  reshape(x: Value, target: number[]): Value {
    const shape: Shape = target.map((d, i) => (d === 0 ? x.shape[i] : d));
    const minus = shape.indexOf(-1);
    if (minus >= 0) {
      const known = size(x.shape);
      const rest = size(shape.filter((_, i) => i !== minus));
      shape[minus] = known !== undefined && rest !== undefined ? known / rest : freshDim();
    }
    return this.one("Reshape", [x, this.ints(target)], {}, x.dtype, shape);
  }

  /** Reshape to the runtime shape of `like`. */
  reshapeLike(x: Value, like: Value): Value {
    return this.reshapeTo(x, this.shapeOf(like), like.shape);
  }

  /** Reshape to a shape computed in the graph (an int64 vector), whose static form is `staticShape`. */
  reshapeTo(x: Value, shape: Value, staticShape: Shape): Value {
    return this.one("Reshape", [x, shape], {}, x.dtype, staticShape);
  }

  shapeOf(x: Value, start?: number, end?: number): Value {
    const attrs: Record<string, AttrValue> = {};
    if (start !== undefined) attrs.start = start;
    if (end !== undefined) attrs.end = end;
    const r = x.shape.length;
    const s = start === undefined ? 0 : normAxis(start, r);
    const e = end === undefined ? r : end < 0 ? end + r : Math.min(end, r);
    return this.one("Shape", [x], attrs, "int64", [e - s]);
  }

  unsqueeze(x: Value, axes: number[]): Value {
    const rank = x.shape.length + axes.length;
    const norm = axes.map((a) => normAxis(a, rank));
    const shape: Shape = [];
    let j = 0;
    for (let i = 0; i < rank; i++) shape.push(norm.includes(i) ? 1 : x.shape[j++]);
    return this.one("Unsqueeze", [x, this.ints(axes)], {}, x.dtype, shape);
  }

  squeeze(x: Value, axes: number[]): Value {
    const norm = axes.map((a) => normAxis(a, x.shape.length));
    return this.one("Squeeze", [x, this.ints(axes)], {}, x.dtype, x.shape.filter((_, i) => !norm.includes(i)));
  }

  expandLike(x: Value, like: Value): Value {
    return this.one("Expand", [x, this.shapeOf(like)], {}, x.dtype, broadcastShapes(x.shape, like.shape));
  }

  concat(xs: Value[], axis: number): Value {
    const a = normAxis(axis, xs[0].shape.length);
    const shape = [...xs[0].shape];
    const dims = xs.map((x) => x.shape[a]);
    shape[a] = dims.every((d) => typeof d === "number") ? (dims as number[]).reduce((s, d) => s + d, 0) : freshDim();
    return this.one("Concat", xs, { axis }, xs[0].dtype, shape);
  }

  constantOfShape(shape: Value, staticShape: Shape, value = 0): Value {
    const t: TensorProto = { dataType: DataType.FLOAT, dims: [1], raw: new Uint8Array(Float32Array.of(value).buffer) };
    return this.one("ConstantOfShape", [shape], { value: t }, "float32", staticShape);
  }

  zerosLike(x: Value): Value {
    return this.constantOfShape(this.shapeOf(x), x.shape);
  }

  range(start: Value, limit: Value, delta: Value): Value {
    return this.one("Range", [start, limit, delta], {}, start.dtype, [freshDim()]);
  }

  // ---- indexing ----
  gather(data: Value, indices: Value, axis = 0): Value {
    const a = normAxis(axis, data.shape.length);
    const shape = [...data.shape.slice(0, a), ...indices.shape, ...data.shape.slice(a + 1)];
    return this.one("Gather", [data, indices], { axis }, data.dtype, shape);
  }

  /** Embedding lookup; as torch's nn.Embedding(padding_idx), the padding row gets no gradient. */
  embedding(table: Value, ids: Value, paddingIdx?: number): Value {
    const y = this.gather(table, ids);
    if (paddingIdx !== undefined) y.producer!.meta = { paddingIdx };
    return y;
  }

  gatherElements(data: Value, indices: Value, axis: number): Value {
    return this.one("GatherElements", [data, indices], { axis }, data.dtype, indices.shape);
  }

  scatterNDAdd(data: Value, indices: Value, updates: Value): Value {
    return this.one("ScatterND", [data, indices, updates], { reduction: "add" }, data.dtype, data.shape);
  }

  scatterElementsAdd(data: Value, indices: Value, updates: Value, axis: number): Value {
    return this.one("ScatterElements", [data, indices, updates], { axis, reduction: "add" }, data.dtype, data.shape);
  }

  // ---- reductions ----
  private reduce(op: string, x: Value, axes: number[] | undefined, keepdims: boolean): Value {
    const r = x.shape.length;
    const norm = axes === undefined ? [...Array(r).keys()] : axes.map((a) => normAxis(a, r));
    const shape: Shape = [];
    x.shape.forEach((d, i) => {
      if (!norm.includes(i)) shape.push(d);
      else if (keepdims) shape.push(1);
    });
    const inputs = axes === undefined ? [x] : [x, this.ints(axes)];
    return this.one(op, inputs, { keepdims: keepdims ? 1 : 0 }, x.dtype, shape);
  }
  reduceSum(x: Value, axes?: number[], keepdims = false): Value {
    return this.reduce("ReduceSum", x, axes, keepdims);
  }
  reduceMean(x: Value, axes?: number[], keepdims = false): Value {
    return this.reduce("ReduceMean", x, axes, keepdims);
  }
  /** Sum of squares of all elements, as a scalar. */
  reduceSumSquare(x: Value): Value {
    return this.one("ReduceSumSquare", [x], { keepdims: 0 }, x.dtype, []);
  }
  argMax(x: Value, axis = -1): Value {
    const a = normAxis(axis, x.shape.length);
    return this.one("ArgMax", [x], { axis: a, keepdims: 0 }, "int64", x.shape.filter((_, i) => i !== a));
  }

  // ---- composite-looking ONNX ops ----
  /** LayerNormalization over the last axis; also returns the saved mean and 1/std for the backward pass. */
  layerNorm(x: Value, gamma: Value, beta: Value, eps: number): { y: Value; mean: Value; invStd: Value } {
    const stat = [...x.shape.slice(0, -1), 1];
    const [y, mean, invStd] = this.node("LayerNormalization", [x, gamma, beta], { axis: -1, epsilon: { float: eps } }, [
      { dtype: x.dtype, shape: x.shape },
      { dtype: x.dtype, shape: stat },
      { dtype: x.dtype, shape: stat },
    ]);
    return { y, mean, invStd };
  }

  /**
   * Training-mode dropout, y = x · keep / (1 − ratio), from RandomUniformLike rather than ONNX Dropout:
   * ONNX Runtime's Dropout seeds a fresh engine with seed + n at its n-th run, so a node's mask at step n is
   * the next-seeded node's mask at step n − 1 and some elements stay dropped for many steps in a row.
   * RandomUniformLike draws on from one engine per node (seeded by `seed`, below 2^24 so the float attribute
   * holds it exactly; a new session starts the stream again). Returns the output and the boolean keep mask,
   * which the backward pass reuses through the Where rule.
   */
  dropout(x: Value, ratio: number, seed: number): { y: Value; mask: Value } {
    if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 24) throw new GraphError(`dropout seed must be an integer in [0, 2^24), got ${seed}`);
    const u = this.node("RandomUniformLike", [x], { dtype: 1, seed: { float: seed } }, [{ dtype: "float32", shape: x.shape }])[0];
    const keep = this.node("Greater", [u, this.scalar(ratio)], {}, [{ dtype: "bool", shape: x.shape }])[0];
    return { y: this.where(keep, this.mul(x, this.scalar(1 / (1 - ratio))), this.scalar(0)), mask: keep };
  }

  // ---- ONNX Runtime's fused ops (domain com.microsoft; ORT's docs/ContribOperators.md): eval graphs only ----
  /**
   * LayerNorm(word[ids] + position[0..seq) + segment[segments]): BERT's embeddings in one op. ids and
   * segments are int32 [batch, seq]; returns [batch, seq, hidden].
   */
  embedLayerNorm(ids: Value, segments: Value, word: Value, position: Value, segment: Value, gamma: Value, beta: Value, eps: number): Value {
    const shape = [...ids.shape, word.shape[1]];
    // mask_index_type 0: no mask_index output (Attention reads the attention mask itself).
    const attrs = { epsilon: { float: eps }, mask_index_type: 0 };
    return this.node("EmbedLayerNormalization", [ids, segments, word, position, segment, gamma, beta], attrs, [{ dtype: "float32", shape }], CONTRIB)[0];
  }

  /**
   * Bidirectional multi-head self-attention with its Q/K/V projection: x [batch, seq, in], weights
   * [in, 3·hidden] (Q, K, V side by side), bias [3·hidden], mask int32 [batch, seq] (1 attended, 0 not:
   * `maskFilterValue` is added to the scores of the others); scores scaled by 1/√head_size. Returns the
   * context [batch, seq, hidden], before the output projection.
   */
  attention(x: Value, weights: Value, bias: Value, mask: Value, heads: number, maskFilterValue: number): Value {
    const hidden = typeof weights.shape[1] === "number" ? weights.shape[1] / 3 : freshDim();
    const attrs = { num_heads: heads, mask_filter_value: { float: maskFilterValue } };
    return this.node("Attention", [x, weights, bias, mask], attrs, [{ dtype: "float32", shape: [...x.shape.slice(0, -1), hidden] }], CONTRIB)[0];
  }

  /** LayerNorm(x + skip + bias) over the last axis (bias optional). */
  skipLayerNorm(x: Value, skip: Value, gamma: Value, beta: Value, bias: Value | null, eps: number): Value {
    return this.node("SkipLayerNormalization", bias ? [x, skip, gamma, beta, bias] : [x, skip, gamma, beta], { epsilon: { float: eps } }, [{ dtype: x.dtype, shape: x.shape }], CONTRIB)[0];
  }

  /**
   * x · dequantize(b) (+ bias): x float [..., K] quantized to uint8 per call (its own range), b int8
   * [K, N] with a scale per column (zero point 0), accumulated in int32 and rescaled to float.
   */
  dynamicQuantizeMatMul(x: Value, b: Value, bScale: Value, bias: Value | null): Value {
    const inputs = bias ? [x, b, bScale, null, bias] : [x, b, bScale];
    return this.node("DynamicQuantizeMatMul", inputs, {}, [{ dtype: "float32", shape: [...x.shape.slice(0, -1), b.shape[1]] }], CONTRIB)[0];
  }

  /** Exact (erf) GELU of x + bias, bias 1-D over the last axis. */
  biasGelu(x: Value, bias: Value): Value {
    return this.node("BiasGelu", [x, bias], {}, [{ dtype: x.dtype, shape: x.shape }], CONTRIB)[0];
  }

  // ---- emission ----
  /** The nodes that the outputs depend on, in order: what `prune` keeps. */
  private live(): Node[] {
    const needed = new Set<Value>(this.outputs);
    const keep = new Set<Node>();
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i];
      if (!n.outputs.some((v) => needed.has(v))) continue;
      keep.add(n);
      for (const v of n.inputs) if (v) needed.add(v);
    }
    return this.nodes.filter((n) => keep.has(n));
  }

  /**
   * The ONNX model. `prune` leaves out the nodes no output depends on and the initializers no node reads
   * (an eval graph built for some of a head's outputs; ONNX Runtime keeps such nodes and runs them).
   */
  toModel(o: { prune?: boolean } = {}): Uint8Array {
    const kept = o.prune ? this.live() : this.nodes;
    const read = o.prune && new Set(kept.flatMap((n) => n.inputs).concat(this.outputs));
    const initializers = read ? [...this.initializers].filter(([v]) => read.has(v)).map(([, t]) => t) : [...this.initializers.values()];
    const nodes: NodeProto[] = kept.map((n, i) => ({
      opType: n.op,
      domain: n.domain || undefined,
      name: `${n.op}_${i}`,
      inputs: n.inputs.map((v) => (v ? v.name : "")),
      outputs: n.outputs.map((v) => v.name),
      attrs: n.attrs,
    }));
    const info = (v: Value) => ({ name: v.name, dataType: DTYPE_CODE[v.dtype], shape: v.shape });
    return encodeModel({
      graph: {
        name: this.name,
        nodes,
        inputs: this.inputs.map(info),
        outputs: this.outputs.map(info),
        initializers,
      },
      opsets: [{ domain: "", version: OPSET }, ...(kept.some((n) => n.domain === CONTRIB) ? [{ domain: CONTRIB, version: 1 }] : [])],
    });
  }
}
