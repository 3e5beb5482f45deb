// `bert-studio`: the engine without an editor.
import { parseArgs } from "node:util";
import { fillMaskDefaults, pretrainDefaults as D, PRESET_NAMES, settingDefault, type Preset } from "../../common/settings.js";
import { device, nonNegativeInt, positiveInt, positiveNumber, shown, stopOnInterrupt, UsageError } from "./args.js";
import { evaluateCommand, FINETUNE_HELP, finetuneCommand, predictCommand } from "./tasks.js";
import { exportCommand, importCommand, MODELS_HELP } from "./models.js";

const HELP = `bert-studio — train and run BERT on ONNX Runtime

Usage:
  bert-studio parity DIR [--json] [--device D]
      Check a Hugging Face fixture folder (config.json, model.safetensors, batch.json,
      expected.safetensors[, train.json]) against our graphs: forward outputs, losses,
      gradients and AdamW steps. Exits 1 when an error is beyond the tolerances.
  bert-studio bench train [--preset small|base] [--layers L --hidden H --heads A
      --intermediate I --vocab V] [--batch B] [--seq T] [--steps N] [--warmup W]
      [--device D] [--threads N] [--profile DIR] [--json]
      Full MLM+NSP training steps (forward, backward, clipping, AdamW) on random tokens. --profile: ONNX
      Runtime's profile of the timed steps into DIR, and their kernels' time by op type.
  bert-studio bench fill-mask --model DIR [--runs 20] [--device D] [--fusion none|attention|all] [--int8 [--text FILE]]
      [--no-first-answer] [--json]
      Latency of one fill-mask call on a ~20-token sentence: p50/p90 ms; the first answer of fresh processes.
      --int8: the int8 session's beside the fp32 one's, and with --text (held-out text) both sessions'
      masked-token accuracy and their top-1 agreement on it.

  bert-studio tokenize --vocab FILE [--cased] --jsonl
      Reads JSON lines {"text", "text_pair"?, "max_length"?} on stdin and writes
      {"ids", "type_ids", "tokens"} lines, [CLS]/[SEP] included, as HF's
      tokenizer(text, text_pair, truncation="longest_first", max_length=...).
      A bad line gets {"error": ...} on its own line; the exit status is then 1.

  bert-studio pretrain DIR --out RUN (--vocab FILE | --train-vocab SIZE) [--preset tiny|small|base] [--steps N]
      [--batch B] [--seq T] [--lr LR] [--schedule NAME] [--warmup N] [--eval-every N]
      [--checkpoint-every N] [--seed S] [--cased] [--resume] [--device D] [--grad-accum K]
      [--whole-word-mask] [--include GLOB]... [--exclude GLOB]... [--max-file-mb MB] [--epochs E]
      [--minutes M] [--dropout P] [--from MODEL] [--mask-rate R] [--beta2 B] [--warmup-ratio R] [--nsp | --no-nsp]
      [--position-init normal|sinusoidal] [--init-std S]
      [--layers L] [--hidden H] [--heads A] [--intermediate I]
      Masked-LM pretraining on the text files of DIR (with --nsp, plus BERT's next-sentence prediction).
      --from continues pretraining MODEL (a run, or an HF BertForPreTraining / BertForMaskedLM / BertModel
      folder) with its vocabulary and size, and its NSP head when it has one. --minutes trains for M minutes instead of steps
      (warmup and decay by elapsed time, evaluations and checkpoints every tenth, ends on time). RUN becomes an HF folder (config.json,
      model.safetensors, vocab.txt, tokenizer.json) plus optimizer.safetensors,
      trainer_state.json and metrics.jsonl. Ctrl-C stops after the current step, saving.
      Defaults (the recipe of docs/RECIPES.md): --preset ${D.preset} --steps ${D.steps} --batch ${D.batch} --seq ${D.seq} --lr ${shown(D.lr)} (${shown(D.continueLr)} with --from)
      --schedule ${D.schedule} --mask-rate ${D.maskRate} --dropout ${D.dropout} --init-std ${D.initStd} --position-init ${D.positionInit} --beta2 ${D.beta2} ${D.nsp ? "--nsp" : "--no-nsp"},
      --warmup ${Math.round(D.warmupFraction * 100)}% of the steps, --eval-every and --checkpoint-every a tenth of the steps
      (at least ${D.evalEvery(0)}, at most ${D.evalEvery(Infinity)}), --seed ${D.seed}, --max-file-mb ${D.maxFileMb}; metrics every ${D.logEvery} steps.
  bert-studio fill-mask --model RUN "text with [MASK]" [--top-k ${fillMaskDefaults.topK}] [--int8] [--json]
      Ranked tokens with probabilities for each [MASK]. --int8: int8 weights in the dense layers.
${FINETUNE_HELP}${MODELS_HELP}
Options:
  --device cpu|webgpu|cuda|auto   execution provider (default ${settingDefault("device")}; falls back to CPU with a message)
  -h, --help                      this help
`;

