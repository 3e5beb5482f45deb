// The BERT server: a language-server-style process the extension starts over IPC. It hosts the engine
// (pretraining, fine-tuning, fill-mask, import/export) so that model work never runs in the extension
// host. Each job trains in a process of its own (server/jobs.ts), so fill-mask (ghost text, hover), whose
// sessions live here, is answered at once while it trains. Jobs stream their metrics (the extension draws
// its progress from them) and stop on $/cancelRequest, bert/stopJob or bert/cancel (keeping a checkpoint).
// Paths come from the client: the server writes runs only inside the workspace folders' .bert-studio/runs,
// and it alone decides about a run folder (resume it, keep it as NAME-n, or refuse); it never deletes one
// (bert/deleteRun moves it to the user's trash).
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { createConnection, LSPErrorCodes, ProposedFeatures, ResponseError, type CancellationToken } from "vscode-languageserver/node";
import { FillMaskPipeline } from "./inference/fill-mask.js";
import { loadTaskModel, predictText } from "./inference/predict.js";
import { surprise, SurpriseCancelled } from "./inference/surprise.js";
import { resolveModelDir } from "./inference/task-model.js";
import { checkModel, heldBy, huggingFaceCacheModels, importModel, listModels } from "./inference/models.js";
import { exportAs } from "./inference/trainer-export.js";
import * as P from "../common/protocol.js";
import { detectTask } from "./tasks/tasks.js";
import { freeName, jobAt, jobList, jobs, jobThreads, requireIdle, runJob, stopAll, stopJob, type JobHost } from "./jobs.js";
import { listRuns, modelSlot } from "./inference/runs.js";
import { moveToTrash } from "./util/trash.js";
import type { JobSpec } from "./job-ipc.js";
import { describeHolder, runLockHolder } from "./training/run-lock.js";
import { measureSecondsPerFlop, presetEstimates } from "./dev/estimate.js";
import { MB, pretrainDefaults } from "../common/settings.js";
import { textFiles } from "./text/corpus.js";
import { BertTokenizer } from "./text/tokenizer.js";
import { exists, inside, sameOrInside } from "./util/fs.js";

const connection = createConnection(ProposedFeatures.all);
const log = (text: string) => connection.sendNotification(P.Message, { text });

/** The language model (fill-mask, surprise; fine-tuning's base) and the fine-tuned model (Predict): two slots, see modelSlot. */
let selected: string | undefined;
let selectedTask: string | undefined;
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

/** What the job machinery (jobs.ts) needs of this server: a replaced run keeps the selections inside it. */
const jobHost: JobHost = {
  connection,
  log,
  moved(from, to) {
    const move = (dir: string | undefined) => (dir && sameOrInside(dir, from) ? path.join(to, path.relative(path.resolve(from), path.resolve(dir))) : dir);
    selected = move(selected);
    selectedTask = move(selectedTask);
  },
};

/** A job (pretrain or finetune) into `spec.params.out`, which must lie inside the workspace's run folders. */
async function trainJob(spec: JobSpec, token: CancellationToken, prepare?: () => void): Promise<P.JobResult> {
  await requireInRuns("the run folder", spec.params.out);
  return runJob(jobHost, spec, token, prepare);
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
  guard(async (p: P.PretrainParams, token: CancellationToken) => {
    // `from` is only read, wherever it is; a run into it (or around it) would write over, or move away, the
    // model it starts from.
    const keepFrom = () => {
      if (p.from && sameOrInside(p.from, p.out)) throw new Error(`cannot pretrain into ${p.out}: it holds the model to continue from (${p.from}); choose another run folder`);
    };
    const result = await trainJob({ kind: "pretrain", params: p }, token, keepFrom);
    // Only a finished run becomes the language model: a stopped one is partial, and selecting it replaced a
    // finished model by a half-trained one whenever the user pressed Stop. (A failed run throws above.)
    if (!result.stopped) {
      selected = p.out;
      preload("model", p.out);
    }
    return result;
  }),
);

connection.onRequest(
  P.Finetune,
  guard(async (p: P.FinetuneParams, token: CancellationToken) => {
    const task: P.FinetuneTask = p.task === "auto" ? (await detectTask(p.train)).task : p.task;
    const keepModels = () => {
      for (const [what, dir] of [["the base model", p.model], ["the selected model", selected], ["the selected fine-tuned model", selectedTask]] as const) {
        if (dir && sameOrInside(dir, p.out)) throw new Error(`cannot fine-tune into ${p.out}: it holds ${what} (${dir}); choose another run folder`);
      }
    };
    const result = await trainJob({ kind: "finetune", params: p, task }, token, keepModels);
    if (!result.stopped) {
      selectedTask = p.out; // as Pretrain: only a finished run
      preload("taskModel", p.out);
    }
    return result;
  }),
);

connection.onRequest(
  P.DetectTask,
  guard(async ({ file }: { file: string }) => detectTask(file)),
);

