// The hand-over of a run to PyTorch's distributed engine: `export RUN --format trainer` writes a folder in
// which Hugging Face's Trainer continues the run (python train.py, torchrun, accelerate launch):
//   model/                 the run as an HF folder (the "hf" export)
//   optimizer.safetensors  the run's Adam moments (m.NAME, v.NAME), which train.py puts into torch's AdamW
//   data/train.jsonl       the training examples, made by the pretraining pipeline itself (corpus → tokenizer
//   data/held_out.jsonl    → held-out split → segments or NSP pairs; unmasked: train.py masks per batch) or,
//                          for a fine-tuned run, its labelled rows encoded as the trainer encodes them
//   recipe.json            what the run trained with and where it stands (step, schedule), for train.py
//   train.py, requirements.txt, README.md
// The folder is written beside DIR and renamed into place at the end: an export that fails writes nothing.
import { promises as fs } from "node:fs";
import * as path from "node:path";
import type { RunOutcome } from "../../common/protocol.js";
import { finetuneDefaults, MB, pretrainDefaults } from "../../common/settings.js";
import { parseMetricRows } from "../../common/webview.js";
import { readConfig, type BertConfig } from "../model/config.js";
import { headFromArchitectures, type Head } from "../model/heads.js";
import { BatchStream, splitHeldOut, TOKENS_PER_SHARD, trainingData, type PretrainRecipe } from "../pretraining/pretrain.js";
import { evalSet } from "../pretraining/mlm-eval.js";
import { pretrainingOptions, shards, specialIds, type Instance } from "../pretraining/pretraining-data.js";
import type { FinetuneRecipe } from "../tasks/finetune.js";
import { holdOut } from "../tasks/finetune.js";
import { DataError } from "../tasks/readers.js";
import { labelsOfConfig, taskOfConfig, type TaskSettings } from "../tasks/task-config.js";
import { TASK_SPECS, type Feature } from "../tasks/tasks.js";
import { CorpusError } from "../text/corpus.js";
import { tokenizeCorpus } from "../text/token-cache.js";
import { BertTokenizer } from "../text/tokenizer.js";
import { loadCheckpoint, readOutcome } from "../training/run-folder.js";
import { getScheduler } from "../training/schedules.js";
import { DEFAULT_ADAMW, type AdamWConfig } from "../training/train-graph.js";
import { exists, inside, sameOrInside } from "../util/fs.js";
import { EXPORT_FORMATS, exportModel } from "./models.js";
import { REQUIREMENTS, TRAIN_PY, trainerReadme } from "./trainer-script.js";

export class TrainerExportError extends Error {}

export interface TrainerExportOptions {
  /** A pretraining run's corpus folder; default the one it recorded. */
  corpus?: string;
  /** A fine-tuned run's labelled file; default the one it recorded. */
  taskData?: string;
  onMessage?: (m: string) => void;
}

/** The fine-tuning tasks a trainer folder is written for: those with BertForSequenceClassification's head. */
export const TRAINER_TASKS = ["classify", "pair"] as const;

/** The run's whole schedule in optimizer steps: train.py sets the learning rate of global step s to lr × multiplier(s). */
export interface GlobalSchedule {
  name: string;
  lr: number;
  warmup_steps: number;
  total_steps: number;
}

/** recipe.json: what train.py continues (snake_case, as Python reads it). */
export interface TrainerRecipe {
  format: 1;
  kind: "pretraining" | "finetuning";
  run: string;
  architecture: string;
  task?: string;
  /** The optimizer steps the run took: the step train.py continues from. */
  step: number;
  /** Whether the run reached its planned steps (then train.py's default is as many steps again). */
  finished: boolean;
  default_max_steps: number;
  schedule: GlobalSchedule;
  /** Examples per optimizer step, all micro-batches and processes together. */
  batch: number;
  seed: number;
  adamw: { beta1: number; beta2: number; eps: number; weight_decay: number; max_grad_norm: number; no_decay: string[] };
  log_every: number;
  eval_every: number;
  checkpoint_every: number;
  moments: string;
  data: { train: string; held_out: string; train_rows: number; held_out_rows: number; epoch?: number };
  /** The run's last logged training figures, which the continued run's first steps should continue. */
  local?: { step: number; loss: number; lr: number };
  notes: string[];
  // Pretraining
  seq?: number;
  nsp?: boolean;
  masking?: { rate: number; max_predictions: number; whole_word: boolean };
  eval_masking?: { rate: number; max_predictions: number };
  special_ids?: { cls: number; sep: number; pad: number; mask: number; vocab_size: number };
  corpus?: string;
  // Fine-tuning
  labels?: string[];
  max_length?: number;
  task_data?: string;
}

