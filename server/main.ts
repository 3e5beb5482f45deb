// The BERT server: a language-server-style process the extension starts over IPC. It hosts the engine
// (pretraining, fine-tuning, fill-mask, import/export) so that model work never runs in the extension
// host. Each job trains in a process of its own (server/jobs.ts), so fill-mask (ghost text, hover), whose
// sessions live here, is answered at once while it trains. Jobs report work-done
// progress, stop on $/cancelRequest, bert/stopJob or bert/cancel (keeping a checkpoint), and stream their
// metrics.
// Paths come from the client: the server writes runs only inside the workspace folders' .bert-studio/runs,
// and it alone decides about a run folder (resume it, keep it as NAME-n, or refuse); it never deletes one.
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { createConnection, ProposedFeatures, ResponseError, type CancellationToken } from "vscode-languageserver/node";
import { FillMaskPipeline } from "./inference/fill-mask.js";
import { checkModel, exportModel, heldBy, huggingFaceCacheModels, importModel, listModels } from "./inference/models.js";
import * as P from "../common/protocol.js";
import { detectTask } from "./tasks/tasks.js";
import { freeName, jobAt, jobList, jobs, jobThreads, runJob, stopAll, stopJob, type JobHost } from "./jobs.js";
import type { JobSpec } from "./job-ipc.js";
import { describeHolder, runLockHolder } from "./training/run-lock.js";
import { measureSecondsPerFlop, presetEstimates } from "./dev/estimate.js";
import { BertTokenizer } from "./text/tokenizer.js";
import { exists, inside, sameOrInside } from "./util/fs.js";

const connection = createConnection(ProposedFeatures.all);
const log = (text: string) => connection.sendNotification(P.Message, { text });

let selected: string | undefined;
let fillMask: { dir: string; stamp: number; model: Promise<FillMaskPipeline> } | undefined;
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

/** What the job machinery (jobs.ts) needs of this server: a replaced run keeps the selection inside it. */
const jobHost: JobHost = {
  connection,
  log,
  moved(from, to) {
    if (selected && sameOrInside(selected, from)) selected = path.join(to, path.relative(path.resolve(from), path.resolve(selected)));
  },
};

/** A job (pretrain or finetune) into `spec.params.out`, which must lie inside the workspace's run folders. */
async function trainJob(spec: JobSpec, token: CancellationToken, title: string, prepare?: () => void): Promise<P.JobResult> {
  await requireInRuns("the run folder", spec.params.out);
  return runJob(jobHost, spec, title, token, prepare);
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
    const result = await trainJob({ kind: "pretrain", params: p }, token, "BERT: pretraining", keepFrom);
    selected = p.out;
    return result;
  }),
);

connection.onRequest(
  P.Finetune,
  guard(async (p: P.FinetuneParams, token: CancellationToken) => {
    const task: P.FinetuneTask = p.task === "auto" ? (await detectTask(p.train)).task : p.task;
    const keepModels = () => {
      for (const [what, dir] of [["the base model", p.model], ["the selected model", selected]] as const) {
        if (dir && sameOrInside(dir, p.out)) throw new Error(`cannot fine-tune into ${p.out}: it holds ${what} (${dir}); choose another run folder`);
      }
    };
    return trainJob({ kind: "finetune", params: p, task }, token, `BERT: fine-tuning (${task})`, keepModels);
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
      fillMask = { dir: selected, stamp, model: FillMaskPipeline.load(selected) };
      fillMask.model.catch(() => (fillMask = undefined));
      void previous?.then((m) => m.release(), () => undefined);
    }
    const model = await fillMask.model;
    if (!p.text.includes("[MASK]")) return { model: selected, masks: [] };
    const masks = await model.predict(p.text, p.topK);
    return { model: selected, masks: masks.map((m) => m.map(({ token, score }) => ({ token, score }))) };
  }),
);

connection.onRequest(P.Cancel, () => stopAll());

connection.onRequest(P.StopJob, ({ job }: { job: string }) => stopJob(job));

connection.onRequest(P.Status, () => ({
  model: selected,
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
  P.SelectModel,
  guard(async ({ dir }: { dir: string }) => {
    const info = await checkModel(dir);
    selected = dir;
    return info;
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
  guard(async ({ model, format, dest }: P.ExportParams) => {
    await requireExportTarget(model, dest);
    return { files: await exportModel(model, format, dest) };
  }),
);

connection.listen();
