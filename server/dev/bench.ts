// `bench train`: full pretraining steps (MLM + NSP forward, backward, clipping, AdamW) on random tokens;
// `bench fill-mask`: one fill-mask call's latency, and the first answer of a fresh process.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import * as ort from "onnxruntime-node";
import { bertConfig, PRESETS, type BertConfig } from "../model/config.js";
import { initParams, ParamStore, paramShapes } from "../model/params.js";
import type { Device } from "../../common/settings.js";
import { Optimizer } from "../training/optimizer.js";
import { Rng } from "../util/rng.js";
import { inputFeeds } from "../model/heads.js";
import type { Fusion } from "../model/bert.js";
import { sessionFusion } from "../inference/inference-graph.js";
import { int8Accuracy, type Int8Accuracy } from "./int8-accuracy.js";
import { newestProfile, summarizeProfile, type ProfileSummary } from "./profile.js";
import { pretrainingOptions } from "../pretraining/pretraining-data.js";

export interface BenchTrainOptions {
  preset: string;
  layers?: number;
  hidden?: number;
  heads?: number;
  intermediate?: number;
  vocab?: number;
  batch: number;
  seq: number;
  steps: number;
  warmup: number;
  device: Device;
  threads?: number;
  /** Share of the positions predicted (default 15%, as bench/hf_pretraining.py's step). */
  maskRate?: number;
  /** Dropout of hidden states and attention weights (default the preset's, 0.1); 0 leaves the dropout nodes out. */
  dropout?: number;
  /** A folder for ORT's profile of the timed steps (the warm-up's left out of the summary). */
  profile?: string;
}

/** The CPU the figures were measured on (its model name, cores and SIMD extensions): every figure's context. */
export function cpuInfo(): string {
  const flags = (() => {
    try {
      const line = readFileSync("/proc/cpuinfo", "utf8").split("\n").find((l) => l.startsWith("flags")) ?? "";
      return ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile"].filter((f) => line.split(/\s+/).includes(f));
    } catch {
      return [];
    }
  })();
  return `${os.cpus()[0]?.model ?? process.arch}, ${os.availableParallelism()} cores${flags.length ? ` (${flags.join(" ")})` : ""}`;
}

export interface BenchTrainResult {
  cpu: string;
  config: string;
  batch: number;
  seq: number;
  steps: number;
  tokens_per_s: number;
  /** Mean seconds a step (what tokens_per_s and gflops_per_s are from). */
  step_s: number;
  /** The median and the fastest step: on a shared machine a few slow steps move the mean. */
  step_s_median: number;
  step_s_min: number;
  gflops_per_s: number;
  peak_rss_mb: number;
  provider: string;
  /** With `profile`: the timed steps' kernels by op type (profiling itself slows a step down a little). */
  profile?: ProfileSummary;
}

/** Median, 90th percentile, mean and least of timings. */
function stats(xs: number[]): { p50: number; p90: number; mean: number; min: number } {
  const sorted = [...xs].sort((a, b) => a - b);
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  return { p50: q(0.5), p90: q(0.9), mean: xs.reduce((a, b) => a + b, 0) / xs.length, min: sorted[0] };
}

/** Masked positions per sequence: max_predictions_per_seq for this length, as pretraining sets it. */
export function predictionsPerSeq(seq: number, maskRate = 0.15): number {
  return pretrainingOptions(seq, maskRate).maxPredictionsPerSeq;
}

/** Useful FLOPs of one training step: 3x the forward matmul FLOPs, the MLM head at `predictions` rows per sequence. */
export function trainFlops(cfg: BertConfig, batch: number, seq: number, predictions: number): number {
  const h = cfg.hiddenSize;
  const perLayer = 2 * seq * (4 * h * h + 2 * h * cfg.intermediateSize) + 4 * seq * seq * h;
  const heads = 2 * predictions * (h * h + h * cfg.vocabSize) + 2 * (h * h + 2 * h);
  return 3 * batch * (cfg.numHiddenLayers * perLayer + heads);
}

