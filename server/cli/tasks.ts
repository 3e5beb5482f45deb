// `bert-studio finetune | evaluate | predict`: the downstream tasks from the command line.
import { promises as fs } from "node:fs";
import { parseArgs } from "node:util";
import { finetuneDefaults as D } from "../../common/settings.js";
import { device, nonNegativeInt, positiveInt, positiveNumber, shown, stopOnInterrupt, UsageError } from "./args.js";
import { FINETUNE_TASKS, type FinetuneScore, type FinetuneTask, type TableColumns } from "../../common/protocol.js";

export const FINETUNE_HELP = `  bert-studio finetune TASK --train FILE [--eval FILE | --eval-split ${D.evalSplit}] --model DIR --out RUN [--epochs ${D.epochs} | --steps N]
      [--batch ${D.batch}] [--max-length ${D.maxLength}] [--lr LR] [--schedule ${D.schedule}] [--warmup N] [--grad-accum K]
      [--eval-every N] [--checkpoint-every N] [--seed S] [--resume] [--device D] [--doc-stride N]
      [--text-column C] [--pair-column C] [--label-column C] [--no-header] [--save-init DIR]
      Defaults as shown, --lr by the model's hidden size (${shown(D.lrFor(768))} at 768 as BERT's, ${shown(D.lrFor(128))} at 128),
      --max-length ${D.qaMaxLength} for qa, --warmup ${Math.round(D.warmupFraction * 100)}% of the steps, --eval-every and
      --checkpoint-every once per epoch, --seed ${D.seed}; metrics every ${D.logEvery} steps.
      TASK: classify (text, label), pair (two texts, label), choice (SWAG CSV), qa (SQuAD v1.1 JSON),
      ner (CoNLL columns or one character per line), or auto (detected from --train, and said).
      The encoder comes from DIR (a pretrain run or an HF folder); the head is new. RUN is an HF folder
      plus optimizer/trainer state and metrics; RUN/best holds the best checkpoint by the task's metric
      (accuracy; SQuAD F1; entity F1) on --eval; without it, on a seeded ${Math.round(D.evalSplit * 100)}% of --train held out
      (--eval-split F, in [0, 1); 0 trains on every example and reports no score). Prints the best score and,
      for classify, pair and choice, the majority class's.
  bert-studio evaluate --model RUN --data FILE [--int8] [--json]
      The task's metrics on a labelled file (RUN/best when there is one). --int8: with int8 weights in the
      dense layers, as predict --int8 runs it.
  bert-studio evaluate --model RUN --text FILE|DIR [--seq 128] [--batch 32] [--seed 42] [--max-sequences 2048] [--json]
      A pretrained model (BertForPreTraining, BertForMaskedLM) on any text: masked-token top-1 and top-5
      accuracy, perplexity and NSP accuracy. Pairs as for training, 15% of the tokens predicted, every one
      replaced by [MASK] (no kept tokens: they would be free answers); pairs and masks from --seed.
  bert-studio predict --model RUN (FILE | TEXT) [--pair TEXT] [--question TEXT] [--int8] [--json]
      Label + probabilities; QA answer + score + span (code-point offsets); NER entities with offsets.
      --int8: int8 weights in the dense layers (faster on most CPUs; evaluate --int8 says what it costs).
`;

function columns(values: { "text-column"?: string; "pair-column"?: string; "label-column"?: string; "no-header"?: boolean }): TableColumns {
  return { text: values["text-column"], pair: values["pair-column"], label: values["label-column"], header: values["no-header"] ? false : undefined };
}

const COLUMN_OPTIONS = {
  "text-column": { type: "string" },
  "pair-column": { type: "string" },
  "label-column": { type: "string" },
  "no-header": { type: "boolean" },
} as const;

const say = (m: string) => process.stderr.write(`${m}\n`);

