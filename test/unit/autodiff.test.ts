// Each vector-Jacobian rule against central finite differences, run through ONNX Runtime.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as ort from "onnxruntime-node";
import { mixSeed } from "../../server/model/bert.js";
import { Graph, type Value } from "../../server/model/graph.js";
import { crossEntropy } from "../../server/model/heads.js";
import { gradients } from "../../server/training/autodiff.js";
import { Rng } from "../../server/util/rng.js";

interface Case {
  name: string;
  /** Shapes of the differentiable float inputs. */
  shapes: number[][];
  build: (g: Graph, xs: Value[]) => Value;
  /** Maps a random normal to a valid input value (e.g. positive for Sqrt). */
  domain?: (x: number) => number;
}

const rng = new Rng(1234);
const randn = (n: number, f: (x: number) => number = (x) => x) => Float32Array.from({ length: n }, () => f(rng.normal()));
const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

async function check(c: Case): Promise<void> {
  const g = new Graph(c.name);
  const xs = c.shapes.map((s, i) => g.input(`x${i}`, "float32", s));
  const y = c.build(g, xs);
  // loss = sum(y * r) for a fixed random r: its gradient probes the whole Jacobian.
  const r = g.input("r", "float32", y.shape);
  const loss = g.reduceSum(g.mul(y, r), undefined, false);
  const grads = gradients(g, loss, xs);
  g.output(loss, "loss");
  xs.forEach((x, i) => g.output(grads.get(x)!, `g${i}`));
  const session = await ort.InferenceSession.create(g.toModel());
  const data = c.shapes.map((s) => randn(numel(s), c.domain));
  const rData = randn(numel(y.shape as number[]));
  const run = async (inputs: Float32Array[]) => {
    const feeds: Record<string, ort.Tensor> = { r: new ort.Tensor("float32", rData, y.shape as number[]) };
    inputs.forEach((d, i) => (feeds[`x${i}`] = new ort.Tensor("float32", d, c.shapes[i])));
    return session.run(feeds);
  };
  const base = await run(data);
  const eps = 1e-2;
  for (let i = 0; i < xs.length; i++) {
    const grad = base[`g${i}`].data as Float32Array;
    assert.deepEqual([...base[`g${i}`].dims], c.shapes[i], `${c.name}: gradient ${i} has the input's shape`);
    for (let trial = 0; trial < 3; trial++) {
      const dir = randn(grad.length);
      const plus = data.map((d) => d.slice());
      const minus = data.map((d) => d.slice());
      for (let k = 0; k < dir.length; k++) {
        plus[i][k] += eps * dir[k];
        minus[i][k] -= eps * dir[k];
      }
      const lp = Number((await run(plus)).loss.data[0]);
      const lm = Number((await run(minus)).loss.data[0]);
      const numeric = (lp - lm) / (2 * eps);
      let analytic = 0;
      for (let k = 0; k < dir.length; k++) analytic += grad[k] * dir[k];
      const err = Math.abs(numeric - analytic) / Math.max(1, Math.abs(numeric));
      assert.ok(err < 2e-2, `${c.name}: input ${i}: finite difference ${numeric} vs rule ${analytic}`);
    }
  }
  await session.release();
}

