// The ceiling of a BERT-Base training step on this CPU: ONNX Runtime's (MLAS) fp32 Gemm on the shapes
// of the step (B8 T128: 1,024 rows; the weights' layouts as the graphs use them), side by side with
// torch's matmul on the same shapes and threads when a Python with torch is given.
//
//   npx tsx bench/gemm-shapes.ts [--python PATH] [--threads N] [--runs 20]
import { spawnSync } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import { Graph } from "../server/model/graph.js";

type Case = [name: string, a: number[], b: number[], transA: boolean, transB: boolean];
const CASES: Case[] = [
  ["forward Q/K/V/O x·Wᵀ", [1024, 768], [768, 768], false, true],
  ["forward FFN in x·Wᵀ", [1024, 768], [3072, 768], false, true],
  ["forward FFN out x·Wᵀ", [1024, 3072], [768, 3072], false, true],
  ["backward dX dY·W", [1024, 3072], [3072, 768], false, false],
  ["backward dW dYᵀ·X (in)", [1024, 3072], [1024, 768], true, false],
  ["backward dW dYᵀ·X (out)", [1024, 768], [1024, 3072], true, false],
  ["MLM decoder h·Eᵀ", [152, 768], [30522, 768], false, true],
];

const flops = ([, a, b, ta, tb]: Case) => 2 * (ta ? a[1] : a[0]) * (ta ? a[0] : a[1]) * (tb ? b[0] : b[1]);

async function oursMs(c: Case, threads: number, runs: number): Promise<number> {
  const [, a, b, ta, tb] = c;
  const g = new Graph("gemm");
  g.output(g.gemm(g.input("a", "float32", a), g.input("b", "float32", b), null, ta, tb), "y");
  const session = await ort.InferenceSession.create(g.toModel(), { intraOpNumThreads: threads, enableCpuMemArena: false });
  const random = (shape: number[]) => new ort.Tensor("float32", Float32Array.from({ length: shape[0] * shape[1] }, () => Math.random()), shape);
  const feeds = { a: random(a), b: random(b) };
  for (let i = 0; i < 3; i++) await session.run(feeds);
  const t = performance.now();
  for (let i = 0; i < runs; i++) await session.run(feeds);
  await session.release();
  return (performance.now() - t) / runs;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { python: { type: "string" }, threads: { type: "string" }, runs: { type: "string", default: "20" } } });
  const threads = Number(values.threads ?? os.availableParallelism());
  const runs = Number(values.runs);
  let peer: Map<string, number> | undefined;
  let peerName = "";
  if (values.python) {
    const script = path.join(path.dirname(fileURLToPath(import.meta.url)), "torch_gemm_shapes.py");
    const r = spawnSync(values.python, [script, JSON.stringify(CASES), String(threads), String(runs)], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`${values.python} ${script} failed: ${r.stderr}`);
    const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { name: string; ms: number; peer: string });
    peer = new Map(rows.map((x) => [x.name, x.ms]));
    peerName = rows[0]?.peer ?? "";
  }
  console.log(`${os.cpus()[0]?.model} (${os.cpus().length} cores), ${threads} threads, ONNX Runtime ${ort.env.versions.common}${peer ? ` against ${peerName}` : ""}: GFLOP/s`);
  for (const c of CASES) {
    const ms = await oursMs(c, threads, runs);
    const gf = (x: number) => (flops(c) / x / 1e6).toFixed(0);
    const other = peer?.get(c[0]);
    console.log(`  ${c[0].padEnd(26)} ours ${gf(ms).padStart(4)}${other === undefined ? "" : `   torch ${gf(other).padStart(4)}`}`);
  }
}

main().catch((e: Error) => {
  console.error(e.message);
  process.exit(1);
});