/** A model loaded once, and the requests that use it now. */
interface Loaded<M> {
  dir: string;
  /** model.safetensors' mtime when loaded. */
  stamp: number;
  model: Promise<M>;
  users: number;
  retired: boolean;
}

/**
 * The model the requests of one kind use: one folder at a time, loaded on first use and again when its
 * model.safetensors changes (a job's checkpoint into the selected model). A model replaced (or dropped) is
 * released after the last request using it ends: a Surprise over a long text keeps its session through a
 * checkpoint. `weights` is the folder's model.safetensors (a fine-tuning run's is in best/).
 */
function modelCache<M extends { release(): Promise<void> }>(load: (dir: string) => Promise<M>, weights: (dir: string) => Promise<string>) {
  let current: Loaded<M> | undefined;
  const release = (l: Loaded<M>) => void l.model.then((m) => m.release(), () => undefined);
  const retire = (l: Loaded<M>) => {
    l.retired = true;
    if (l.users === 0) release(l);
  };
  return {
    async use<R>(dir: string, fn: (model: M) => Promise<R>): Promise<R> {
      const stamp = (await fs.stat(await weights(dir)).catch(() => undefined))?.mtimeMs;
      if (stamp === undefined) throw new Error(`the model ${dir} has no model.safetensors (deleted?)`);
      if (!current || current.dir !== dir || current.stamp !== stamp) {
        if (current) retire(current);
        const loaded: Loaded<M> = { dir, stamp, model: load(dir), users: 0, retired: false };
        loaded.model.catch(() => {
          if (current === loaded) current = undefined; // the next request tries again
        });
        current = loaded;
      }
      const l = current;
      l.users++;
      try {
        return await fn(await l.model);
      } finally {
        if (--l.users === 0 && l.retired) release(l);
      }
    },
    /** Forgets the model loaded (released once unused): the next request loads it again. */
    reload(): void {
      if (current) retire(current);
      current = undefined;
    },
    /** Forgets the model if it lies in `dir` (released once unused). */
    drop(dir: string): void {
      if (!current || !sameOrInside(current.dir, dir)) return;
      retire(current);
      current = undefined;
    },
  };
}

/** int8 weights in the models below (the editor's bertStudio.int8, given by SetInference). */
let int8 = false;
/** The selected language model's session: fill-mask and surprise. */
const languageModels = modelCache((dir) => FillMaskPipeline.load(dir, "cpu", { int8 }), async (dir) => path.join(dir, "model.safetensors"));
/** The fine-tuned model Predict last used. */
const taskModels = modelCache((dir) => loadTaskModel(dir, { int8 }), async (dir) => path.join(await resolveModelDir(dir), "model.safetensors"));

/**
 * Loads a model just selected in the background, so that the first completion or Predict does not wait for
 * its sessions (a second or more for a base-size model); a failure is left for that request to report.
 */
function preload(slot: "model" | "taskModel", dir: string): void {
  void (slot === "model" ? languageModels : taskModels).use(dir, async () => undefined).catch(() => undefined);
}

connection.onRequest(
  P.FillMask,
  guard(async (p: P.FillMaskParams): Promise<P.FillMaskResult> => {
    const dir = selected;
    if (!dir) return { model: "", masks: [] };
    return languageModels.use(dir, async (model) => {
      if (!p.text.includes("[MASK]")) return { model: dir, masks: [] };
      const masks = await model.predict(p.text, p.topK);
      return { model: dir, masks: masks.map((m) => m.map(({ token, score }) => ({ token, score }))) };
    });
  }),
);

connection.onRequest(
  P.Predict,
  guard(async (p: P.PredictParams): Promise<P.PredictResult> => {
    const dir = p.model ?? selectedTask;
    if (!dir) throw new Error("no fine-tuned model selected: run BERT: Fine-tune on Labeled File, or select a fine-tuned model in the Runs view");
    return taskModels.use(dir, (model) => predictText(model, p));
  }),
);

connection.onRequest(
  P.Surprise,
  guard(async (p: P.SurpriseParams, token: CancellationToken): Promise<P.SurpriseResult> => {
    const dir = selected;
    if (!dir) throw new Error("no language model selected: run BERT: Pretrain on Workspace, or select a language model in the Runs view");
    try {
      const words = await languageModels.use(dir, (model) => surprise(model, p.text, { topK: p.topK, isCancelled: () => token.isCancellationRequested }));
      return { model: dir, words };
    } catch (e) {
      if (e instanceof SurpriseCancelled) throw new ResponseError(LSPErrorCodes.RequestCancelled, "cancelled");
      throw e;
    }
  }),
);

connection.onRequest(P.Cancel, () => stopAll());

connection.onRequest(P.StopJob, ({ job }: { job: string }) => stopJob(job));

connection.onRequest(P.Status, () => ({
  model: selected,
  taskModel: selectedTask,
  pid: process.pid,
  jobs: jobList(),
}));

connection.onRequest(
  P.ListModels,
  guard(async ({ folders }: { folders: string[] }) => listModels(folders)),
);

