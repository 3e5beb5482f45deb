// The BERT server: a language-server-style process the extension starts over IPC. It hosts the engine
// (pretraining, fine-tuning, fill-mask, predict, import/export) so that model work never runs in the
// extension host. Jobs report work-done progress, stop on $/cancelRequest, bert/stopJob or bert/cancel
// (keeping a checkpoint), and stream their metrics; fill-mask requests are answered while a job trains.
// Paths come from the client: the server writes runs only inside the workspace folders' .bert-studio/runs,
// and it alone decides about a run folder (resume it, keep it as NAME-n, or refuse); it never deletes one.
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { createConnection, ProposedFeatures, ResponseError, type CancellationToken, type WorkDoneProgressServerReporter } from "vscode-languageserver/node";
import { readConfig } from "./model/config.js";
import { buildInferenceGraph } from "./inference/inference-graph.js";
import { taskFromArchitectures } from "./model/heads.js";
import { checkModelFolder, loadParams, ParamStore, paramShapes, requireComplete } from "./model/params.js";
import { readSafetensors } from "./model/safetensors.js";
import type { Device } from "./model/session.js";
import { FillMask as FillMaskModel } from "./inference/fill-mask.js";
import * as P from "../common/protocol.js";
import { TaskModel } from "./inference/task-model.js";
import { detectTask, type FinetuneTask } from "./tasks/tasks.js";
import { finetune } from "./tasks/finetune.js";
import { pretrain } from "./pretraining/pretrain.js";
import { exists } from "./training/run-folder.js";
import { describeHolder, runLockHolder } from "./training/run-lock.js";
import { BertTokenizer } from "./text/tokenizer.js";

const connection = createConnection(ProposedFeatures.all);
const log = (text: string) => connection.sendNotification(P.Message, { text });

interface Job {
  id: string;
  kind: "pretrain" | "finetune";
  out: string;
  step: number;
  steps: number;
  loss?: number;
  controller: AbortController;
}
const jobs = new Map<string, Job>();
let jobCounter = 0;
let selected: string | undefined;
let fillMask: { dir: string; stamp: number; model: Promise<FillMaskModel> } | undefined;
/** The workspace folders (from initialize and workspace/didChangeWorkspaceFolders): runs live in their RUNS. */
let roots: string[] = [];
const RUNS = path.join(".bert-studio", "runs");

/** Any failure becomes a ResponseError whose message the client shows as it is. */
function guard<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A) => {
    try {
      return await fn(...args);
    } catch (e) {
      if (e instanceof ResponseError) throw e;
      throw new ResponseError(1, (e as Error).message);
    }
  };
}

async function modelInfo(dir: string): Promise<P.ModelInfo> {
  const cfg = await readConfig(dir);
  if (!(await exists(path.join(dir, "model.safetensors")))) throw new Error(`${dir}: no model.safetensors`);
  const task = typeof cfg.extra.finetuning_task === "string" ? cfg.extra.finetuning_task : undefined;
  return { dir, architecture: cfg.architectures?.[0] ?? "BertModel", task };
}

/** Whether `child` lies strictly inside `parent` (both absolute). */
function inside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel);
}

const sameOrInside = (child: string, parent: string) => path.resolve(child) === path.resolve(parent) || inside(path.resolve(child), path.resolve(parent));

/** `p` with symbolic links resolved, as far as it exists (a link inside the runs folder must not lead out of it). */
async function realPath(p: string): Promise<string> {
  const abs = path.resolve(p);
  const real = await fs.realpath(abs).catch(() => undefined);
  if (real) return real;
  const parent = path.dirname(abs);
  return parent === abs ? abs : path.join(await realPath(parent), path.basename(abs));
}

