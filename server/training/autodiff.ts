// Reverse-mode automatic differentiation over the graph builder: one vector-Jacobian rule per op.
// `gradients` appends the backward nodes to the same graph, so forward and backward run as one session.
import { GraphError, normAxis, type Graph, type Node, type Shape, type Value } from "../model/graph.js";
import type { TensorProto } from "../model/onnx.js";

/**
 * Given the node and the gradients of its outputs, returns the gradient of each input (null = none).
 * `prior(i)` is the gradient input i has gathered so far; a rule that folds it into its own result
 * returns `{ total }` for that input (the Gather rule scatters into it instead of into zeros).
 */
type Rule = (
  g: Graph,
  node: Node,
  dy: (Value | null)[],
  needs: (i: number) => boolean,
  prior: (i: number) => Value | undefined,
) => (Value | null | { total: Value })[];

/**
 * Sum over the leading `lead` axes. With static shapes it is a GEMV with a row of ones, much faster in
 * ONNX Runtime than ReduceSum over leading axes; otherwise ReduceSum.
 */
export function sumLeading(g: Graph, x: Value, lead: number): Value {
  const rows = x.shape.slice(0, lead);
  const rest = x.shape.slice(lead);
  const allStatic = x.shape.every((d) => typeof d === "number");
  if (!allStatic || lead === 0) return g.reduceSum(x, [...Array(lead).keys()], false);
  const r = (rows as number[]).reduce((a, b) => a * b, 1);
  const c = (rest as number[]).reduce((a, b) => a * b, 1);
  const ones = g.constant("float32", new Array<number>(r).fill(1), [1, r]);
  return g.reshape(g.matmul(ones, g.reshape(x, [r, c])), rest as number[]);
}

/** Sums `dy` (shaped like a broadcast result) back down to the shape of `x`. */
export function unbroadcast(g: Graph, dy: Value, x: Value): Value {
  const out = dy.shape;
  const lead = out.length - x.shape.length;
  const axes: number[] = [];
  for (let i = 0; i < out.length; i++) {
    if (i < lead) axes.push(i);
    else if (x.shape[i - lead] === 1 && out[i] !== 1) axes.push(i);
  }
  if (axes.length === 0) return dy;
  if (axes.length === lead && sameStatic(out.slice(lead), x.shape)) return sumLeading(g, dy, lead);
  const summed = g.reduceSum(dy, axes, true);
  if (lead === 0) return summed;
  return sameStatic(summed.shape.slice(lead), x.shape) ? g.squeeze(summed, [...Array(lead).keys()]) : g.reshapeLike(summed, x);
}