async function parity(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { json: { type: "boolean" }, device: { type: "string" } } });
  if (positionals.length !== 1) throw new UsageError("parity needs one fixture folder");
  const { runParity } = await import("../dev/parity.js");
  const report = await runParity(positionals[0], device(values.device));
  if (values.json) {
    process.stdout.write(JSON.stringify(report) + "\n");
  } else {
    process.stdout.write(`${report.task}: ${report.ok ? "PASS" : "FAIL"}\n`);
    for (const [name, g] of Object.entries(report.groups)) {
      process.stdout.write(`  ${name.padEnd(10)} worst ${g!.worst.toExponential(3)} at ${g!.at} (${(g!.ratio * 100).toFixed(1)}% of tolerance, ${g!.checked} checked)\n`);
      if (g!.note) process.stdout.write(`             ${g!.note}\n`);
    }
  }
  return report.ok ? 0 : 1;
}

async function bench(args: string[]): Promise<number> {
  const [what, ...rest] = args;
  if (what === "fill-mask") {
    const options = {
      model: { type: "string" },
      runs: { type: "string" },
      device: { type: "string" },
      json: { type: "boolean" },
      fusion: { type: "string" },
      int8: { type: "boolean" },
      text: { type: "string" },
      "no-first-answer": { type: "boolean" },
    } as const;
    const { values } = parseArgs({ args: rest, options });
    if (!values.model) throw new UsageError("bench fill-mask needs --model DIR");
    const { benchFillMask } = await import("../dev/bench.js");
    if (values.fusion !== undefined && !["none", "attention", "all"].includes(values.fusion)) throw new UsageError(`--fusion must be none, attention or all, got ${values.fusion}`);
    const fusion = values.fusion as "none" | "attention" | "all" | undefined;
    if (values.text !== undefined && !values.int8) throw new UsageError("--text is the int8 accuracy check's text: give it with --int8");
    const r = await benchFillMask(values.model, positiveInt("runs", values.runs, 20), device(values.device), { fusion, int8: values.int8, text: values.text, firstAnswer: !values["no-first-answer"] });
    const first = r.first_answer_ms === undefined ? "" : `; first answer in a fresh process ${r.first_answer_ms.toFixed(0)} ms, from the session cache ${r.first_answer_cached_ms!.toFixed(0)} ms`;
    const kind = r.int8 ? `int8, fusion ${r.fusion}` : `fusion ${r.fusion}`;
    const fp32 = r.fp32_p50_ms === undefined ? "" : `; fp32 in alternate blocks: p50 ${r.fp32_p50_ms.toFixed(1)} ms, p90 ${r.fp32_p90_ms!.toFixed(1)} ms`;
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    const a = r.accuracy;
    const acc = a ? `\n  on ${a.masked_tokens} masked tokens of ${a.text}: accuracy fp32 ${pct(a.fp32_acc)}, int8 ${pct(a.int8_acc)}; top-1 agreement ${pct(a.top1_agreement)}` : "";
    process.stdout.write(values.json ? JSON.stringify(r) + "\n" : `${r.cpu}\nfill-mask ${r.tokens} tokens (${kind}): p50 ${r.p50_ms.toFixed(1)} ms, p90 ${r.p90_ms.toFixed(1)} ms${fp32} (load ${r.load_ms.toFixed(0)} ms${first})${acc}\n`);
    return 0;
  }
  if (what !== "train") throw new UsageError(`unknown benchmark ${what ?? "(none)"}; try: bench train, bench fill-mask`);
  const { values } = parseArgs({
    args: rest,
    options: {
      preset: { type: "string" },
      layers: { type: "string" },
      hidden: { type: "string" },
      heads: { type: "string" },
      intermediate: { type: "string" },
      vocab: { type: "string" },
      batch: { type: "string" },
      seq: { type: "string" },
      steps: { type: "string" },
      warmup: { type: "string" },
      device: { type: "string" },
      threads: { type: "string" },
      profile: { type: "string" },
      json: { type: "boolean" },
    },
  });
  const int = (name: keyof typeof values, fallback?: number): number | undefined =>
    values[name] === undefined ? fallback : positiveInt(name, values[name] as string, 0);
  const { benchTrain } = await import("../dev/bench.js");
  const result = await benchTrain({
    preset: values.preset ?? "small",
    layers: int("layers"),
    hidden: int("hidden"),
    heads: int("heads"),
    intermediate: int("intermediate"),
    vocab: int("vocab"),
    batch: int("batch", 32)!,
    seq: int("seq", 128)!,
    steps: int("steps", 5)!,
    warmup: int("warmup", 1)!,
    device: device(values.device),
    threads: int("threads"),
    profile: values.profile,
  });
  if (values.json) process.stdout.write(JSON.stringify(result) + "\n");
  else {
    process.stdout.write(
      `${result.cpu}\n${result.config}: ${result.tokens_per_s.toFixed(0)} tokens/s, ${result.step_s.toFixed(3)} s/step (median ${result.step_s_median.toFixed(3)}, fastest ${result.step_s_min.toFixed(3)}), ` +
        `${result.gflops_per_s.toFixed(1)} GFLOP/s, peak RSS ${result.peak_rss_mb.toFixed(0)} MB (${result.provider})\n`,
    );
    const p = result.profile;
    if (p) {
      process.stdout.write(`ORT's profile (${p.file}), ${p.runs} steps of ${p.run_ms.toFixed(0)} ms profiled, kernels by op:\n`);
      for (const op of p.ops.slice(0, 15)) process.stdout.write(`  ${op.op.padEnd(24)} ${op.ms.toFixed(1).padStart(8)} ms ${(op.share * 100).toFixed(1).padStart(5)}%  (${op.nodes} nodes)\n`);
    }
  }
  return 0;
}