connection.onRequest(
  P.ListCachedModels,
  guard(async () => huggingFaceCacheModels(process.env)),
);

/** Measured step speeds (seconds per FLOP) by batch, seq and device, kept for the server's life. */
const stepSpeeds = new Map<string, number>();
/** Measurements under way, so that two pickers share one. */
const measuring = new Map<string, Promise<void>>();

connection.onRequest(
  P.EstimatePretrain,
  guard(async (p: P.EstimatePretrainParams) => {
    const shape = { batch: p.batch, seq: p.seq, vocabSize: p.vocab ? (await BertTokenizer.fromVocabFile(p.vocab)).vocabSize : p.vocabSize };
    const key = `${p.batch} ${p.seq} ${p.device}`;
    // A job trains on the same cores: a measurement beside it would be slow by the job's share (and slow the
    // job), so none starts then, and one that saw a job start is not kept.
    if (p.measure && !stepSpeeds.has(key) && jobs.size === 0) {
      let m = measuring.get(key);
      if (!m) {
        m = measureSecondsPerFlop({ ...shape, device: p.device, threads: jobThreads() })
          .then((s) => {
            if (jobs.size === 0) stepSpeeds.set(key, s);
          })
          .finally(() => measuring.delete(key));
        measuring.set(key, m);
      }
      await m;
    }
    return presetEstimates(shape, stepSpeeds.get(key));
  }),
);

connection.onRequest(
  P.DescribeCorpus,
  guard(async (p: { corpus: string; include?: string[]; exclude?: string[]; maxFileMb?: number }) => {
    let files = 0;
    let bytes = 0;
    const opts = { include: p.include?.length ? p.include : undefined, exclude: p.exclude?.length ? p.exclude : undefined, maxFileBytes: (p.maxFileMb ?? pretrainDefaults.maxFileMb) * MB };
    for await (const file of textFiles(p.corpus, opts)) {
      const st = await fs.stat(file).catch(() => undefined);
      if (!st) continue;
      files++;
      bytes += st.size;
    }
    return { files, bytes };
  }),
);

connection.onRequest(
  P.SetInference,
  guard(async (p: { int8: boolean }) => {
    if (p.int8 === int8) return;
    int8 = p.int8;
    languageModels.reload();
    taskModels.reload();
    if (selected) preload("model", selected);
    if (selectedTask) preload("taskModel", selectedTask);
  }),
);

connection.onRequest(
  P.SelectModel,
  guard(async ({ dir }: { dir: string }): Promise<P.SelectResult> => {
    const info = await checkModel(dir);
    const slot = modelSlot(info);
    if (slot === "model") selected = dir;
    else selectedTask = dir;
    preload(slot, dir);
    return { ...info, slot };
  }),
);

connection.onRequest(
  P.ListRuns,
  guard(async ({ folders }: { folders: string[] }) => listRuns(folders, jobList())),
);

/** The workspace folder whose runs folder holds `dir` directly: only a run folder itself can be deleted. */
async function runFolderRoot(dir: string): Promise<string> {
  const real = await realPath(dir);
  for (const root of roots) {
    const runs = await realPath(path.join(root, RUNS));
    if (real === runs) throw new Error(`${dir} is the runs folder itself: delete its runs one by one`);
    if (path.dirname(real) === runs) return root;
  }
  await requireInRuns("the run folder", dir);
  throw new Error(`${dir} is inside a run, not a run folder: only a folder directly inside a workspace's ${RUNS} can be deleted`);
}

connection.onRequest(
  P.DeleteRun,
  guard(async ({ dir }: { dir: string }) => {
    const root = await runFolderRoot(dir);
    if (!(await fs.stat(dir).catch(() => undefined))?.isDirectory()) throw new Error(`${dir}: no such run folder`);
    await requireIdle(dir, log);
    const trashedTo = await moveToTrash(dir, path.join(root, ".bert-studio", "trash"));
    log(`moved ${dir} to ${trashedTo}`);
    if (selected && sameOrInside(selected, dir)) selected = undefined;
    if (selectedTask && sameOrInside(selectedTask, dir)) selectedTask = undefined;
    languageModels.drop(dir);
    taskModels.drop(dir);
    return { trashedTo };
  }),
);

/** Whether model files can be copied into `dir` without overwriting a model or a run in training. */
async function writable(dir: string): Promise<boolean> {
  return !jobAt(dir) && !(await heldBy(dir));
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

connection.onRequest(
  P.ImportModel,
  guard(async ({ dir, dest: wanted }: P.ImportParams) => {
    await requireInRuns("the import folder", wanted);
    return importModel(dir, (await writable(wanted)) ? wanted : await freeName(wanted));
  }),
);

connection.onRequest(
  P.ExportModel,
  guard(async ({ model, format, dest, corpus, taskData }: P.ExportParams) => {
    await requireExportTarget(model, dest);
    return exportAs(model, format, dest, { corpus, taskData, onMessage: log });
  }),
);

connection.listen();
