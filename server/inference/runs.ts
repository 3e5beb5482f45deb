// The runs and models of the workspace's run folders as the Runs view shows them: what each folder holds
// (a pretraining run, a fine-tuning run, a plain model such as an imported HF folder), how its run ended or
// that it trains, its step and its best score. Read only; a folder that cannot be read is listed as failed
// with the reason, so that one broken run never hides the others (and can still be deleted).
// Also the one rule of which selection slot a model takes: a language model (fill-mask, surprise) or a
// fine-tuned one (Predict).
import { promises as fs } from "node:fs";
import * as path from "node:path";
import type { ModelInfo, RunInfo, RunOutcome, SelectResult } from "../../common/protocol.js";
import { parseMetricRows } from "../../common/webview.js";
import { readConfig } from "../model/config.js";
import { headFromArchitectures } from "../model/heads.js";
import { TASK_SPECS } from "../tasks/tasks.js";
import { taskOfConfig } from "../tasks/task-config.js";
import { OUTCOME, readOutcome } from "../training/run-folder.js";
import { runLockHolder, type LockHolder } from "../training/run-lock.js";
import { sameOrInside } from "../util/fs.js";

/** A job of the server, as listRuns needs it (server/jobs.ts jobList()). */
export interface RunJob {
  id: string;
  kind: "pretrain" | "finetune";
  out: string;
  step: number;
  steps: number;
}

/**
 * The slot a model takes when selected: a task head (classification, tagging, QA, multiple choice) is a
 * fine-tuned model; a pretraining or masked-LM head is a language model; a bare encoder (BertModel) is
 * fine-tuned only when its config names a fine-tuning task.
 */
export function modelSlot(info: Pick<ModelInfo, "architecture" | "task">): SelectResult["slot"] {
  const head = headFromArchitectures([info.architecture]);
  if (head === "pretraining" || head === "masked_lm") return "model";
  return head !== undefined || info.task !== undefined ? "taskModel" : "model";
}

/** The files whose change is a change to the run (and whose presence makes a folder a run or a model). */
const STATE = "trainer_state.json";
const CONFIG = "config.json";
const METRICS = "metrics.jsonl";
const STAMPED = [STATE, METRICS, OUTCOME, CONFIG];

/** The pretraining figure the view shows: the held-out masked-token accuracy (pretrain.ts logs mlm-eval.ts's mlm_acc as eval_mlm_acc). */
const PRETRAIN_EVAL = "eval_mlm_acc";
const PRETRAIN_METRIC = "mlm_accuracy";

/**
 * Every folder directly inside `folders` (runs folders) that holds a model (config.json), a training run
 * (trainer_state.json), a run's end (outcome.json) or a run in training (a job of `jobs` or another
 * process's run lock), newest first. A run's `best/` is part of the run, not a run. Folders that do not
 * exist are skipped.
 */
export async function listRuns(folders: string[], jobs: readonly RunJob[] = []): Promise<RunInfo[]> {
  const runs: RunInfo[] = [];
  const seen = new Set<string>();
  for (const folder of folders) {
    if (seen.has(path.resolve(folder))) continue;
    seen.add(path.resolve(folder));
    const entries = await fs.readdir(folder, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const run = await readRun(path.join(folder, e.name), jobs);
      if (run) runs.push(run);
    }
  }
  return runs.sort((a, b) => b.modified - a.modified || a.name.localeCompare(b.name));
}

/** One folder as the view lists it; undefined when it is neither a model nor a run. */
async function readRun(dir: string, jobs: readonly RunJob[]): Promise<RunInfo | undefined> {
  const mtimes = new Map<string, number>();
  for (const f of STAMPED) {
    const s = await fs.stat(path.join(dir, f)).catch(() => undefined);
    if (s) mtimes.set(f, s.mtimeMs);
  }
  const job = jobs.find((j) => sameOrInside(j.out, dir));
  const holder = job ? undefined : await runLockHolder(dir);
  if (!mtimes.has(CONFIG) && !mtimes.has(STATE) && !mtimes.has(OUTCOME) && !job && !holder) return undefined;
  const modified = mtimes.size ? Math.max(...mtimes.values()) : ((await fs.stat(dir).catch(() => undefined))?.mtimeMs ?? 0);
  const base = { dir, name: path.basename(dir), modified, ...(job && { job: job.id }) };
  try {
    return { ...base, ...(await describe(dir, mtimes.has(CONFIG), job, holder)) };
  } catch (e) {
    const training = job !== undefined || holder !== undefined;
    return { ...base, kind: job?.kind ?? kindOfHolder(holder) ?? (mtimes.has(STATE) || mtimes.has(OUTCOME) ? await guessKind(dir) : "model"), architecture: "", state: training ? "training" : "failed", message: (e as Error).message };
  }
}

const kindOfHolder = (h: LockHolder | undefined): RunInfo["kind"] | undefined => (h?.what === "pretrain" || h?.what === "finetune" ? h.what : undefined);

type Described = Omit<RunInfo, "dir" | "name" | "modified" | "job">;