async function tokenize(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { vocab: { type: "string" }, cased: { type: "boolean" }, jsonl: { type: "boolean" } } });
  if (!values.vocab) throw new UsageError("tokenize needs --vocab FILE (a WordPiece vocab.txt or a tokenizer.json)");
  if (!values.jsonl) throw new UsageError("tokenize reads JSON lines: pass --jsonl");
  const { BertTokenizer } = await import("../text/tokenizer.js");
  const tok = values.vocab.endsWith(".json")
    ? await BertTokenizer.fromTokenizerJson(values.vocab)
    : await BertTokenizer.fromVocabFile(values.vocab, { lowercase: !values.cased });
  const readline = await import("node:readline");
  let line = 0;
  let failed = 0;
  for await (const text of readline.createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    line++;
    if (text.trim() === "") continue;
    let out: unknown;
    try {
      const row = JSON.parse(text) as { text?: unknown; text_pair?: unknown; max_length?: unknown };
      if (typeof row.text !== "string") throw new Error(`"text" must be a string`);
      if (row.text_pair !== undefined && row.text_pair !== null && typeof row.text_pair !== "string") throw new Error(`"text_pair" must be a string`);
      if (row.max_length !== undefined && !(Number.isInteger(row.max_length) && (row.max_length as number) > 0)) throw new Error(`"max_length" must be a positive integer`);
      const e = await tok.encode(row.text, (row.text_pair as string | undefined) ?? null, { maxLength: row.max_length as number | undefined });
      out = { ids: e.ids, type_ids: e.typeIds, tokens: e.tokens };
    } catch (e) {
      failed++;
      out = { error: `line ${line}: ${(e as Error).message}` };
    }
    process.stdout.write(JSON.stringify(out) + "\n");
  }
  if (failed) process.stderr.write(`bert-studio: ${failed} line(s) could not be tokenized\n`);
  return failed ? 1 : 0;
}