export async function finetuneCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      train: { type: "string" },
      eval: { type: "string" },
      model: { type: "string" },
      out: { type: "string" },
      epochs: { type: "string" },
      steps: { type: "string" },
      batch: { type: "string" },
      "max-length": { type: "string" },
      "doc-stride": { type: "string" },
      lr: { type: "string" },
      schedule: { type: "string" },
      warmup: { type: "string" },
      "grad-accum": { type: "string" },
      "eval-every": { type: "string" },
      "eval-split": { type: "string" },
      "checkpoint-every": { type: "string" },
      seed: { type: "string" },
      resume: { type: "boolean" },
      device: { type: "string" },
      "save-init": { type: "string" },
      ...COLUMN_OPTIONS,
    },
  });
  if (positionals.length !== 1) throw new UsageError(`finetune needs a TASK: ${FINETUNE_TASKS.join(", ")} or auto`);
  if (!values.train) throw new UsageError("finetune needs --train FILE");
  if (!values.model) throw new UsageError("finetune needs --model DIR (a pretrained run or an HF BERT folder)");
  if (!values.out) throw new UsageError("finetune needs --out RUN");
  if (values.steps && values.epochs) throw new UsageError("give --epochs or --steps, not both");
  let task = positionals[0] as FinetuneTask | "auto";
  if (task === "auto") {
    const { detectTask } = await import("../tasks/tasks.js");
    const d = await detectTask(values.train);
    say(`task: ${d.task} (detected: ${d.why})`);
    task = d.task;
  } else if (!(FINETUNE_TASKS as readonly string[]).includes(task)) {
    throw new UsageError(`unknown task ${task}; one of ${FINETUNE_TASKS.join(", ")}, auto`);
  }
  // Unset: the engine's default (D.evalSplit), as in the editor; a resumed run keeps its own either way.
  const evalSplit = values["eval-split"] === undefined ? undefined : Number(values["eval-split"]);
  if (evalSplit !== undefined && !(values["eval-split"]!.trim() !== "" && evalSplit >= 0 && evalSplit < 1)) throw new UsageError(`--eval-split must be a number in [0, 1), got ${values["eval-split"]}`);
  if (values.eval && values["eval-split"] !== undefined) throw new UsageError("give --eval FILE or --eval-split F, not both");
  // Unset: the engine's rate for the model's size (D.lrFor), as in the editor.
  const lr = values.lr === undefined ? undefined : positiveNumber("lr", values.lr, 0);
  const schedule = values.schedule ?? D.schedule;
  const { getScheduler } = await import("../training/schedules.js");
  getScheduler(schedule, lr ?? D.lr, { trainingSteps: 1 }); // names a bad schedule now
  const { finetune } = await import("../tasks/finetune.js");
  const controller = new AbortController();
  stopOnInterrupt(controller, say);
  const tty = process.stderr.isTTY;
  const { stopped, best, score } = await finetune({
    task,
    train: values.train,
    eval: values.eval,
    evalSplit,
    model: values.model,
    out: values.out,
    epochs: positiveInt("epochs", values.epochs, D.epochs),
    steps: values.steps === undefined ? undefined : positiveInt("steps", values.steps, 0),
    batch: positiveInt("batch", values.batch, D.batch),
    maxLength: positiveInt("max-length", values["max-length"], D.maxLengthFor(task)),
    docStride: values["doc-stride"] === undefined ? undefined : positiveInt("doc-stride", values["doc-stride"], 0),
    lr,
    schedule,
    warmupSteps: values.warmup === undefined ? undefined : nonNegativeInt("warmup", values.warmup),
    accumulationSteps: positiveInt("grad-accum", values["grad-accum"], D.accumulationSteps),
    evalEvery: values["eval-every"] === undefined ? undefined : positiveInt("eval-every", values["eval-every"], 0),
    checkpointEvery: values["checkpoint-every"] === undefined ? undefined : positiveInt("checkpoint-every", values["checkpoint-every"], 0),
    seed: values.seed === undefined ? undefined : Number(values.seed), // unset: the engine's default, as in the editor
    resume: !!values.resume,
    device: device(values.device),
    columns: columns(values),
    saveInit: values["save-init"],
    signal: controller.signal,
    onMessage: say,
    onProgress: (p) => {
      const evalText = p.metrics ? "  " + Object.entries(p.metrics).filter(([k]) => k.startsWith("eval_")).map(([k, v]) => `${k.slice(5)} ${Number.isInteger(v) ? v : v.toFixed(4)}`).join("  ") : "";
      const line = `step ${p.step}/${p.steps}  loss ${p.loss.toFixed(4)}  ETA ${Math.round(p.eta_s)}s${evalText}`;
      process.stderr.write(tty && !p.metrics ? `\r${line}\x1b[K` : `${tty ? "\r" : ""}${line}\n`);
    },
  });
  say(`${stopped ? "stopped" : "done"}: checkpoint and metrics.jsonl in ${values.out}${best ? `; best ${best.metric} ${best.value.toFixed(4)} at step ${best.step} in ${values.out}/best` : ""}`);
  for (const line of scoreLines(score)) say(line);
  return 0;
}

/**
 * The fine-tuned model's score as the CLI prints it ("accuracy 0.812 on 16 held-out examples (majority class
 * 0.563)"), and a warning when it is no better than always answering the most frequent label.
 */