const cases: Case[] = [
  { name: "Add (broadcast)", shapes: [[2, 3, 4], [4]], build: (g, [a, b]) => g.add(a, b) },
  { name: "Sub (broadcast)", shapes: [[2, 3, 4], [3, 1]], build: (g, [a, b]) => g.sub(a, b) },
  { name: "Mul (broadcast)", shapes: [[2, 1, 4], [3, 4]], build: (g, [a, b]) => g.mul(a, b) },
  { name: "Div", shapes: [[2, 3], [2, 3]], build: (g, [a, b]) => g.div(a, b), domain: (x) => Math.sign(x) * (1 + Math.abs(x)) },
  { name: "Neg", shapes: [[5]], build: (g, [a]) => g.neg(a) },
  { name: "Exp", shapes: [[5]], build: (g, [a]) => g.exp(a) },
  { name: "Sqrt", shapes: [[5]], build: (g, [a]) => g.sqrt(a), domain: (x) => 1 + Math.abs(x) },
  { name: "Tanh", shapes: [[6]], build: (g, [a]) => g.tanh(a) },
  { name: "Erf", shapes: [[6]], build: (g, [a]) => g.erf(a) },
  { name: "Gelu", shapes: [[2, 5]], build: (g, [a]) => g.gelu(a) },
  { name: "Where", shapes: [[2, 3], [2, 3], [3]], build: (g, [c, a, b]) => g.where(g.greater(c, g.scalar(0)), a, b) },
  { name: "MatMul (batch x weight)", shapes: [[2, 3, 4], [4, 5]], build: (g, [a, b]) => g.matmul(a, b) },
  { name: "MatMul (batched)", shapes: [[2, 2, 3, 4], [2, 2, 4, 3]], build: (g, [a, b]) => g.matmul(a, b) },
  { name: "MatMul (broadcast batch)", shapes: [[2, 3, 4], [1, 4, 2]], build: (g, [a, b]) => g.matmul(a, b) },
  { name: "Gemm (x Wᵀ + b, as nn.Linear)", shapes: [[3, 4], [5, 4], [5]], build: (g, [x, w, b]) => g.gemm(x, w, b, false, true) },
  { name: "Gemm (x W)", shapes: [[3, 4], [4, 2]], build: (g, [x, w]) => g.gemm(x, w, null) },
  { name: "Transpose", shapes: [[2, 3, 4]], build: (g, [a]) => g.transpose(a, [2, 0, 1]) },
  { name: "Reshape", shapes: [[2, 3, 4]], build: (g, [a]) => g.reshape(a, [0, -1, 2]) },
  { name: "Squeeze/Unsqueeze", shapes: [[2, 1, 3]], build: (g, [a]) => g.unsqueeze(g.squeeze(a, [1]), [0]) },
  { name: "Expand", shapes: [[3, 1]], build: (g, [a]) => g.expandLike(a, g.constant("float32", new Array(12).fill(0), [2, 3, 2])) },
  { name: "ReduceSum", shapes: [[2, 3, 4]], build: (g, [a]) => g.reduceSum(a, [1], false) },
  { name: "ReduceSum (all)", shapes: [[2, 3]], build: (g, [a]) => g.reduceSum(a, undefined, false) },
  { name: "ReduceMean (keepdims)", shapes: [[2, 3, 4]], build: (g, [a]) => g.reduceMean(a, [-1], true) },
  { name: "Softmax", shapes: [[2, 3, 5]], build: (g, [a]) => g.softmax(a, -1) },
  { name: "LogSoftmax", shapes: [[4, 5]], build: (g, [a]) => g.logSoftmax(a, -1) },
  { name: "LayerNormalization", shapes: [[2, 3, 6], [6], [6]], build: (g, [x, w, b]) => g.layerNorm(x, w, b, 1e-12).y },
  {
    name: "Gather (repeated rows)",
    shapes: [[5, 3]],
    build: (g, [t]) => g.gather(t, g.constant("int64", [0, 3, 3, 1, 0, 3], [2, 3])),
  },
  {
    name: "GatherElements",
    shapes: [[3, 4]],
    build: (g, [t]) => g.gatherElements(t, g.constant("int64", [1, 1, 3], [3, 1]), 1),
  },
  {
    // One pick per row of a LogSoftmax: the rule's cross-entropy path (scatter-add into −softmax·u).
    name: "LogSoftmax picked once per row (cross-entropy)",
    shapes: [[3, 5]],
    build: (g, [t]) => g.gatherElements(g.logSoftmax(t, -1), g.constant("int64", [4, 0, 4], [3, 1]), 1),
  },
  {
    name: "cross-entropy with an ignored row",
    shapes: [[3, 5]],
    build: (g, [t]) => g.mul(crossEntropy(g, t, g.constant("int64", [2, -100, 0], [3])), g.scalar(3)),
  },
  {
    // y wider than x: the Gemm rule moves cross-entropy's row scale onto x and dx.
    name: "cross-entropy of a Gemm (the MLM decoder)",
    shapes: [[4, 3], [7, 3], [7]],
    build: (g, [x, w, b]) => g.mul(crossEntropy(g, g.gemm(x, w, b, false, true), g.constant("int64", [6, -100, 0, 2], [4])), g.scalar(3)),
  },
  {
    name: "cross-entropy of a Gemm without bias (x W)",
    shapes: [[4, 3], [3, 7]],
    build: (g, [x, w]) => crossEntropy(g, g.gemm(x, w, null), g.constant("int64", [1, 5, -100, 6], [4])),
  },
  {
    name: "value used twice (sum of paths)",
    shapes: [[3, 3]],
    build: (g, [a]) => g.mul(g.matmul(a, a), g.tanh(a)),
  },
];

for (const c of cases) test(`autodiff rule: ${c.name}`, () => check(c));

/** Ops of the backward nodes (those not in `forward`) that `grads` need and whose outputs are shaped `shape`. */
function backwardOpsShaped(forward: Set<unknown>, grads: Value[], shape: number[]): string[] {
  const ops: string[] = [];
  const seen = new Set<Value>();
  const visit = (v: Value | null) => {
    const n = v?.producer;
    if (!v || !n || seen.has(v) || forward.has(n)) return;
    seen.add(v);
    if (v.shape.join() === shape.join()) ops.push(n.op);
    n.inputs.forEach(visit);
  };
  grads.forEach(visit);
  return ops.sort();
}