async function pretrainCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      out: { type: "string" },
      vocab: { type: "string" },
      preset: { type: "string" },
      steps: { type: "string" },
      batch: { type: "string" },
      seq: { type: "string" },
      lr: { type: "string" },
      schedule: { type: "string" },
      warmup: { type: "string" },
      "eval-every": { type: "string" },
      "checkpoint-every": { type: "string" },
      seed: { type: "string" },
      cased: { type: "boolean" },
      resume: { type: "boolean" },
      device: { type: "string" },
      "grad-accum": { type: "string" },
      "train-vocab": { type: "string" },
      epochs: { type: "string" },
      minutes: { type: "string" },
      from: { type: "string" },
      "whole-word-mask": { type: "boolean" },
      dropout: { type: "string" },
      "mask-rate": { type: "string" },
      "beta2": { type: "string" },
      "warmup-ratio": { type: "string" },
      "no-nsp": { type: "boolean" },
      nsp: { type: "boolean" },
      "position-init": { type: "string" },
      "init-std": { type: "string" },
      layers: { type: "string" },
      hidden: { type: "string" },
      heads: { type: "string" },
      intermediate: { type: "string" },
      include: { type: "string", multiple: true },
      exclude: { type: "string", multiple: true },
      "max-file-mb": { type: "string" },
    },
  });
  if (positionals.length !== 1) throw new UsageError("pretrain needs one corpus folder");
  if (!values.out) throw new UsageError("pretrain needs --out RUN (the run folder)");
  if (values.vocab && values["train-vocab"]) throw new UsageError("give --vocab FILE or --train-vocab SIZE, not both");
  if (values.from && (values.vocab || values["train-vocab"])) throw new UsageError("--from keeps the model's own vocabulary: give no --vocab or --train-vocab with it");
  if (!values.vocab && !values["train-vocab"] && !values.resume && !values.from) throw new UsageError("pretrain needs --vocab FILE (a WordPiece vocab.txt), --train-vocab SIZE or --from MODEL");
  const preset = values.preset ?? D.preset;
  if (!(PRESET_NAMES as readonly string[]).includes(preset)) throw new UsageError(`--preset must be ${PRESET_NAMES.join(", ")}, got ${preset}`);
  const lr = positiveNumber("lr", values.lr, values.from ? D.continueLr : D.lr);
  const dropout = values.dropout === undefined ? undefined : Number(values.dropout);
  if (dropout !== undefined && !(dropout >= 0 && dropout < 1)) throw new UsageError(`--dropout must be in [0, 1), got ${values.dropout}`);
  if (values.steps && values.epochs) throw new UsageError("give --steps or --epochs, not both");
  const minutes = values.minutes === undefined ? undefined : Number(values.minutes);
  if (minutes !== undefined && !(minutes > 0)) throw new UsageError(`--minutes must be a positive number, got ${values.minutes}`);
  if (minutes !== undefined && (values.steps || values.epochs)) throw new UsageError("give --minutes, --steps or --epochs, one of them");
  if (minutes !== undefined && values.warmup !== undefined) throw new UsageError("--warmup counts steps; with --minutes give --warmup-ratio (a share of the time)");
  if (values.nsp && values["no-nsp"]) throw new UsageError("give --nsp or --no-nsp, not both");
  if (values.warmup !== undefined && values["warmup-ratio"] !== undefined) throw new UsageError("give --warmup (steps) or --warmup-ratio, not both");
  const share = (name: string, v: string | undefined, lo: number, hi: number, closedLo = false) => {
    if (v === undefined) return undefined;
    const x = Number(v);
    if (!(closedLo ? x >= lo : x > lo) || !(x < hi)) throw new UsageError(`--${name} must be in ${closedLo ? "[" : "("}${lo}, ${hi}), got ${v}`);
    return x;
  };
  const shapeFlag = (name: "layers" | "hidden" | "heads" | "intermediate") => (values[name] === undefined ? undefined : positiveInt(name, values[name], 0));
  if ((values.from || values.resume) && (values.layers || values.hidden || values.heads || values.intermediate || values["init-std"] || values["position-init"])) {
    throw new UsageError("--layers, --hidden, --heads, --intermediate, --init-std and --position-init shape a new model: not with --from or --resume");
  }
  const steps = positiveInt("steps", values.steps, D.steps);
  const schedule = values.schedule ?? D.schedule;
  const { getScheduler } = await import("../training/schedules.js");
  getScheduler(schedule, lr, { trainingSteps: steps }); // names a bad schedule now
  const { pretrain } = await import("../pretraining/pretrain.js");
  const controller = new AbortController();
  stopOnInterrupt(controller, (m) => process.stderr.write(`${m}\n`));
  const tty = process.stderr.isTTY;
  const { stopped } = await pretrain({
    corpus: positionals[0],
    out: values.out,
    vocab: values.vocab,
    trainVocab: values["train-vocab"] === undefined ? undefined : positiveInt("train-vocab", values["train-vocab"], 0),
    preset: preset as Preset,
    steps,
    epochs: values.epochs === undefined ? undefined : positiveInt("epochs", values.epochs, 0),
    minutes,
    from: values.from,
    batch: positiveInt("batch", values.batch, D.batch),
    seq: positiveInt("seq", values.seq, D.seq),
    lr,
    schedule,
    warmupSteps: values.warmup === undefined ? undefined : nonNegativeInt("warmup", values.warmup),
    // Unset: the engine's defaults (common/settings.ts), the editor's too.
    seed: values.seed === undefined ? undefined : Number(values.seed),
    evalEvery: values["eval-every"] === undefined ? undefined : positiveInt("eval-every", values["eval-every"], 0),
    checkpointEvery: values["checkpoint-every"] === undefined ? undefined : positiveInt("checkpoint-every", values["checkpoint-every"], 0),
    resume: !!values.resume,
    device: device(values.device),
    cased: !!values.cased,
    accumulationSteps: values["grad-accum"] === undefined ? undefined : positiveInt("grad-accum", values["grad-accum"], 0),
    wholeWordMask: !!values["whole-word-mask"],
    dropout,
    maskRate: share("mask-rate", values["mask-rate"], 0, 1),
    beta2: share("beta2", values.beta2, 0, 1),
    warmupRatio: share("warmup-ratio", values["warmup-ratio"], 0, 1, true),
    nsp: values.nsp ? true : values["no-nsp"] ? false : undefined,
    positionInit: positionInit(values["position-init"]),
    initStd: share("init-std", values["init-std"], 0, 1),
    layers: shapeFlag("layers"),
    hidden: shapeFlag("hidden"),
    heads: shapeFlag("heads"),
    intermediate: shapeFlag("intermediate"),
    include: values.include,
    exclude: values.exclude,
    maxFileMb: values["max-file-mb"] === undefined ? undefined : positiveInt("max-file-mb", values["max-file-mb"], 0),
    signal: controller.signal,
    onMessage: (m) => process.stderr.write(`${m}\n`),
    onProgress: (p) => {
      const line = `step ${p.step}/${p.steps}  loss ${p.loss.toFixed(3)}  mlm_acc ${(p.mlm_acc * 100).toFixed(1)}%  ${p.nsp_acc === undefined ? "" : `nsp_acc ${(p.nsp_acc * 100).toFixed(1)}%  `}${p.tokens_per_s.toFixed(0)} tok/s  ETA ${Math.round(p.eta_s)}s`;
      process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
    },
  });
  if (tty) process.stderr.write("\n");
  process.stderr.write(`${stopped ? "stopped" : "done"}: checkpoint and metrics.jsonl in ${values.out}\n`);
  return 0;
}