export function scoreLines(score: FinetuneScore | undefined): string[] {
  if (!score) return [];
  const n = (v: number) => v.toFixed(3);
  const on = `${score.examples} ${score.on === "eval" ? "evaluation" : "held-out"} example${score.examples === 1 ? "" : "s"}`;
  const majority = score.majority === undefined ? "" : ` (majority class ${n(score.majority)})`;
  const lines = [`${score.metric} ${n(score.value)} on ${on}${majority}`];
  if (score.majority !== undefined && score.value <= score.majority) {
    lines.push(`warning: the model did not beat the majority class (${score.metric} ${n(score.value)}, always answering the most frequent label ${n(score.majority)}): more data, more epochs, or a better pretrained model`);
  }
  return lines;
}

export async function evaluateCommand(args: string[]): Promise<number> {
  const textOptions = { text: { type: "string" }, seq: { type: "string" }, batch: { type: "string" }, seed: { type: "string" }, "max-sequences": { type: "string" } } as const;
  const { values } = parseArgs({ args, options: { model: { type: "string" }, data: { type: "string" }, json: { type: "boolean" }, device: { type: "string" }, int8: { type: "boolean" }, ...COLUMN_OPTIONS, ...textOptions } });
  if (!values.model) throw new UsageError("evaluate needs --model RUN");
  if (values.int8 && values.text) throw new UsageError("--int8 is for evaluate --data (bench fill-mask --int8 --text compares a language model's int8 and fp32 predictions)");
  if (values.data && values.text) throw new UsageError("give --data FILE (a labelled file, for a fine-tuned model) or --text FILE|DIR (for a pretrained model), not both");
  if (values.text) {
    const { evaluateOnText } = await import("../pretraining/mlm-eval.js");
    const r = await evaluateOnText(values.model, values.text, {
      seq: values.seq === undefined ? undefined : positiveInt("seq", values.seq, 0),
      batch: values.batch === undefined ? undefined : positiveInt("batch", values.batch, 0),
      seed: values.seed === undefined ? undefined : Number(values.seed),
      maxSequences: values["max-sequences"] === undefined ? undefined : positiveInt("max-sequences", values["max-sequences"], 0),
      device: device(values.device),
      onMessage: say,
    });
    if (values.json) process.stdout.write(JSON.stringify(r) + "\n");
    else for (const [k, v] of Object.entries(r)) process.stdout.write(`${k}: ${typeof v === "number" && !Number.isInteger(v) ? v.toFixed(4) : v}\n`);
    return 0;
  }
  if (!values.data) throw new UsageError("evaluate needs --data FILE (labelled) or --text FILE|DIR");
  const { TaskModel } = await import("../inference/task-model.js");
  const model = await TaskModel.load(values.model, device(values.device), { int8: values.int8 });
  let bad = 0;
  const result = await model.evaluate(values.data, { columns: columns(values), onBadRow: (m) => (++bad <= 10 ? say(m) : undefined) });
  if (bad) result.skipped_rows = bad;
  await model.release();
  if (values.json) process.stdout.write(JSON.stringify(result) + "\n");
  else for (const [k, v] of Object.entries(result)) process.stdout.write(`${k}: ${typeof v === "object" ? JSON.stringify(v) : v}\n`);
  return 0;
}

export async function predictCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { model: { type: "string" }, pair: { type: "string" }, question: { type: "string" }, json: { type: "boolean" }, device: { type: "string" }, int8: { type: "boolean" }, ...COLUMN_OPTIONS },
  });
  if (!values.model) throw new UsageError("predict needs --model RUN");
  if (positionals.length !== 1) throw new UsageError("predict needs one FILE or TEXT");
  const { TaskModel } = await import("../inference/task-model.js");
  const model = await TaskModel.load(values.model, device(values.device), { int8: values.int8 });
  const input = positionals[0];
  const isFile = await fs.stat(input).then((s) => s.isFile(), () => false);
  const examples = isFile ? await model.readFile(input, { labelled: false, columns: columns(values), onBadRow: say }) : model.fromText(input, { pair: values.pair, question: values.question });
  const predictions = await model.predictExamples(examples, say);
  await model.release();
  for (const p of predictions) {
    if (values.json) process.stdout.write(JSON.stringify(p) + "\n");
    else process.stdout.write(humanReadable(p) + "\n");
  }
  return 0;
}

function humanReadable(p: Record<string, unknown>): string {
  if ("answer" in p) return `${JSON.stringify(p.answer)} (score ${(p.score as number).toFixed(2)}, characters ${p.start}-${p.end})`;
  if ("entities" in p) {
    const es = p.entities as { type: string; text: string }[];
    return es.length ? es.map((e) => `${e.type}: ${e.text}`).join("; ") : "(no entities)";
  }
  const probs = p.probabilities as Record<string, number> | number[];
  const best = Array.isArray(probs) ? probs[p.label as number] : probs[p.label as string];
  return `${p.label} (${(best * 100).toFixed(1)}%)`;
}