/** Refuses to write `dir` unless it lies inside a workspace folder's .bert-studio/runs. */
async function requireInRuns(what: string, dir: string): Promise<void> {
  const real = await realPath(dir);
  for (const root of roots) if (inside(real, await realPath(path.join(root, RUNS)))) return;
  const allowed = roots.map((r) => path.join(r, RUNS)).join(", ") || "no workspace folder is open";
  throw new Error(`${what} ${dir} is outside the workspace's run folders (${allowed}): BERT Studio writes runs only there`);
}

/** A job of this server (other than `except`) training into, above or below `dir`. */
function jobAt(dir: string, except?: Job): Job | undefined {
  return [...jobs.values()].find((j) => j !== except && (sameOrInside(j.out, dir) || sameOrInside(dir, j.out)));
}

const busyError = (job: Job) => new Error(`${job.id} is training into ${job.out} (step ${job.step}): stop it first (BERT: Stop Training) or choose another folder`);

/** Refuses when a job of this server (but `except`), or another process holding the run's lock, trains into `dir`. */
async function requireIdle(dir: string, except?: Job): Promise<void> {
  const job = jobAt(dir, except);
  if (job) throw busyError(job);
  const holder = await runLockHolder(dir);
  if (holder) throw new Error(`${dir} is in use: ${describeHolder(holder)}; stop that job first`);
}

/** The next free `dir-<n>`: no folder there and no job training into it. */
async function freeName(dir: string): Promise<string> {
  for (let n = 1; ; n++) {
    const name = `${dir}-${n}`;
    if (!jobAt(name) && !(await exists(name))) return name;
  }
}

async function folderBytes(dir: string): Promise<number> {
  let bytes = 0;
  for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const f = path.join(dir, e.name);
    bytes += e.isDirectory() ? await folderBytes(f) : ((await fs.stat(f).catch(() => undefined))?.size ?? 0);
  }
  return bytes;
}

/**
 * Decides what happens to a run already in `out` before a job writes there: it is resumed (`resume`, when it
 * has a checkpoint), kept as the next free `out-<n>` (`replace`: a rename, so nothing is lost; the selected
 * model moves with it) or left alone with a RUN_EXISTS error the client turns into a question.
 */
async function prepareRun(out: string, resume: boolean, replace: boolean, job: Job): Promise<void> {
  await requireIdle(out, job);
  const state = await fs.readFile(path.join(out, "trainer_state.json"), "utf8").then((t) => t, () => undefined);
  if (resume && state !== undefined) return;
  if (state === undefined && !(await exists(path.join(out, "model.safetensors")))) return;
  let step: number | undefined;
  try {
    step = state === undefined ? undefined : (JSON.parse(state) as { step?: number }).step;
  } catch {
    // an unreadable state still means a run is there
  }
  const keptAs = await freeName(out);
  if (!replace) {
    const data: P.RunExists = { out, step, bytes: await folderBytes(out), keptAs };
    throw new ResponseError(P.RUN_EXISTS, `${out} already holds a run${step === undefined ? "" : ` (step ${step})`}: resume it, or replace it (it is then kept as ${path.basename(keptAs)})`, data);
  }
  await fs.rename(out, keptAs);
  if (selected && sameOrInside(selected, out)) selected = path.join(keptAs, path.relative(path.resolve(out), path.resolve(selected)));
  log(`the previous run in ${out} is kept as ${keptAs}`);
}

/**
 * Runs a job with a work-done progress (cancellable) and the request's own cancellation. The job is listed
 * from the start, so a second request for the same folder is refused while `prepare` decides about it.
 */
async function runJob(kind: Job["kind"], p: P.RunParams, token: CancellationToken, title: string, prepare: () => void, work: (job: Job, progress: WorkDoneProgressServerReporter) => Promise<P.JobResult>): Promise<P.JobResult> {
  await requireInRuns("the run folder", p.out);
  const busy = jobAt(p.out);
  if (busy) throw busyError(busy);
  const job: Job = { id: `${kind}-${++jobCounter}`, kind, out: p.out, step: 0, steps: 0, controller: new AbortController() };
  jobs.set(job.id, job);
  let progress: WorkDoneProgressServerReporter | undefined;
  try {
    prepare();
    await prepareRun(p.out, p.resume, p.replace === true, job);
    progress = await connection.window.createWorkDoneProgress();
    progress.begin(title, 0, "starting", true);
    const stop = () => job.controller.abort();
    token.onCancellationRequested(stop);
    progress.token.onCancellationRequested(stop);
    return await work(job, progress);
  } finally {
    progress?.done();
    jobs.delete(job.id);
  }
}