/** What the folder's files say, with the job or lock that trains there; throws on a file that does not read. */
async function describe(dir: string, hasConfig: boolean, job: RunJob | undefined, holder: LockHolder | undefined): Promise<Described> {
  const cfg = hasConfig ? await readConfig(dir) : undefined;
  const trainerState = await readTrainerState(dir);
  // An outcome.json older than the checkpoint is an earlier end of a run resumed since (and killed).
  const ended = await readOutcome(dir);
  const outcome = ended && !(trainerState?.step !== undefined && trainerState.step > ended.step) ? ended : undefined;
  const trained = trainerState !== undefined || outcome !== undefined || job !== undefined || holder !== undefined;
  const architecture = cfg ? (cfg.architectures?.[0] ?? "BertModel") : "";
  const finetuningTask = typeof cfg?.extra.finetuning_task === "string" ? cfg.extra.finetuning_task : undefined;
  let task: RunInfo["task"];
  try {
    task = cfg && taskOfConfig(cfg, dir);
  } catch {
    task = undefined; // a language model
  }
  const slot = cfg ? modelSlot({ architecture, task: finetuningTask }) : undefined;
  const kind: RunInfo["kind"] = job?.kind ?? kindOfHolder(holder) ?? (!trained ? "model" : slot ? (slot === "taskModel" ? "finetune" : "pretrain") : await guessKind(dir));
  const out: Described = { kind, architecture, ...(task && { task }), state: stateOf(kind, outcome, job, holder) };
  const step = job ? Math.max(job.step, trainerState?.step ?? 0) : (outcome?.step ?? trainerState?.step);
  if (step !== undefined) out.step = step;
  const steps = (job?.steps || undefined) ?? outcome?.steps;
  if (steps) out.steps = steps;
  if (outcome?.message && !job && !holder) out.message = outcome.message;
  const best = kind === "model" ? undefined : await bestOf(dir, kind, task, outcome);
  if (best) out.best = best;
  return out;
}

function stateOf(kind: RunInfo["kind"], outcome: RunOutcome | undefined, job: RunJob | undefined, holder: LockHolder | undefined): RunInfo["state"] {
  if (job || holder) return "training";
  if (outcome) return outcome.state;
  // No outcome.json: a run that ended before trainers wrote one, or a process killed between checkpoints.
  return kind !== "model" ? "stopped" : "model";
}

/** trainer_state.json's step, if the folder has the file; an error when it is there but does not read. */
async function readTrainerState(dir: string): Promise<{ step?: number } | undefined> {
  const text = await fs.readFile(path.join(dir, STATE), "utf8").catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return undefined;
    throw e;
  });
  if (text === undefined) return undefined;
  let json: { step?: unknown };
  try {
    json = JSON.parse(text) as { step?: unknown };
  } catch (e) {
    throw new Error(`${path.join(dir, STATE)}: invalid JSON (${(e as Error).message})`);
  }
  return typeof json?.step === "number" ? { step: json.step } : {};
}

/** Fine-tuning: the best checkpoint's score (outcome.json, else metrics.jsonl); pretraining: the latest held-out masked-token accuracy. */
async function bestOf(dir: string, kind: "pretrain" | "finetune", task: RunInfo["task"], outcome: RunOutcome | undefined): Promise<RunInfo["best"]> {
  if (kind === "finetune" && outcome?.score) return { metric: outcome.score.metric, value: outcome.score.value };
  const figures = await evalFigures(path.join(dir, METRICS));
  if (kind === "pretrain") return figures.last[PRETRAIN_EVAL] === undefined ? undefined : { metric: PRETRAIN_METRIC, value: figures.last[PRETRAIN_EVAL] };
  if (!task) return undefined;
  const metric = TASK_SPECS[task].mainMetric;
  const value = figures.max[`eval_${metric}`];
  return value === undefined ? undefined : { metric, value };
}

/** A run without a readable config.json (e.g. it failed before its first checkpoint): pretraining logs masked-LM figures. */
async function guessKind(dir: string): Promise<"pretrain" | "finetune"> {
  const { last } = await evalFigures(path.join(dir, METRICS));
  return "mlm_loss" in last || PRETRAIN_EVAL in last ? "pretrain" : "finetune";
}

/** The latest and the highest value of each metric of a metrics.jsonl. */
interface Figures {
  last: Record<string, number>;
  max: Record<string, number>;
}

/**
 * metrics.jsonl's figures, read again only when the file changed: the Runs view lists every run about once
 * a second while a job trains. A line that does not parse (cut short by a kill, or being written) is skipped.
 */
const figuresCache = new Map<string, { key: string; figures: Figures }>();

async function evalFigures(file: string): Promise<Figures> {
  const stat = await fs.stat(file).catch(() => undefined);
  if (!stat) {
    figuresCache.delete(file);
    return { last: {}, max: {} };
  }
  const key = `${stat.ino} ${stat.size} ${stat.mtimeMs}`;
  const cached = figuresCache.get(file);
  if (cached?.key === key) return cached.figures;
  const figures: Figures = { last: {}, max: {} };
  for (const row of parseMetricRows(await fs.readFile(file, "utf8").catch(() => ""))) {
    for (const [k, v] of Object.entries(row)) {
      if (typeof v !== "number" || !Number.isFinite(v)) continue;
      figures.last[k] = v;
      if (!(figures.max[k] >= v)) figures.max[k] = v;
    }
  }
  figuresCache.set(file, { key, figures });
  return figures;
}