export function randomPretrainingBatch(cfg: BertConfig, batch: number, seq: number, perSeq: number, rng: Rng): Record<string, ort.Tensor> {
  const ids = new BigInt64Array(batch * seq);
  const types = new BigInt64Array(batch * seq);
  const mask = new BigInt64Array(batch * seq).fill(1n);
  const positions = new BigInt64Array(batch * perSeq);
  const labels = new BigInt64Array(batch * perSeq);
  const nsp = new BigInt64Array(batch);
  for (let b = 0; b < batch; b++) {
    const half = 1 + rng.int(seq - 2);
    for (let t = 0; t < seq; t++) {
      ids[b * seq + t] = BigInt(5 + rng.int(cfg.vocabSize - 5));
      types[b * seq + t] = t > half ? 1n : 0n;
    }
    const chosen = rng.shuffle([...Array(seq - 1).keys()].map((t) => t + 1)).slice(0, perSeq).sort((x, y) => x - y);
    chosen.forEach((t, j) => {
      positions[b * perSeq + j] = BigInt(b * seq + t);
      labels[b * perSeq + j] = ids[b * seq + t];
    });
    nsp[b] = BigInt(rng.int(2));
  }
  return inputFeeds({
    input_ids: new ort.Tensor("int64", ids, [batch, seq]),
    token_type_ids: new ort.Tensor("int64", types, [batch, seq]),
    attention_mask: new ort.Tensor("int64", mask, [batch, seq]),
    masked_positions: new ort.Tensor("int64", positions, [batch * perSeq]),
    masked_lm_labels: new ort.Tensor("int64", labels, [batch * perSeq]),
    next_sentence_label: new ort.Tensor("int64", nsp, [batch]),
  });
}

export function benchConfig(o: BenchTrainOptions): BertConfig {
  const preset = PRESETS[o.preset as keyof typeof PRESETS];
  if (!preset) throw new Error(`unknown preset ${o.preset}; choose one of ${Object.keys(PRESETS).join(", ")}`);
  return bertConfig({
    ...preset,
    ...(o.layers && { numHiddenLayers: o.layers }),
    ...(o.hidden && { hiddenSize: o.hidden }),
    ...(o.heads && { numAttentionHeads: o.heads }),
    ...(o.intermediate && { intermediateSize: o.intermediate }),
    ...(o.vocab && { vocabSize: o.vocab }),
    ...(o.dropout !== undefined && { hiddenDropoutProb: o.dropout, attentionProbsDropoutProb: o.dropout }),
    maxPositionEmbeddings: Math.max(512, o.seq),
  });
}

export async function benchTrain(o: BenchTrainOptions): Promise<BenchTrainResult> {
  const cfg = benchConfig(o);
  const perSeq = predictionsPerSeq(o.seq, o.maskRate);
  const params = ParamStore.fromShapes(paramShapes(cfg, "pretraining"));
  initParams(params, cfg, 0);
  const opt = await Optimizer.create(cfg, params, {
    task: "pretraining",
    dims: { batch: o.batch, seq: o.seq, predictions: o.batch * perSeq },
    device: o.device,
    threads: o.threads,
    profile: o.profile && path.join(o.profile, "train"),
  });
  const rng = new Rng(1);
  const batches = [0, 1].map(() => randomPretrainingBatch(cfg, o.batch, o.seq, perSeq, rng));
  for (let i = 0; i < o.warmup; i++) await opt.step([batches[i % 2]], 1e-4);
  const steps: number[] = [];
  for (let i = 0; i < o.steps; i++) {
    const start = process.hrtime.bigint();
    const r = await opt.step([batches[i % 2]], 1e-4);
    steps.push(Number(process.hrtime.bigint() - start) / 1e9);
    if (!Number.isFinite(r.scalars.loss)) throw new Error(`loss is ${r.scalars.loss} at step ${i}`);
  }
  const st = stats(steps);
  let profile: ProfileSummary | undefined;
  if (o.profile) {
    await opt.endProfiling();
    profile = await summarizeProfile(await newestProfile(path.join(o.profile, "train")), o.warmup);
  }
  await opt.release();
  const stepS = st.mean;
  return {
    cpu: cpuInfo(),
    config: `L${cfg.numHiddenLayers} H${cfg.hiddenSize} A${cfg.numAttentionHeads} I${cfg.intermediateSize} V${cfg.vocabSize}`,
    batch: o.batch,
    seq: o.seq,
    steps: o.steps,
    tokens_per_s: (o.batch * o.seq) / stepS,
    step_s: stepS,
    step_s_median: st.p50,
    step_s_min: st.min,
    gflops_per_s: trainFlops(cfg, o.batch, o.seq, perSeq) / stepS / 1e9,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    provider: opt.provider,
    ...(profile && { profile }),
  };
}

export interface BenchFillMaskResult {
  cpu: string;
  model: string;
  tokens: number;
  runs: number;
  /** Which of ONNX Runtime's fused ops the graph of the latencies has ("none": the plain graph). */
  fusion: Fusion;
  /** Whether the latencies are the int8 session's (quantize.ts); then the fp32 session's, measured in alternate blocks, are fp32_*. */
  int8: boolean;
  p50_ms: number;
  p90_ms: number;
  mean_ms: number;
  /** Loading the model in this process (weights, graph, ONNX Runtime's optimization), the session cache unused. */
  load_ms: number;
  /**
   * From spawning a fresh process that runs the CLI's `fill-mask` on the sentence to its answer on stdout
   * (node's start, the modules, the model's load, one answer), with an empty session cache: a model's first
   * load; then its second (which writes the session cache) and third (which reads it: every later start).
   */
  first_answer_ms?: number;
  first_answer_caching_ms?: number;
  first_answer_cached_ms?: number;
  fp32_p50_ms?: number;
  fp32_p90_ms?: number;
  /** With int8 and a text: fp32 against int8 on the text's masked tokens. */
  accuracy?: Int8Accuracy;
}