function onRow(job: Job, progress: WorkDoneProgressServerReporter, row: Record<string, number>): void {
  job.step = row.step;
  job.loss = row.loss;
  const pct = job.steps ? Math.round((100 * row.step) / job.steps) : 0;
  // A diverged step's loss is NaN (null once sent as JSON): shown as it is, never thrown on.
  progress.report(pct, `step ${row.step}/${job.steps}, loss ${typeof row.loss === "number" ? row.loss.toFixed(3) : "n/a"}`);
  void connection.sendNotification(P.Metrics, { job: job.id, kind: job.kind, out: job.out, row });
}

const folderPath = (uri: string) => (uri.startsWith("file:") ? [fileURLToPath(uri)] : []);

connection.onInitialize((params) => {
  roots = params.workspaceFolders ? params.workspaceFolders.flatMap((f) => folderPath(f.uri)) : params.rootUri ? folderPath(params.rootUri) : [];
  return { capabilities: { workspace: { workspaceFolders: { supported: true, changeNotifications: true } } }, serverInfo: { name: "bert-studio" } };
});

connection.onInitialized(() => {
  try {
    connection.workspace.onDidChangeWorkspaceFolders(({ added, removed }) => {
      const gone = new Set(removed.flatMap((f) => folderPath(f.uri)));
      roots = [...roots.filter((r) => !gone.has(r)), ...added.flatMap((f) => folderPath(f.uri))];
    });
  } catch {
    // a client without folder change events: the folders of initialize stay
  }
});

connection.onRequest(
  P.Pretrain,
  guard(async (p: P.PretrainParams, token: CancellationToken) =>
    runJob("pretrain", p, token, "BERT: pretraining", () => undefined, async (job, progress) => {
      job.steps = p.steps;
      const { metrics, stopped, step } = await pretrain({
        corpus: p.folder,
        out: p.out,
        vocab: p.resume && (await exists(path.join(p.out, "trainer_state.json"))) ? undefined : p.vocab,
        trainVocab: p.vocab ? undefined : (p.trainVocab ?? 8000),
        preset: p.preset,
        steps: p.steps,
        batch: p.batch,
        seq: p.seq,
        lr: p.lr,
        schedule: p.schedule,
        seed: 42,
        evalEvery: p.evalEvery ?? Math.max(10, Math.round(p.steps / 10)),
        checkpointEvery: p.checkpointEvery ?? Math.max(10, Math.round(p.steps / 10)),
        logEvery: Math.max(1, Math.min(10, Math.round(p.steps / 50))),
        resume: p.resume,
        device: p.device as Device,
        cased: false,
        heldOut: 0.05,
        include: p.include?.length ? p.include : undefined,
        exclude: p.exclude?.length ? p.exclude : undefined,
        maxFileBytes: (p.maxFileMb ?? 50) * 1048576,
        signal: job.controller.signal,
        onMessage: log,
        onRow: (row) => onRow(job, progress, row),
      });
      selected = p.out;
      return { out: p.out, stopped, steps: step, metrics: metrics[metrics.length - 1] };
    }),
  ),
);