/** What trainer_state.json holds of a run that an export reads (both trainers'). */
interface RunState {
  step: number;
  seed: number;
  epoch?: number;
  minutes?: number;
  seconds?: number;
  evalSplit?: number;
  recipe?: PretrainRecipe | FinetuneRecipe;
}

/** A run folder, checked by loading it as a resume does. */
interface Run {
  dir: string;
  cfg: BertConfig;
  head: Head;
  task?: (typeof TRAINER_TASKS)[number];
  tok: BertTokenizer;
  state: RunState;
  outcome?: RunOutcome;
}

/** The part of an export that differs between pretraining and fine-tuning: its recipe fields and its data. */
interface Plan {
  recipe: Omit<TrainerRecipe, "format" | "run" | "architecture" | "step" | "finished" | "default_max_steps" | "moments" | "data" | "local" | "notes">;
  /** Writes data/train.jsonl and data/held_out.jsonl; their rows (and the epoch a pretraining run's are of). */
  write(dataDir: string): Promise<{ train: number; held: number; epoch?: number }>;
}

type Note = (m: string) => void;

/** Every export format: "hf" and "onnx" (models.ts exportModel), and "trainer" (a folder for PyTorch's Trainer). */
export const ALL_EXPORT_FORMATS = [...EXPORT_FORMATS, "trainer"] as const;
export type AnyExportFormat = (typeof ALL_EXPORT_FORMATS)[number];

/** An export in any format: the paths written, and what the export had to say (a trainer folder's notes). */
export async function exportAs(model: string, format: AnyExportFormat, dest: string, o: TrainerExportOptions & { int8?: boolean } = {}): Promise<{ files: string[]; notes: string[] }> {
  if (format === "trainer") return exportTrainer(model, dest, o);
  return { files: await exportModel(model, format, dest, { int8: o.int8 }), notes: [] };
}

/**
 * Writes the trainer folder of `run` into `dest`, which must not exist or be empty; the paths written and
 * the notes (also given to onMessage as they come). Every check (the run, the target, the corpus or
 * labelled file) comes before anything is written.
 */