const SENTENCE = "The capital of France is [MASK], and the city is famous for its museums and its food.";

/**
 * Latency of one fill-mask call (tokenize, forward, top-k) on a ~20-token sentence, after warm-up; and
 * with `firstAnswer`, the first answer of fresh processes (the `cli` command: this process's own entry).
 * With `int8`, the int8 session's latencies beside the fp32 session's (blocks of calls alternating, so
 * both see the same machine), and with `text` the two sessions' predictions on its masked tokens (int8-accuracy.ts).
 */
export async function benchFillMask(
  model: string,
  runs: number,
  device: Device,
  o: { fusion?: Fusion; int8?: boolean; text?: string; firstAnswer?: boolean; cli?: string[] } = {},
): Promise<BenchFillMaskResult> {
  const { FillMaskPipeline } = await import("../inference/fill-mask.js");
  const int8 = o.int8 === true;
  const fusion = sessionFusion({ fusion: o.fusion, int8 });
  // First, before this process loads anything: a fresh process timed right after this one had loaded and
  // released BERT-Base answered 2 to 5 times slower than one timed alone, on this shared VM.
  const flags = int8 ? ["--int8"] : [];
  const first = o.firstAnswer !== false ? await firstAnswers(model, device, o.cli ?? [...process.execArgv, process.argv[1]], flags) : {};
  const t0 = performance.now();
  const fm = await FillMaskPipeline.load(model, device, { fusion, int8, cache: false });
  const loadMs = performance.now() - t0;
  const fp32 = int8 ? await FillMaskPipeline.load(model, device, { cache: false }) : undefined;
  const tokens = (await fm.tokenizer.encode(SENTENCE)).ids.length;
  // Blocks of calls, each after 3 calls of warm-up: calls alternating call by call would each meet the
  // other session's threads still spinning (ORT's default), which doubled BERT-Base's fp32 latency.
  const pipes = fp32 ? [fm, fp32] : [fm];
  const blocks = pipes.length === 1 ? [0] : [0, 1, 0, 1];
  const times = pipes.map(() => [] as number[]);
  for (const [b, j] of blocks.entries()) {
    for (let i = 0; i < 3; i++) await pipes[j].predict(SENTENCE);
    const n = Math.floor((runs * (b + 1) * pipes.length) / blocks.length) - Math.floor((runs * b * pipes.length) / blocks.length);
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      await pipes[j].predict(SENTENCE);
      times[j].push(performance.now() - t);
    }
  }
  const s = stats(times[0]);
  const result: BenchFillMaskResult = { cpu: cpuInfo(), model, tokens, runs, fusion, int8, p50_ms: s.p50, p90_ms: s.p90, mean_ms: s.mean, load_ms: loadMs };
  if (fp32) {
    const f = stats(times[1]);
    Object.assign(result, { fp32_p50_ms: f.p50, fp32_p90_ms: f.p90 });
    if (o.text) result.accuracy = await int8Accuracy(fp32, fm, o.text);
    await fp32.release();
  }
  await fm.release();
  return Object.assign(result, first);
}

/** Three fresh processes in a row answering one fill-mask, with a session cache of their own (empty at first). */
async function firstAnswers(model: string, device: Device, cli: string[], flags: string[]): Promise<Pick<BenchFillMaskResult, "first_answer_ms" | "first_answer_caching_ms" | "first_answer_cached_ms">> {
  const cache = await mkdtemp(path.join(os.tmpdir(), "bert-studio-bench-"));
  try {
    const once = () => firstAnswerMs([...cli, "fill-mask", "--model", model, "--device", device, ...flags, "--json", SENTENCE], { ...process.env, BERT_STUDIO_CACHE: cache });
    return { first_answer_ms: await once(), first_answer_caching_ms: await once(), first_answer_cached_ms: await once() };
  } finally {
    await rm(cache, { recursive: true, force: true });
  }
}

/** Milliseconds from spawning `node args` until its first output on stdout; rejects if it then fails. */
function firstAnswerMs(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let answered: number | undefined;
  let errors = "";
  child.stdout.once("data", () => (answered = performance.now() - t0));
  child.stdout.resume();
  child.stderr.on("data", (d: Buffer) => (errors += d.toString()));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 && answered !== undefined ? resolve(answered) : reject(new Error(`fill-mask in a fresh process failed (${code}): ${errors.trim()}`))));
  });
}