connection.onRequest(
  P.Finetune,
  guard(async (p: P.FinetuneParams, token: CancellationToken) => {
    const task: FinetuneTask = p.task === "auto" ? (await detectTask(p.train)).task : p.task;
    const keepModels = () => {
      for (const [what, dir] of [["the base model", p.model], ["the selected model", selected]] as const) {
        if (dir && sameOrInside(dir, p.out)) throw new Error(`cannot fine-tune into ${p.out}: it holds ${what} (${dir}); choose another run folder`);
      }
    };
    return runJob("finetune", p, token, `BERT: fine-tuning (${task})`, keepModels, async (job, progress) => {
      const { metrics, stopped, step } = await finetune({
        task,
        train: p.train,
        eval: p.eval,
        model: p.model,
        out: p.out,
        epochs: p.epochs,
        batch: p.batch,
        maxLength: p.maxLength,
        lr: p.lr,
        schedule: p.schedule,
        logEvery: 5,
        seed: 42,
        resume: p.resume,
        device: p.device as Device,
        signal: job.controller.signal,
        onMessage: log,
        onProgress: (x) => {
          job.steps = x.steps;
        },
        onRow: (row) => onRow(job, progress, row),
      });
      return { out: p.out, stopped, steps: step, metrics: metrics[metrics.length - 1] };
    });
  }),
);

connection.onRequest(
  P.DetectTask,
  guard(async ({ file }: { file: string }) => detectTask(file)),
);

connection.onRequest(
  P.FillMask,
  guard(async (p: P.FillMaskParams): Promise<P.FillMaskResult> => {
    if (!selected) return { model: "", masks: [] };
    const stamp = (await fs.stat(path.join(selected, "model.safetensors")).catch(() => undefined))?.mtimeMs;
    if (stamp === undefined) throw new Error(`the selected model ${selected} has no model.safetensors (deleted?)`);
    if (!fillMask || fillMask.dir !== selected || fillMask.stamp !== stamp) {
      const previous = fillMask?.model;
      fillMask = { dir: selected, stamp, model: FillMaskModel.load(selected) };
      fillMask.model.catch(() => (fillMask = undefined));
      void previous?.then((m) => m.release(), () => undefined);
    }
    const model = await fillMask.model;
    if (!p.text.includes("[MASK]")) return { model: selected, masks: [] };
    const masks = await model.predict(p.text, p.topK);
    return { model: selected, masks: masks.map((m) => m.map(({ token, score }) => ({ token, score }))) };
  }),
);

connection.onRequest(
  P.Predict,
  guard(async (p: P.PredictParams) => {
    const model = await TaskModel.load(p.model);
    try {
      const [prediction] = await model.predictExamples(model.fromText(p.text, { pair: p.pair, question: p.question }));
      return prediction;
    } finally {
      await model.release();
    }
  }),
);

connection.onRequest(P.Cancel, () => {
  for (const j of jobs.values()) j.controller.abort();
  return jobs.size;
});

connection.onRequest(P.StopJob, ({ job }: { job: string }) => {
  jobs.get(job)?.controller.abort();
  return jobs.has(job);
});

connection.onRequest(P.Status, () => ({
  model: selected,
  pid: process.pid,
  jobs: [...jobs.values()].map(({ id, kind, out, step, steps, loss }) => ({ id, kind, out, step, steps, loss })),
}));

connection.onRequest(
  P.ListModels,
  guard(async ({ folders }: { folders: string[] }) => {
    const found: P.ModelInfo[] = [];
    for (const folder of folders) {
      const entries = await fs.readdir(folder, { withFileTypes: true }).catch(() => []);
      for (const e of entries) {
        if (!e.isDirectory()) continue;
        for (const dir of [path.join(folder, e.name), path.join(folder, e.name, "best")]) {
          const info = await modelInfo(dir).catch(() => undefined);
          if (info) found.push(info);
        }
      }
    }
    return found;
  }),
);

connection.onRequest(
  P.SelectModel,
  guard(async ({ dir }: { dir: string }) => {
    const info = await modelInfo(dir);
    await BertTokenizer.fromDir(dir);
    selected = dir;
    return info;
  }),
);