export async function exportTrainer(run: string, dest: string, o: TrainerExportOptions = {}): Promise<{ files: string[]; notes: string[] }> {
  const notes: string[] = [];
  const note: Note = (m) => {
    notes.push(m);
    o.onMessage?.(m);
  };
  await requireNewFolder(dest);
  if (sameOrInside(dest, run)) throw new TrainerExportError(`cannot export into ${dest}: it is inside the run ${run}; choose a folder outside it (nothing was written)`);
  const r = await openRun(run);
  const plan = r.task ? await finetunePlan(r, o.taskData, note) : await pretrainPlan(r, o.corpus, dest, note, o.onMessage);
  const parent = path.dirname(path.resolve(dest));
  const staging = path.join(parent, `.${path.basename(dest)}.partial-${process.pid}`);
  const createdParent = await fs.mkdir(parent, { recursive: true }); // the first folder it made, if any: removed on failure
  await fs.rm(staging, { recursive: true, force: true });
  try {
    await fs.mkdir(path.join(staging, "data"), { recursive: true });
    await exportModel(r.dir, "hf", path.join(staging, "model"));
    await fs.copyFile(path.join(r.dir, "optimizer.safetensors"), path.join(staging, "optimizer.safetensors"));
    const rows = await plan.write(path.join(staging, "data"));
    if (rows.train === 0) throw new DataError(`${r.dir}: the data makes no training examples`);
    const recipe = fullRecipe(r, plan, rows, await localFigures(r.dir), notes);
    await fs.writeFile(path.join(staging, "recipe.json"), JSON.stringify(recipe, null, 2) + "\n");
    await fs.writeFile(path.join(staging, "train.py"), TRAIN_PY, { mode: 0o755 });
    await fs.writeFile(path.join(staging, "requirements.txt"), REQUIREMENTS);
    await fs.writeFile(path.join(staging, "README.md"), trainerReadme(recipe, path.basename(path.resolve(dest))));
    if (await exists(dest)) await fs.rmdir(dest); // the empty folder the user chose (rmdir fails if it filled meanwhile)
    await fs.rename(staging, dest);
  } catch (e) {
    await fs.rm(createdParent ?? staging, { recursive: true, force: true });
    throw e;
  }
  const files = (await fs.readdir(dest, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
  return { files: files.sort(), notes };
}

/** A trainer folder is a new folder: DIR must not exist, or be an empty folder. */
async function requireNewFolder(dest: string): Promise<void> {
  const stat = await fs.stat(dest).catch(() => undefined);
  if (!stat) return;
  if (!stat.isDirectory() || (await fs.readdir(dest)).length > 0) {
    throw new TrainerExportError(`cannot export into ${dest}: it exists and is not an empty folder; --format trainer writes a new folder (nothing was written)`);
  }
}

/** The run folder `dir` with everything a resume would check: config, tokenizer, weights, Adam moments, state. */
async function openRun(dir: string): Promise<Run> {
  if (!(await exists(dir))) throw new TrainerExportError(`${dir}: no such folder`);
  if (!(await exists(path.join(dir, "config.json")))) throw new TrainerExportError(`${dir} is not a model or a run: it has no config.json`);
  let cfg: BertConfig;
  try {
    cfg = await readConfig(dir);
  } catch (e) {
    throw new TrainerExportError(`${dir} is not a model folder: ${(e as Error).message}`);
  }
  if (!(await exists(path.join(dir, "trainer_state.json")))) {
    throw new TrainerExportError(`${dir} is not a BERT Studio run (it has no trainer_state.json, as an imported or HF model has none): --format trainer continues a run's training; export the model with --format hf`);
  }
  const head = headFromArchitectures(cfg.architectures) ?? "masked_lm";
  let task: Run["task"];
  if (head !== "pretraining" && head !== "masked_lm") {
    const t = taskOfConfig(cfg, dir);
    if (!(TRAINER_TASKS as readonly string[]).includes(t)) {
      throw new TrainerExportError(`${dir} is a ${t} run: --format trainer hands over pretraining runs and ${TRAINER_TASKS.join(" or ")} fine-tuning runs (BertForSequenceClassification); ${t} is not supported yet`);
    }
    task = t as Run["task"];
  }
  try {
    const tok = await BertTokenizer.fromDir(dir);
    const { state } = await loadCheckpoint<RunState>(dir, head, tok);
    return { dir, cfg, head, task, tok, state, outcome: await readOutcome(dir) };
  } catch (e) {
    throw new TrainerExportError(`cannot export ${dir}: ${(e as Error).message}`);
  }
}

/** The recorded pretraining recipe, or (a run from before recipes were recorded) this version's defaults, said in a note. */
function pretrainRecipe(r: Run, note: Note): PretrainRecipe {
  const recorded = r.state.recipe as PretrainRecipe | undefined;
  if (recorded) return recorded;
  const D = pretrainDefaults;
  const steps = r.state.minutes ? 100_000 : (r.outcome?.steps ?? D.steps);
  const fallback: PretrainRecipe = {
    corpus: "",
    maxFileMb: D.maxFileMb,
    heldOut: D.heldOut,
    documents: 0,
    tokens: 0,
    seq: D.seq,
    batch: D.batch,
    accumulationSteps: D.accumulationSteps,
    maskRate: D.maskRate,
    wholeWordMask: false,
    nsp: r.head === "pretraining",
    lr: D.lr,
    schedule: D.schedule,
    warmupSteps: D.warmupSteps(steps),
    steps,
    ...(r.state.minutes ? { minutes: r.state.minutes, scheduleSteps: steps } : {}),
    adamw: DEFAULT_ADAMW,
    logEvery: D.logEvery,
    evalEvery: D.evalEvery(steps),
    checkpointEvery: D.checkpointEvery(steps),
  };
  note(
    `${r.dir} was trained before runs recorded their recipe: the defaults are assumed (--seq ${D.seq} --batch ${D.batch} --mask-rate ${D.maskRate} --lr ${D.lr} ` +
      `--schedule ${D.schedule}, ${Math.round(D.warmupFraction * 100)}% warmup, ${r.state.minutes ? `${r.state.minutes} minutes` : `${steps} steps`}, no whole-word masking, no include/exclude globs); ` +
      "if the run was started with other flags, edit recipe.json or pass them to train.py",
  );
  return fallback;
}

/** The run's schedule in optimizer steps; a run on a time budget is laid out on the steps its share of the budget took. */
function globalSchedule(r: Run, recipe: { lr: number; schedule: string; warmupSteps: number; steps: number; minutes?: number; scheduleSteps?: number }, note: Note): GlobalSchedule {
  const base = { name: recipe.schedule, lr: recipe.lr };
  if (!recipe.minutes) return { ...base, warmup_steps: recipe.warmupSteps, total_steps: recipe.steps };
  const spent = Math.min(1, (r.state.seconds ?? 0) / (recipe.minutes * 60));
  const total = Math.max(r.state.step, 1, spent > 0 ? Math.round(r.state.step / spent) : r.state.step);
  const warmup = Math.round((recipe.warmupSteps / (recipe.scheduleSteps ?? recipe.steps)) * total);
  note(`the run trained on a ${recipe.minutes}-minute budget, its schedule following the time; here it follows the steps: step ${r.state.step} was ${(spent * 100).toFixed(1)}% of the budget, so the schedule spans ${total} steps with ${warmup} of warmup`);
  return { ...base, warmup_steps: warmup, total_steps: total };
}

async function pretrainPlan(r: Run, corpusArg: string | undefined, dest: string, note: Note, say?: (m: string) => void): Promise<Plan> {
  const recipe = pretrainRecipe(r, note);
  const corpus = corpusArg ?? recipe.corpus;
  if (!corpus) throw new TrainerExportError(`${r.dir} does not record its corpus: give it with --corpus DIR (nothing was written)`);
  if (!(await fs.stat(corpus).then((s) => s.isDirectory(), () => false))) throw new CorpusError(`${corpus}: no such folder (the corpus whose training data the export writes; nothing was written)`);
  if (inside(path.resolve(dest), path.resolve(corpus))) throw new TrainerExportError(`cannot export into ${dest}: it is inside the corpus ${corpus}, whose next read would take the export's README as text; choose a folder outside it (nothing was written)`);
  if (recipe.corpus && path.resolve(corpus) !== recipe.corpus) note(`the run was trained on ${recipe.corpus}; the data is made from ${corpus}`);
  const schedule = globalSchedule(r, recipe, note);
  const data = trainingData(recipe);
  const special = specialIds(r.tok);
  return {
    recipe: {
      kind: "pretraining",
      ...loopRecipe(r, recipe, schedule),
      seq: recipe.seq,
      nsp: recipe.nsp,
      masking: { rate: data.maskedLmProb, max_predictions: data.maxPredictionsPerSeq, whole_word: data.wholeWordMask },
      eval_masking: { rate: pretrainingOptions(recipe.seq).maskedLmProb, max_predictions: pretrainingOptions(recipe.seq).maxPredictionsPerSeq },
      special_ids: { cls: special.cls, sep: special.sep, pad: special.pad, mask: special.mask, vocab_size: special.vocabSize },
      corpus: path.resolve(corpus),
    },
    write: (dir) => writePretrainingData(dir, r, recipe, corpus, note, say),
  };
}

/**
 * data/train.jsonl: the instances of the epoch the run is in (every shard, in the trainer's shuffled order),
 * made by the pretraining pipeline from the corpus as pretrain reads it; data/held_out.jsonl: the held-out
 * documents' evaluation segments (NSP pairs for an NSP run), as the trainer's held-out figures draw them.
 * Rows: input_ids, token_type_ids (and next_sentence_label with NSP), unmasked.
 */
async function writePretrainingData(dir: string, r: Run, recipe: PretrainRecipe, corpus: string, note: Note, say?: (m: string) => void): Promise<{ train: number; held: number; epoch: number }> {
  const { docs } = await tokenizeCorpus(corpus, r.tok, { warn: say, include: recipe.include, exclude: recipe.exclude, maxFileBytes: recipe.maxFileMb * MB });
  if (docs.tokens() === 0) throw new CorpusError(`${corpus}: no text found (nothing was written)`);
  if (docs.length < 4) throw new CorpusError(`${corpus}: a pretraining corpus needs at least 4 documents (2 are held out), found ${docs.length} (nothing was written)`);
  if (recipe.documents && (docs.length !== recipe.documents || docs.tokens() !== recipe.tokens)) {
    note(`${corpus} has changed since the run read it: ${docs.length} documents and ${docs.tokens()} tokens now, ${recipe.documents} and ${recipe.tokens} then; the data is what it holds now`);
  }
  const { train, held } = splitHeldOut(docs, recipe.heldOut);
  const data = trainingData(recipe);
  const special = specialIds(r.tok);
  const epoch = r.state.epoch ?? 0;
  const out = await JsonLines.open(path.join(dir, "train.jsonl"));
  for (const [i, range] of shards(train, TOKENS_PER_SHARD).entries()) {
    for (const inst of BatchStream.shardInstances(train, data, special, r.state.seed, epoch, i, range)) await out.write(instanceRow(inst, recipe.nsp));
  }
  await out.close();
  const set = evalSet(held, pretrainingOptions(recipe.seq), special, r.state.seed + 1, Infinity, { pairs: recipe.nsp });
  const heldOut = await JsonLines.open(path.join(dir, "held_out.jsonl"));
  for (const inst of recipe.nsp ? set.pairs : set.segments) await heldOut.write(instanceRow(inst, recipe.nsp));
  await heldOut.close();
  return { train: out.rows, held: heldOut.rows, epoch };
}

/** A pretraining example as a row of the data files: what HF's BERT takes, before masking. */
export function instanceRow(inst: Instance, nsp: boolean): Record<string, unknown> {
  const row: Record<string, unknown> = { input_ids: Array.from(inst.ids), token_type_ids: Array.from(inst.ids, (_, t) => (t >= inst.bStart ? 1 : 0)) };
  if (nsp) row.next_sentence_label = inst.isRandomNext;
  return row;
}

/**
 * The recorded fine-tuning recipe, or (a run from before recipes were recorded) this version's defaults with
 * the planned steps of its outcome.json, said in a note; such a run does not record its labelled file.
 */
function finetuneRecipe(r: Run, note: Note): FinetuneRecipe {
  const recorded = r.state.recipe as FinetuneRecipe | undefined;
  if (recorded) return recorded;
  const D = finetuneDefaults;
  const steps = Math.max(r.outcome?.steps ?? r.state.step, r.state.step, 1);
  const lr = D.lrFor(r.cfg.hiddenSize);
  note(`${r.dir} was trained before runs recorded their recipe: the defaults are assumed (--batch ${D.batch} --lr ${lr} --schedule ${D.schedule}, ${Math.round(D.warmupFraction * 100)}% warmup, ${steps} steps); if the run was started with other flags, edit recipe.json or pass them to train.py`);
  return { train: "", batch: D.batch, accumulationSteps: D.accumulationSteps, lr, schedule: D.schedule, warmupSteps: D.warmupSteps(steps), steps, adamw: DEFAULT_ADAMW, logEvery: D.logEvery, evalEvery: steps, checkpointEvery: steps };
}

async function finetunePlan(r: Run, taskData: string | undefined, note: Note): Promise<Plan> {
  const recipe = finetuneRecipe(r, note);
  const D = finetuneDefaults;
  const file = taskData ?? recipe.train;
  if (!file) throw new TrainerExportError(`${r.dir} does not record its labelled file: give it with --task-data FILE (nothing was written)`);
  if (!(await fs.stat(file).then((s) => s.isFile(), () => false))) throw new DataError(`${file}: no such file (the labelled file whose rows the export writes; nothing was written)`);
  if (recipe.train && path.resolve(file) !== recipe.train) note(`the run was trained on ${recipe.train}; the data is read from ${file}`);
  const settings = r.cfg.extra.bert_studio as Partial<TaskSettings> | undefined;
  const maxLength = settings?.max_length ?? D.maxLength;
  return {
    recipe: {
      kind: "finetuning",
      task: r.task,
      ...loopRecipe(r, recipe, globalSchedule(r, recipe, note)),
      labels: labelsOfConfig(r.cfg),
      max_length: maxLength,
      task_data: path.resolve(file),
    },
    write: (dir) => writeTaskData(dir, r, recipe, file, maxLength, note),
  };
}

/**
 * data/train.jsonl and data/held_out.jsonl: the labelled rows of `file`, split as the run split them (its
 * seeded held-out share; or its evaluation file), encoded as fine-tuning encodes them; label = the id of
 * the row's label in the run's id2label. Rows whose label the model does not know are left out (said).
 */
async function writeTaskData(dir: string, r: Run, recipe: FinetuneRecipe, file: string, maxLength: number, note: Note): Promise<{ train: number; held: number }> {
  const spec = TASK_SPECS[r.task!];
  let bad = 0;
  const onBadRow = () => void bad++;
  const labelled = (await spec.read(file, { labelled: true, columns: recipe.columns, onBadRow })) as { text: string; pair?: string }[];
  if (labelled.length === 0) throw new DataError(`${file}: no labelled ${r.task} rows (nothing was written)`);
  const split = holdOut(labelled, r.state.evalSplit ?? 0, r.state.seed, (_e, i) => String(i));
  const evalFile = recipe.eval && (await exists(recipe.eval)) ? recipe.eval : undefined;
  if (recipe.eval && !evalFile) note(`the run's evaluation file ${recipe.eval} is gone: data/held_out.jsonl is empty`);
  const held = evalFile ? ((await spec.read(evalFile, { labelled: true, columns: recipe.columns, onBadRow })) as typeof labelled) : (split?.held ?? []);
  const encode = { maxLength, labels: labelsOfConfig(r.cfg), onBadRow };
  let unknown = 0;
  const write = async (name: string, examples: typeof labelled) => {
    const out = await JsonLines.open(path.join(dir, name));
    for (const f of await spec.encode(examples, r.tok, encode)) {
      if (f.label === undefined || f.label < 0) unknown++;
      else await out.write(taskRow(examples[f.example], f));
    }
    await out.close();
    return out.rows;
  };
  const rows = { train: await write("train.jsonl", split?.kept ?? labelled), held: await write("held_out.jsonl", held) };
  if (bad) note(`${bad} rows of ${file} are not in ${r.task}'s layout (or carry no label) and were skipped, as fine-tuning skips them`);
  if (unknown) note(`${unknown} rows carry a label the model was not trained on and were left out`);
  return rows;
}

/** A labelled row of the data files: its texts, the label's id, and the token ids fine-tuning feeds. */
function taskRow(e: { text: string; pair?: string }, f: Feature): Record<string, unknown> {
  const row: Record<string, unknown> = { text: e.text };
  if (e.pair !== undefined) row.text_pair = e.pair;
  return { ...row, label: f.label, input_ids: f.inputs[0].ids, token_type_ids: f.inputs[0].typeIds };
}

/** What both trainers' recipes say of the loop: schedule, batch, seed, optimizer, cadences. */
function loopRecipe(r: Run, recipe: { batch: number; accumulationSteps: number; adamw: AdamWConfig; logEvery: number; evalEvery: number; checkpointEvery: number }, schedule: GlobalSchedule) {
  return {
    schedule,
    batch: recipe.batch * recipe.accumulationSteps,
    seed: r.state.seed,
    adamw: adamwOf(recipe.adamw),
    log_every: recipe.logEvery,
    eval_every: recipe.evalEvery,
    checkpoint_every: recipe.checkpointEvery,
  };
}

function adamwOf(a: AdamWConfig): TrainerRecipe["adamw"] {
  return { beta1: a.beta1, beta2: a.beta2, eps: a.eps, weight_decay: a.weightDecay, max_grad_norm: a.maxGradNorm, no_decay: a.noDecay };
}

/** recipe.json: the plan's fields plus where the run stands; the logged learning rate checks the schedule. */
function fullRecipe(r: Run, plan: Plan, rows: { train: number; held: number; epoch?: number }, local: TrainerRecipe["local"], notes: string[]): TrainerRecipe {
  const { schedule } = plan.recipe;
  const step = r.state.step;
  if (local) {
    // The row of step S was trained at the schedule's lr of step S - 1 (training/loop.ts).
    const expected = getScheduler(schedule.name, schedule.lr, { warmupSteps: schedule.warmup_steps, trainingSteps: schedule.total_steps })(local.step - 1);
    if (Math.abs(expected - local.lr) > 0.01 * schedule.lr) {
      notes.push(`the run logged a learning rate of ${local.lr.toPrecision(3)} at step ${local.step}, the schedule in recipe.json gives ${expected.toPrecision(3)}: check the schedule (or pass --learning_rate and --total_steps to train.py)`);
    }
  }
  const finished = r.outcome?.state === "done" || step >= schedule.total_steps;
  const { kind, ...fields } = plan.recipe;
  return {
    format: 1,
    kind,
    run: path.resolve(r.dir),
    architecture: r.cfg.architectures?.[0] ?? "BertForMaskedLM",
    step,
    finished,
    default_max_steps: finished ? Math.max(1, step) : schedule.total_steps - step,
    ...fields,
    moments: "optimizer.safetensors",
    data: { train: "data/train.jsonl", held_out: "data/held_out.jsonl", train_rows: rows.train, held_out_rows: rows.held, ...(rows.epoch === undefined ? {} : { epoch: rows.epoch }) },
    ...(local ? { local } : {}),
    notes,
  };
}

/** The run's last metrics.jsonl row with a training loss: its step, loss and learning rate. */
async function localFigures(dir: string): Promise<TrainerRecipe["local"]> {
  const rows = parseMetricRows(await fs.readFile(path.join(dir, "metrics.jsonl"), "utf8").catch(() => ""));
  const row = rows.reverse().find((r) => typeof r.loss === "number" && typeof r.lr === "number");
  return row && { step: row.step, loss: row.loss, lr: row.lr };
}

/** A JSON Lines file written in chunks of about a megabyte. */
class JsonLines {
  rows = 0;
  private buffer: string[] = [];
  private size = 0;
  private constructor(private readonly handle: fs.FileHandle) {}

  static async open(file: string): Promise<JsonLines> {
    return new JsonLines(await fs.open(file, "w"));
  }

  async write(row: unknown): Promise<void> {
    const line = JSON.stringify(row) + "\n";
    this.buffer.push(line);
    this.size += line.length;
    this.rows++;
    if (this.size > 1 << 20) await this.flush();
  }

  private async flush(): Promise<void> {
    await this.handle.write(this.buffer.join(""));
    this.buffer = [];
    this.size = 0;
  }

  async close(): Promise<void> {
    await this.flush();
    await this.handle.close();
  }
}