function positionInit(v: string | undefined): "normal" | "sinusoidal" | undefined {
  if (v === undefined || v === "normal" || v === "sinusoidal") return v;
  throw new UsageError(`--position-init must be normal or sinusoidal, got ${v}`);
}

async function fillMaskCommand(args: string[]): Promise<number> {
  const options = { model: { type: "string" }, "top-k": { type: "string" }, json: { type: "boolean" }, device: { type: "string" }, int8: { type: "boolean" } } as const;
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options });
  if (!values.model) throw new UsageError("fill-mask needs --model DIR");
  if (positionals.length === 0) throw new UsageError('fill-mask needs a text with [MASK], e.g. "the [MASK] of france"');
  const { FillMaskPipeline } = await import("../inference/fill-mask.js");
  const fm = await FillMaskPipeline.load(values.model, device(values.device), { int8: values.int8 });
  const k = positiveInt("top-k", values["top-k"], fillMaskDefaults.topK);
  for (const text of positionals) {
    const preds = await fm.predict(text, k);
    if (values.json) process.stdout.write(JSON.stringify({ text, masks: preds }) + "\n");
    else {
      process.stdout.write(`${text}\n`);
      preds.forEach((p, i) => process.stdout.write(`  [MASK] #${i + 1}: ${p.map((x) => `${x.token} ${(x.score * 100).toFixed(1)}%`).join(", ")}\n`));
    }
  }
  await fm.release();
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === "-h" || command === "--help" || command === "help") {
    process.stdout.write(HELP);
    return 0;
  }
  switch (command) {
    case "parity":
      return parity(rest);
    case "bench":
      return bench(rest);
    case "tokenize":
      return tokenize(rest);
    case "pretrain":
      return pretrainCommand(rest);
    case "fill-mask":
      return fillMaskCommand(rest);
    case "finetune":
      return finetuneCommand(rest);
    case "evaluate":
      return evaluateCommand(rest);
    case "predict":
      return predictCommand(rest);
    case "import":
      return importCommand(rest);
    case "export":
      return exportCommand(rest);
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

/** Runs the CLI and exits with its status; errors print one line, never a stack. */
export function run(argv: string[]): void {
  main(argv).then(
    (code) => process.exit(code),
    (e: Error) => {
      process.stderr.write(`bert-studio: ${e.message}\n`);
      if (e instanceof UsageError) process.stderr.write("run bert-studio --help for usage\n");
      process.exit(e instanceof UsageError ? 2 : 1);
    },
  );
}

if (require.main === module) run(process.argv.slice(2));