const holdsModel = async (dir: string) => (await exists(path.join(dir, "trainer_state.json"))) || (await exists(path.join(dir, "model.safetensors")));

/** Whether model files can be copied into `dir` without overwriting a model or a run in training. */
async function writable(dir: string): Promise<boolean> {
  return !jobAt(dir) && !(await runLockHolder(dir)) && !(await holdsModel(dir));
}

/**
 * An export goes where the user chose in a dialog, but never over a model: not into the model itself, a
 * training run, a model in the workspace's run folders, or a folder a job trains into.
 */
async function requireExportTarget(model: string, dest: string): Promise<void> {
  const refuse = (why: string) => new Error(`cannot export into ${dest}: ${why}; choose an empty folder`);
  if (path.resolve(dest) === path.resolve(model)) throw refuse("it is the model itself");
  if (await exists(path.join(dest, "trainer_state.json"))) throw refuse("it holds a training run");
  const job = [...jobs.values()].find((j) => sameOrInside(dest, j.out));
  if (job) throw refuse(`${job.id} is training into ${job.out}`);
  const holder = await runLockHolder(dest);
  if (holder) throw refuse(describeHolder(holder));
  const real = await realPath(dest);
  for (const root of roots) {
    if (inside(real, await realPath(path.join(root, RUNS))) && (await exists(path.join(dest, "model.safetensors")))) throw refuse("it is a model in the workspace's run folders");
  }
}

const MODEL_FILES = ["config.json", "model.safetensors", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"];

connection.onRequest(
  P.ImportModel,
  guard(async ({ dir, dest: wanted }: P.ImportParams) => {
    await requireInRuns("the import folder", wanted);
    // Loading it is the check: config, every tensor of its architecture (of the encoder for a bare
    // BertModel, which can be fine-tuned but not fill masks), a tokenizer.
    const cfg = await readConfig(dir);
    await checkModelFolder(dir, cfg, await BertTokenizer.fromDir(dir));
    const head = taskFromArchitectures(cfg.architectures);
    const params = ParamStore.fromShapes(paramShapes(cfg, head ?? "masked_lm"));
    const report = loadParams(params, (await readSafetensors(path.join(dir, "model.safetensors"))).tensors, dir);
    requireComplete({ ...report, missing: report.missing.filter((n) => head !== undefined || (n.startsWith("bert.") && !n.startsWith("bert.pooler."))) }, dir);
    const dest = (await writable(wanted)) ? wanted : await freeName(wanted);
    await fs.mkdir(dest, { recursive: true });
    for (const f of MODEL_FILES) if (await exists(path.join(dir, f))) await fs.copyFile(path.join(dir, f), path.join(dest, f));
    return modelInfo(dest);
  }),
);

connection.onRequest(
  P.ExportModel,
  guard(async ({ model, format, dest }: P.ExportParams) => {
    await requireExportTarget(model, dest);
    await fs.mkdir(dest, { recursive: true });
    const files: string[] = [];
    const copy = async (names: string[]) => {
      for (const f of names) {
        if (await exists(path.join(model, f))) {
          await fs.copyFile(path.join(model, f), path.join(dest, f));
          files.push(path.join(dest, f));
        }
      }
    };
    if (format === "hf") {
      await copy(MODEL_FILES);
      return { files };
    }
    // ONNX: the eval-mode inference graph with the weights inside (masked LM for pretrained models).
    const cfg = await readConfig(model);
    const head = taskFromArchitectures(cfg.architectures);
    const task = !head || head === "pretraining" ? "masked_lm" : head;
    const params = ParamStore.fromShapes(paramShapes(cfg, task));
    requireComplete(loadParams(params, (await readSafetensors(path.join(model, "model.safetensors"))).tensors, model), model);
    const onnx = path.join(dest, "model.onnx");
    await fs.writeFile(onnx, buildInferenceGraph(cfg, task, params));
    files.push(onnx);
    await copy(["config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json"]);
    return { files };
  }),
);

connection.listen();
