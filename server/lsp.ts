// The BERT server: a language-server-style process the extension starts over IPC. It hosts the engine
// (pretraining, fine-tuning, fill-mask, predict, import/export) so that model work never runs in the
// extension host. Jobs report work-done progress, stop on $/cancelRequest or bert/cancel (keeping a
// checkpoint), and stream their metrics; fill-mask requests are answered while a job trains.
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { createConnection, ProposedFeatures, ResponseError, type CancellationToken, type WorkDoneProgressServerReporter } from "vscode-languageserver/node";
import { readConfig } from "./model/config.js";
import { buildInferenceGraph } from "./model/inference.js";
import { taskFromArchitectures } from "./model/heads.js";
import { loadParams, ParamStore, paramShapes, requireComplete } from "./model/params.js";
import { readSafetensors } from "./model/safetensors.js";
import type { Device } from "./model/session.js";
import { FillMask as FillMaskModel } from "./fill-mask.js";
import * as P from "./protocol.js";
import { TaskModel } from "./tasks/task-model.js";
import { detectTask, type FinetuneTask } from "./tasks/tasks.js";
import { finetune } from "./training/finetune.js";
import { pretrain } from "./training/pretrain.js";
import { exists } from "./training/run-folder.js";
import { BertTokenizer } from "./training/tokenizer.js";

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

/** Runs a job with a work-done progress (cancellable) and the request's own cancellation. */
async function runJob(kind: Job["kind"], out: string, token: CancellationToken, title: string, work: (job: Job, progress: WorkDoneProgressServerReporter) => Promise<P.JobResult>): Promise<P.JobResult> {
  for (const j of jobs.values()) if (path.resolve(j.out) === path.resolve(out)) throw new Error(`a job is already training into ${out}`);
  const job: Job = { id: `${kind}-${++jobCounter}`, kind, out, step: 0, steps: 0, controller: new AbortController() };
  jobs.set(job.id, job);
  const progress = await connection.window.createWorkDoneProgress();
  progress.begin(title, 0, "starting", true);
  const stop = () => job.controller.abort();
  token.onCancellationRequested(stop);
  progress.token.onCancellationRequested(stop);
  try {
    return await work(job, progress);
  } finally {
    progress.done();
    jobs.delete(job.id);
  }
}

function onRow(job: Job, progress: WorkDoneProgressServerReporter, row: Record<string, number>): void {
  job.step = row.step;
  job.loss = row.loss;
  const pct = job.steps ? Math.round((100 * row.step) / job.steps) : 0;
  progress.report(pct, `step ${row.step}/${job.steps}, loss ${row.loss.toFixed(3)}`);
  void connection.sendNotification(P.Metrics, { job: job.id, kind: job.kind, out: job.out, row });
}

connection.onInitialize(() => ({ capabilities: {}, serverInfo: { name: "bert-studio" } }));

connection.onRequest(
  P.Pretrain,
  guard(async (p: P.PretrainParams, token: CancellationToken) =>
    runJob("pretrain", p.out, token, "BERT: pretraining", async (job, progress) => {
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
    return runJob("finetune", p.out, token, `BERT: fine-tuning (${task})`, async (job, progress) => {
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

const MODEL_FILES = ["config.json", "model.safetensors", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"];

connection.onRequest(
  P.ImportModel,
  guard(async ({ dir, dest }: { dir: string; dest: string }) => {
    // Loading it is the check: config, every tensor of its architecture (of the encoder for a bare
    // BertModel, which can be fine-tuned but not fill masks), a tokenizer.
    const cfg = await readConfig(dir);
    const head = taskFromArchitectures(cfg.architectures);
    const params = ParamStore.fromShapes(paramShapes(cfg, head ?? "masked_lm"));
    const report = loadParams(params, (await readSafetensors(path.join(dir, "model.safetensors"))).tensors, dir);
    requireComplete({ ...report, missing: report.missing.filter((n) => head !== undefined || (n.startsWith("bert.") && !n.startsWith("bert.pooler."))) }, dir);
    await BertTokenizer.fromDir(dir);
    await fs.mkdir(dest, { recursive: true });
    for (const f of MODEL_FILES) if (await exists(path.join(dir, f))) await fs.copyFile(path.join(dir, f), path.join(dest, f));
    return modelInfo(dest);
  }),
);

connection.onRequest(
  P.ExportModel,
  guard(async ({ model, format, dest }: P.ExportParams) => {
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