function sameStatic(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function inverse(perm: number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2 = Math.SQRT1_2;

/** The vector-Jacobian rules. Inputs that are integer (indices, shapes) never get gradients. */
export const RULES: Record<string, Rule> = {
  Identity: (_g, _n, [dy]) => [dy],
  Add: (g, n, [dy], needs) => [needs(0) ? unbroadcast(g, dy!, n.inputs[0]!) : null, needs(1) ? unbroadcast(g, dy!, n.inputs[1]!) : null],
  Sub: (g, n, [dy], needs) => [
    needs(0) ? unbroadcast(g, dy!, n.inputs[0]!) : null,
    needs(1) ? unbroadcast(g, g.neg(dy!), n.inputs[1]!) : null,
  ],
  Mul: (g, n, [dy], needs) => {
    const [a, b] = n.inputs as Value[];
    return [needs(0) ? unbroadcast(g, g.mul(dy!, b), a) : null, needs(1) ? unbroadcast(g, g.mul(dy!, a), b) : null];
  },
  Div: (g, n, [dy], needs) => {
    const [a, b] = n.inputs as Value[];
    const y = n.outputs[0];
    return [
      needs(0) ? unbroadcast(g, g.div(dy!, b), a) : null,
      // d(a/b)/db = -y/b
      needs(1) ? unbroadcast(g, g.neg(g.div(g.mul(dy!, y), b)), b) : null,
    ];
  },
  Neg: (g, _n, [dy]) => [g.neg(dy!)],
  Exp: (g, n, [dy]) => [g.mul(dy!, n.outputs[0])],
  Sqrt: (g, n, [dy]) => [g.div(dy!, g.mul(g.scalar(2), n.outputs[0]))],
  Tanh: (g, n, [dy]) => {
    const y = n.outputs[0];
    return [g.mul(dy!, g.sub(g.scalar(1), g.mul(y, y)))];
  },
  Erf: (g, n, [dy]) => {
    const x = n.inputs[0]!;
    return [g.mul(dy!, g.mul(g.scalar(2 / Math.sqrt(Math.PI)), g.exp(g.neg(g.mul(x, x)))))];
  },
  // d/dx [x Φ(x)] = Φ(x) + x φ(x)
  Gelu: (g, n, [dy]) => {
    const x = n.inputs[0]!;
    const cdf = g.mul(g.scalar(0.5), g.add(g.scalar(1), g.erf(g.mul(x, g.scalar(INV_SQRT_2)))));
    const pdf = g.mul(g.scalar(SQRT_2_OVER_PI / 2), g.exp(g.mul(g.scalar(-0.5), g.mul(x, x))));
    return [g.mul(dy!, g.add(cdf, g.mul(x, pdf)))];
  },
  Cast: (_g, n, [dy]) => [n.inputs[0]!.dtype === "float32" ? dy : null],
  Where: (g, n, [dy], needs) => {
    const [c, a, b] = n.inputs as Value[];
    const zero = g.scalar(0);
    return [
      null,
      needs(1) ? unbroadcast(g, g.where(c, dy!, zero), a) : null,
      needs(2) ? unbroadcast(g, g.where(c, zero, dy!), b) : null,
    ];
  },
  MatMul: (g, n, [dy], needs) => {
    const [a, b] = n.inputs as Value[];
    let da: Value | null = null;
    let db: Value | null = null;
    if (needs(0)) da = unbroadcast(g, g.matmul(dy!, g.transposeLast(b)), a);
    if (needs(1)) {
      if (b.shape.length === 2 && a.shape.length > 2) {
        // Weight shared across the batch: one GEMM over the flattened leading axes.
        const k = a.shape[a.shape.length - 1] as number;
        const m = dy!.shape[dy!.shape.length - 1] as number;
        db = g.matmul(g.transposeLast(g.reshape(a, [-1, k])), g.reshape(dy!, [-1, m]));
      } else {
        db = unbroadcast(g, g.matmul(g.transposeLast(a), dy!), b);
      }
    }
    return [da, db];
  },
  Gemm: (g, n, [dy], needs) => {
    const [a, b, c] = n.inputs as (Value | undefined)[];
    if (n.attrs.transA) throw new GraphError("Gemm backward supports transA = 0");
    const transB = !!n.attrs.transB;
    // dy = G · s with s a scale per row and y wider than a (the MLM decoder's [rows, vocabulary] under
    // cross-entropy): da = s · (G op(b)ᵀ), d op(b) = Gᵀ (s · a), dc = sᵀ G, which scale [rows, in] instead
    // of the [rows, out] dy (pruned when nothing else reads it).
    const scaled = rowScaled(dy!);
    if (scaled && (!c || c.shape.length === 1) && wider(n.outputs[0], a!)) {
      const { G, s } = scaled;
      const da = needs(0) ? g.mul(g.gemm(G, b!, null, false, !transB), s) : null;
      const sa = needs(1) ? g.mul(a!, s) : null;
      const db = sa ? (transB ? g.gemm(G, sa, null, true, false) : g.gemm(sa, G, null, true, false)) : null;
      const dc = c && needs(2) ? g.reshapeLike(g.gemm(s, G, null, true, false), c) : null;
      return [da, db, dc];
    }
    // y = a op(b) + c:  da = dy op(b)ᵀ;  d op(b) = aᵀ dy, so db = dyᵀ a when b is transposed.
    const da = needs(0) ? g.gemm(dy!, b!, null, false, !transB) : null;
    const db = needs(1) ? (transB ? g.gemm(dy!, a!, null, true, false) : g.gemm(a!, dy!, null, true, false)) : null;
    const dc = c && needs(2) ? unbroadcast(g, dy!, c) : null;
    return [da, db, dc];
  },
  Transpose: (g, n, [dy]) => [g.transpose(dy!, inverse(n.attrs.perm as number[]))],
  Reshape: (g, n, [dy]) => [g.reshapeLike(dy!, n.inputs[0]!), null],
  Squeeze: (g, n, [dy]) => [g.reshapeLike(dy!, n.inputs[0]!), null],
  Unsqueeze: (g, n, [dy]) => [g.reshapeLike(dy!, n.inputs[0]!), null],
  Expand: (g, n, [dy]) => [unbroadcast(g, dy!, n.inputs[0]!), null],
  ReduceSum: (g, n, [dy]) => {
    const x = n.inputs[0]!;
    const kept = n.attrs.keepdims === 0 && n.inputs[1] ? g.unsqueeze(dy!, axesOf(g, n)) : dy!;
    return [g.expandLike(kept, x), null];
  },
  ReduceMean: (g, n, [dy]) => {
    const x = n.inputs[0]!;
    const axes = axesOf(g, n);
    const count = axes.reduce((c, a) => c * (x.shape[a < 0 ? a + x.shape.length : a] as number), 1);
    if (!Number.isFinite(count)) throw new GraphError("ReduceMean backward needs static reduced dimensions");
    const kept = n.attrs.keepdims === 0 ? g.unsqueeze(dy!, axes) : dy!;
    return [g.expandLike(g.mul(kept, g.scalar(1 / count)), x), null];
  },
  Softmax: (g, n, [dy]) => {
    const y = n.outputs[0];
    const axis = n.attrs.axis as number;
    const dot = g.reduceSum(g.mul(dy!, y), [axis], true);
    return [g.mul(y, g.sub(dy!, dot))];
  },
  // dx = dy − exp(y) Σ dy. Cross-entropy's dy is the GatherElements rule's scatter of the picked entries'
  // gradient u into zeros, one entry per row, so Σ dy = u and dx = (exp(y) − onehot) · (−u): Exp, a
  // scatter-add of −1 in place and a row scale, which the Gemm rule moves onto the smaller operands when
  // the logits come from one (the MLM decoder), instead of seven passes over the [rows, vocabulary]
  // logits (the scatter into zeros is pruned). Exp(y) measured faster there than Softmax(x).
  LogSoftmax: (g, n, [dy]) => {
    const y = n.outputs[0];
    const axis = normAxis(n.attrs.axis as number, y.shape.length);
    const picked = scatterIntoZeros(dy!, axis);
    if (picked) {
      const { indices, updates } = picked;
      const onehotOff = g.scatterElementsAdd(g.exp(y), indices, g.constantOfShape(g.shapeOf(updates), updates.shape, -1), axis);
      return [g.mul(onehotOff, g.neg(updates))];
    }
    return [g.sub(dy!, g.mul(g.exp(y), g.reduceSum(dy!, [axis], true)))];
  },
  LayerNormalization: (g, n, [dy], needs) => {
    const [x, gamma] = n.inputs as Value[];
    const [, mean, invStd] = n.outputs;
    const xhat = g.mul(g.sub(x, mean), invStd);
    const lead = [...Array(x.shape.length - 1).keys()];
    const dgamma = needs(1) ? sumLeading(g, g.mul(dy!, xhat), lead.length) : null;
    const dbeta = needs(2) ? sumLeading(g, dy!, lead.length) : null;
    let dx: Value | null = null;
    if (needs(0)) {
      const dxhat = g.mul(dy!, gamma);
      const m1 = g.reduceMean(dxhat, [-1], true);
      const m2 = g.reduceMean(g.mul(dxhat, xhat), [-1], true);
      dx = g.mul(invStd, g.sub(g.sub(dxhat, m1), g.mul(xhat, m2)));
    }
    return [dx, dgamma, dbeta];
  },
  Gather: (g, n, [dy], _needs, prior) => {
    const [data, indices] = n.inputs as Value[];
    if ((n.attrs.axis ?? 0) !== 0) throw new GraphError("Gather backward supports axis 0");
    let updates = dy!;
    const pad = n.meta?.paddingIdx;
    if (pad !== undefined) {
      // nn.Embedding(padding_idx): lookups of the padding row contribute nothing.
      const keep = g.cast(g.not(g.equal(indices, g.constant("int64", [pad], []))), "float32");
      updates = g.mul(updates, g.unsqueeze(keep, [-1]));
    }
    // Rows gathered twice get both contributions: ScatterND with reduction "add", into the gradient the
    // table already has (e.g. from the tied MLM decoder) rather than into zeros plus an Add.
    return [{ total: g.scatterNDAdd(prior(0) ?? g.zerosLike(data), g.unsqueeze(indices, [-1]), updates) }, null];
  },
  GatherElements: (g, n, [dy]) => {
    const [data, indices] = n.inputs as Value[];
    return [g.scatterElementsAdd(g.zerosLike(data), indices, dy!, n.attrs.axis as number), null];
  },
};

/**
 * When `dy` is ScatterElements(add) of updates into zeros with one index per row along `axis` (what the
 * GatherElements rule makes of a single pick per row), its indices and updates.
 */
function scatterIntoZeros(dy: Value, axis: number): { indices: Value; updates: Value } | undefined {
  const s = dy.producer;
  if (s?.op !== "ScatterElements" || s.attrs.reduction !== "add" || normAxis(s.attrs.axis as number, dy.shape.length) !== axis) return undefined;
  const [data, indices, updates] = s.inputs as Value[];
  const zeros = data.producer;
  const value = zeros?.op === "ConstantOfShape" ? (zeros.attrs.value as TensorProto | undefined) : undefined;
  const isZero = value?.raw !== undefined && value.raw.every((b) => b === 0);
  return isZero && indices.shape[axis] === 1 ? { indices, updates } : undefined;
}

/** When `dy` is Mul(G, s) (either order) with G [rows, n] and s [rows, 1]: the two. */
function rowScaled(dy: Value): { G: Value; s: Value } | undefined {
  const m = dy.producer;
  if (m?.op !== "Mul" || dy.shape.length !== 2) return undefined;
  const [p, q] = m.inputs as Value[];
  const isRowScale = (v: Value) => v.shape.length === 2 && v.shape[1] === 1 && v.shape[0] === dy.shape[0];
  if (isRowScale(q) && sameStatic(p.shape, dy.shape)) return { G: p, s: q };
  if (isRowScale(p) && sameStatic(q.shape, dy.shape)) return { G: q, s: p };
  return undefined;
}

/** Whether 2-D `y` has more columns than 2-D `a`, both known. */
function wider(y: Value, a: Value): boolean {
  const [ny, na] = [y.shape[1], a.shape[1]];
  return typeof ny === "number" && typeof na === "number" && ny > na;
}

function axesOf(g: Graph, n: Node): number[] {
  const axes = n.inputs[1] ? g.constantValues(n.inputs[1]) : undefined;
  if (!axes) throw new GraphError(`${n.op} backward needs constant axes`);
  return axes;
}

/** Ops whose inputs never carry gradients (integer, boolean, shape computations). */
const NON_DIFFERENTIABLE = new Set(["Shape", "Equal", "Greater", "Not", "ArgMax", "Range", "ConstantOfShape", "RandomUniformLike"]);

/**
 * Appends the backward pass of `loss` (a scalar or a tensor seeded with `seed`) and returns d loss / d x
 * for each x in `wrt`. Values used twice get their gradients summed.
 */
export function gradients(g: Graph, loss: Value, wrt: Value[], seed?: Value): Map<Value, Value> {
  // Which values depend on `wrt` (forward reachability).
  const active = new Set<Value>(wrt);
  for (const n of g.nodes) {
    if (NON_DIFFERENTIABLE.has(n.op)) continue;
    if (n.inputs.some((v) => v && active.has(v))) for (const o of n.outputs) if (o.dtype === "float32") active.add(o);
  }
  const grads = new Map<Value, Value>();
  const accumulate = (v: Value, d: Value) => {
    const prev = grads.get(v);
    grads.set(v, prev ? g.add(prev, d) : d);
  };
  accumulate(loss, seed ?? g.constant("float32", [1], loss.shape));

  const forward = g.nodes.slice();
  for (let i = forward.length - 1; i >= 0; i--) {
    const n = forward[i];
    const dy = n.outputs.map((o) => grads.get(o) ?? null);
    if (dy.every((d) => d === null)) continue;
    if (!n.inputs.some((v) => v && active.has(v))) continue;
    const rule = RULES[n.op];
    if (!rule) throw new GraphError(`no gradient rule for ${n.op}`);
    const needs = (k: number) => {
      const v = n.inputs[k];
      return !!v && active.has(v);
    };
    // Rules see zeros as null only for outputs they do not use; the main output must have a gradient.
    if (dy[0] === null) throw new GraphError(`${n.op}: gradient reaches only a secondary output`);
    const dx = rule(g, n, dy, needs, (k) => {
      const v = n.inputs[k];
      return v ? grads.get(v) : undefined;
    });
    n.inputs.forEach((v, k) => {
      const d = dx[k];
      if (!v || !d || !active.has(v)) return;
      if ("total" in d) grads.set(v, d.total);
      else accumulate(v, d);
    });
  }
  const out = new Map<Value, Value>();
  for (const w of wrt) {
    const d = grads.get(w);
    out.set(w, d ?? g.zerosLike(w));
  }
  return out;
}
