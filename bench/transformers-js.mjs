// Fill-mask side by side with transformers.js (the peer in the browser and in Node, on the same ONNX
// Runtime), on one BERT masked-LM model: the p50 latency of a call on a ~20-token sentence, and the first
// answer (from spawning a fresh process to the first answer on stdout: for transformers.js its
// pipeline's creation and first call, for us the CLI's `fill-mask`). Each side runs in processes of its
// own (two copies of ONNX Runtime's addon in one process would share one library), alternating.
//
//   node bench/transformers-js.mjs --model HF_DIR --peer PEER_DIR --transformers-js PKG_DIR [--dtype fp32|q8] [--rounds 3] [--runs 40] [--cold] [--json]
//
// HF_DIR: the model folder we load; PEER_DIR: the same model as transformers.js loads it (made by
// bench/transformers_js_model.py); PKG_DIR: an installed @huggingface/transformers (it is not one of our
// dependencies: `npm install --prefix /tmp/tjs @huggingface/transformers@4`, with this repository's
// .npmrc copied there so that onnxruntime-node's install script downloads nothing). --dtype q8 compares
// transformers.js's int8 model (onnx/model_quantized.onnx) with our --int8.
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import * as os from "node:os";
import { performance } from "node:perf_hooks";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath, pathToFileURL } from "node:url";

const SENTENCE = "The capital of France is [MASK], and the city is famous for its museums and its food.";
const repo = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");

/** The child of `--peer-child`: transformers.js's fill-mask, `runs` calls after 3 of warm-up, or (runs 0) the first answer only. */
async function peerChild(pkg, dir, dtype, runs) {
  const { pipeline, env } = await import(pathToFileURL(path.join(pkg, "dist", "transformers.node.mjs")).href);
  env.allowRemoteModels = false;
  env.localModelPath = path.dirname(dir);
  const fill = await pipeline("fill-mask", path.basename(dir), { dtype, device: "cpu" });
  const first = await fill(SENTENCE);
  if (runs === 0) {
    process.stdout.write(JSON.stringify({ first: first[0].token_str }) + "\n");
    return;
  }
  for (let i = 0; i < 3; i++) await fill(SENTENCE);
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fill(SENTENCE);
    times.push(performance.now() - t);
  }
  process.stdout.write(JSON.stringify({ p50_ms: median(times) }) + "\n");
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Runs `node args`: { ms to its first stdout, stdout }. */
function run(args, env = process.env) {
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { cwd: repo, env, stdio: ["ignore", "pipe", "pipe"] });
  let firstMs;
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => {
    firstMs ??= performance.now() - t0;
    out += d;
  });
  child.stderr.on("data", (d) => (err += d));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve({ firstMs, out }) : reject(new Error(`${args.join(" ")} failed (${code}): ${err.trim()}`))));
  });
}

async function main() {
  const { values } = parseArgs({
    options: {
      model: { type: "string" },
      peer: { type: "string" },
      "transformers-js": { type: "string" },
      dtype: { type: "string", default: "fp32" },
      rounds: { type: "string", default: "3" },
      runs: { type: "string", default: "40" },
      json: { type: "boolean" },
      cold: { type: "boolean" },
      "peer-child": { type: "boolean" },
    },
  });
  const pkg = values["transformers-js"];
  if (!values.model || !values.peer || !pkg) throw new Error("needs --model HF_DIR --peer PEER_DIR --transformers-js PKG_DIR (see the top of this file)");
  if (!["fp32", "q8"].includes(values.dtype)) throw new Error(`--dtype must be fp32 or q8, got ${values.dtype}`);
  const runs = Number(values.runs);
  const peerDir = path.resolve(values.peer);
  if (values["peer-child"]) return peerChild(path.resolve(pkg), peerDir, values.dtype, runs);

  const self = [fileURLToPath(import.meta.url), "--peer-child", "--model", values.model, "--peer", peerDir, "--transformers-js", pkg, "--dtype", values.dtype];
  const cli = path.join(repo, "bin", "bert-studio.js");
  const int8 = values.dtype === "q8" ? ["--int8"] : [];
  const rows = { ours_p50_ms: [], peer_p50_ms: [], ours_first_answer_ms: [], ours_first_answer_cached_ms: [], peer_first_answer_ms: [] };
  let cpu = "";
  // Our first answer as the peer's is timed: a fresh process, from its spawn to the answer on stdout; with
  // an empty session cache (a model's first load ever), and with a cache that two loads before filled.
  const caches = await mkdtemp(path.join(os.tmpdir(), "bert-studio-peer-bench-"));
  const fillMask = (cache) => run([cli, "fill-mask", "--model", values.model, ...int8, "--json", SENTENCE], { ...process.env, BERT_STUDIO_CACHE: cache });
  const warm = path.join(caches, "warm");
  for (let i = 0; i < 2; i++) await fillMask(warm);
  try {
    // Each side's first answers right after its own latency run, so that both find their model files in
    // the page cache (on a VM whose page cache is small, one side's run evicted the other's file: our first
    // answer then took 1.6 s instead of 0.65); --cold drops the page cache before each instead (root only).
    const dropCaches = async () => values.cold && (await writeFile("/proc/sys/vm/drop_caches", "3\n"));
    for (let r = 0; r < Number(values.rounds); r++) {
      const ours = JSON.parse((await run([cli, "bench", "fill-mask", "--model", values.model, "--runs", String(runs), ...int8, "--no-first-answer", "--json"])).out);
      cpu = ours.cpu;
      rows.ours_p50_ms.push(ours.p50_ms);
      await dropCaches();
      rows.ours_first_answer_ms.push((await fillMask(path.join(caches, `empty-${r}`))).firstMs);
      await dropCaches();
      rows.ours_first_answer_cached_ms.push((await fillMask(warm)).firstMs);
      rows.peer_p50_ms.push(JSON.parse((await run([...self, "--runs", String(runs)])).out).p50_ms);
      await dropCaches();
      rows.peer_first_answer_ms.push((await run([...self, "--runs", "0"])).firstMs);
    }
  } finally {
    await rm(caches, { recursive: true, force: true });
  }
  const med = Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, median(v)]));
  const result = {
    cpu,
    model: values.model,
    dtype: values.dtype,
    page_cache: values.cold ? "dropped before each first answer" : "warm",
    rounds: Number(values.rounds),
    runs,
    ...med,
    p50_ratio: med.ours_p50_ms / med.peer_p50_ms,
    first_answer_ratio: med.ours_first_answer_ms / med.peer_first_answer_ms,
    first_answer_cached_ratio: med.ours_first_answer_cached_ms / med.peer_first_answer_ms,
    rows,
  };
  if (values.json) process.stdout.write(JSON.stringify(result) + "\n");
  else {
    const f = (x) => x.toFixed(1);
    process.stdout.write(
      `${result.cpu}; ${values.dtype}, medians of ${result.rounds} rounds:\n` +
        `  fill-mask p50     ours ${f(med.ours_p50_ms)} ms, transformers.js ${f(med.peer_p50_ms)} ms: ${result.p50_ratio.toFixed(2)}×\n` +
        `  first answer      ours ${f(med.ours_first_answer_ms)} ms (cached ${f(med.ours_first_answer_cached_ms)}), transformers.js ${f(med.peer_first_answer_ms)} ms: ` +
        `${result.first_answer_ratio.toFixed(2)}× (cached ${result.first_answer_cached_ratio.toFixed(2)}×)\n`,
    );
  }
}

main().catch((e) => {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
});