test("cross-entropy's backward passes over the [rows, vocabulary] logits three times: Exp, Mul, ScatterElements", () => {
  const g = new Graph("ce");
  const logits = g.input("logits", "float32", [6, 11]);
  const loss = crossEntropy(g, logits, g.input("labels", "int64", [6]));
  const forward = new Set(g.nodes);
  const d = gradients(g, loss, [logits]).get(logits)!;
  assert.deepEqual(backwardOpsShaped(forward, [d], [6, 11]), ["Exp", "Mul", "ScatterElements"]);
});

test("cross-entropy of the MLM decoder: no row scale over the [rows, vocabulary] logits, only Exp and the scatter", () => {
  const g = new Graph("decoder");
  const h = g.input("h", "float32", [6, 4]);
  const w = g.input("w", "float32", [11, 4]);
  const logits = g.gemm(h, w, g.input("b", "float32", [11]), false, true);
  const loss = crossEntropy(g, logits, g.input("labels", "int64", [6]));
  const forward = new Set(g.nodes);
  const grads = gradients(g, loss, [h, w]);
  assert.deepEqual(backwardOpsShaped(forward, [grads.get(h)!, grads.get(w)!], [6, 11]), ["Exp", "ScatterElements"]);
});

test("dropout: y = x / (1−p) where the mask keeps, else 0; the backward pass reuses the mask", async () => {
  const g = new Graph("dropout");
  const x = g.input("x", "float32", [4, 50]);
  const d = g.dropout(x, 0.3, 7);
  const r = g.input("r", "float32", [4, 50]);
  const grads = gradients(g, g.reduceSum(g.mul(d.y, r), undefined, false), [x]);
  g.output(d.mask, "mask");
  g.output(d.y, "y");
  g.output(grads.get(x)!, "dx");
  const session = await ort.InferenceSession.create(g.toModel());
  const xd = randn(200);
  const rd = randn(200);
  const out = await session.run({ x: new ort.Tensor("float32", xd, [4, 50]), r: new ort.Tensor("float32", rd, [4, 50]) });
  const mask = out.mask.data as Uint8Array;
  const dx = out.dx.data as Float32Array;
  const y = out.y.data as Float32Array;
  let kept = 0;
  for (let i = 0; i < 200; i++) {
    kept += mask[i];
    assert.ok(Math.abs(dx[i] - (mask[i] ? rd[i] / 0.7 : 0)) < 1e-5);
    assert.ok(Math.abs(y[i] - (mask[i] ? xd[i] / 0.7 : 0)) < 1e-5);
  }
  assert.ok(kept > 100 && kept < 180, `kept ${kept} of 200 at ratio 0.3`);
});

test("dropout masks are fresh at every run and unrelated between nodes and steps", async () => {
  // ONNX Runtime's own Dropout fails this: it seeds each run with seed + n, so node a at run n equals node
  // b (seed + 1) at run n − 1, and about 1% of the elements stay dropped in most runs.
  const N = 20000, R = 40;
  const g = new Graph("dropout-stats");
  const x = g.input("x", "float32", [N]);
  g.output(g.dropout(x, 0.1, mixSeed(42, 1)).mask, "a");
  g.output(g.dropout(x, 0.1, mixSeed(42, 2)).mask, "b");
  const session = await ort.InferenceSession.create(g.toModel());
  const ones = new ort.Tensor("float32", new Float32Array(N).fill(1), [N]);
  const drops = new Int32Array(N);
  let previousB: Uint8Array | undefined;
  let sameAsPreviousB = 0;
  let total = 0;
  for (let run = 0; run < R; run++) {
    const out = await session.run({ x: ones });
    const a = out.a.data as Uint8Array;
    const b = out.b.data as Uint8Array;
    for (let i = 0; i < N; i++) {
      if (a[i] === 0) drops[i]++;
      if (previousB && (a[i] === 0) === (previousB[i] === 0)) sameAsPreviousB++;
    }
    total += a.filter((v) => v === 0).length;
    previousB = b.slice();
  }
  assert.ok(Math.abs(total / (N * R) - 0.1) < 0.005, `drop rate ${total / (N * R)}`);
  // Independent masks: a and the previous b agree on 0.9² + 0.1² = 82% of the elements; no element is
  // dropped in 15 or more of 40 runs beyond what a binomial allows (0.07 such elements expected in 20,000;
  // ONNX Runtime's Dropout has over 100 dropped in 20 or more).
  assert.ok(Math.abs(sameAsPreviousB / (N * (R - 1)) - 0.82) < 0.01, `a(n) vs b(n−1) agree on ${sameAsPreviousB / (N * (R - 1))}`);
  const stuck = drops.filter((d) => d >= 15).length;
  assert.ok(stuck <= 3, `${stuck} elements dropped in 15+ of ${R} runs`);
});
