// The palette commands (category "BERT"). Each asks what it needs, sends one request to the server and
// reports the outcome; a failure is one notification with the server's message. The client never deletes
// or moves a run folder: the server decides (a run already there is replaced only after the user confirms,
// and is then kept as NAME-n).
import * as path from "node:path";
import * as vscode from "vscode";
import { State } from "vscode-languageclient/node";
import * as P from "../common/protocol.js";
import { finetuneDefaults, PRESET_NAMES } from "../common/settings.js";
import { config } from "./config.js";
import type { Extension } from "./context.js";
import { withJobProgress } from "./job-progress.js";

const RUNS = path.join(".bert-studio", "runs");

function runsFolder(folder: vscode.WorkspaceFolder): string {
  return path.join(folder.uri.fsPath, RUNS);
}

async function pickFolder(): Promise<vscode.WorkspaceFolder | undefined> {
  const folders = vscode.workspace.workspaceFolders ?? [];
  if (folders.length === 0) {
    void vscode.window.showErrorMessage("BERT: open a folder first: pretraining reads the text files of a workspace folder.");
    return undefined;
  }
  return folders.length === 1 ? folders[0] : vscode.window.showWorkspaceFolderPick({ placeHolder: "Folder to pretrain on" });
}

function showError(e: unknown): void {
  void vscode.window.showErrorMessage(`BERT: ${(e as Error).message}`);
}

/**
 * Sends a job and waits for it. When the server dies mid-job the client restarts it; the job is then sent
 * again with resume, so it continues from its last checkpoint.
 */
async function sendJob<T extends P.RunParams>(ext: Extension, type: typeof P.Pretrain | typeof P.Finetune, params: T, token?: vscode.CancellationToken): Promise<P.JobResult | undefined> {
  for (let attempt = 0; ; attempt++) {
    await ext.ready();
    try {
      return await ext.client.sendRequest(type as typeof P.Pretrain, params as unknown as P.PretrainParams, token);
    } catch (e) {
      const restarting = ext.client.state !== State.Running || /disposed|closed|connection/i.test((e as Error).message);
      if (!restarting || attempt >= 3 || token?.isCancellationRequested) throw e;
      ext.output.appendLine(`the BERT server stopped during the job (${(e as Error).message}); restarting it and resuming from the last checkpoint`);
      await waitForRunning(ext);
      params = { ...params, resume: true };
    }
  }
}

/** The RUN_EXISTS answer's data, when `e` is one. */
function runExists(e: unknown): P.RunExists | undefined {
  const r = e as { code?: number; data?: P.RunExists } | undefined;
  return r?.code === P.RUN_EXISTS ? r.data : undefined;
}

function formatBytes(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.ceil(n / 1e3)} kB`;
}

/** The modal question before a run is replaced; true on Replace. */
async function confirmReplace(d: P.RunExists): Promise<boolean> {
  const what = d.step === undefined ? "a model (no training state)" : `a run at step ${d.step}`;
  const detail = `${d.out} holds ${what}, ${formatBytes(d.bytes)}.\n\nReplacing starts a new run in this folder. The old one is not deleted: it is kept as ${path.basename(d.keptAs)}.`;
  return (await vscode.window.showWarningMessage(`Replace ${path.basename(d.out)}?`, { modal: true, detail }, "Replace")) === "Replace";
}

/**
 * Sends a job under its progress notification (Cancel stops it after a step) and waits for it, and redraws
 * the status bar when it ends. The curves open beside the editor once the job logs its first row (a job
 * that fails at once opens nothing). When its folder holds a run, the server refuses (RUN_EXISTS) and the
 * user is asked; `replace` answers for scripts and tests (true: replace, false: keep the run and fail).
 * Undefined when the user keeps the run.
 */
async function startJob<T extends P.RunParams>(ext: Extension, type: typeof P.Pretrain | typeof P.Finetune, params: T, replace: boolean | undefined): Promise<P.JobResult | undefined> {
  const title = type === P.Pretrain ? "BERT: pretraining" : "BERT: fine-tuning";
  const firstRow = ext.onMetrics((e) => {
    if (path.resolve(e.out) !== path.resolve(params.out)) return;
    firstRow.dispose();
    ext.progress.show(path.basename(params.out));
  });
  const send = (p: T) => withJobProgress(ext, title, params.out, () => sendJob(ext, type, p));
  try {
    return await send({ ...params, replace: replace === true });
  } catch (e) {
    const held = runExists(e);
    if (!held || replace !== undefined) throw e;
    if (!(await confirmReplace(held))) return undefined;
    return await send({ ...params, replace: true });
  } finally {
    firstRow.dispose();
    await ext.refreshStatus();
  }
}

function waitForRunning(ext: Extension): Promise<void> {
  if (ext.client.state === State.Running) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the BERT server did not restart")), 60_000);
    const sub = ext.client.onDidChangeState((e) => {
      if (e.newState === State.Running) {
        clearTimeout(timer);
        sub.dispose();
        resolve();
      }
    });
    // A server that will not come back by itself is started again.
    setTimeout(() => void ext.ready().catch(() => undefined), 2000);
  });
}

/** What "continue from the selected model" accepts: a pretrained BERT or a bare encoder, not a fine-tuned one. */
const CONTINUABLE = ["BertForPreTraining", "BertForMaskedLM", "BertModel"];

/** The selected model when pretraining can continue from it. */
async function continuableModel(ext: Extension): Promise<string | undefined> {
  await ext.ready();
  const { model } = await ext.client.sendRequest(P.Status);
  if (!model) return undefined;
  const info = await ext.modelInfo(model);
  return info && !info.task && CONTINUABLE.includes(info.architecture) ? model : undefined;
}

/** `run`: resume that pretraining run folder (the Runs view's Resume). */
type PretrainOpts = { preset?: string; from?: string; resume?: boolean; replace?: boolean; run?: string };
type PretrainPick = vscode.QuickPickItem & { preset: string; from?: string; resume: boolean };

/** "< 1 min", "40 min", "3.5 h", "40 h". */
function duration(seconds: number): string {
  const min = seconds / 60;
  return min < 1 ? "< 1 min" : min < 120 ? `${Math.round(min)} min` : `${(min / 60).toFixed(min < 600 ? 1 : 0)} h`;
}

/**
 * A preset's detail line: its shape and parameters, then what the budget buys on this machine (or `pending`
 * while there is no step time).
 */
function presetDetail(e: P.PresetEstimate, pending?: string, tokens?: number): string {
  // A vocabulary trained on a small workspace may come out smaller than bertStudio.vocabSize.
  const size = `L${e.layers} H${e.hidden} · ${config.vocab ? "" : "≈ "}${(e.parameters / 1e6).toFixed(1)}M parameters`;
  const s = e.stepSeconds;
  const n = (x: number) => x.toLocaleString("en-US");
  const steps = s === undefined ? undefined : config.minutes > 0 ? Math.floor((config.minutes * 60) / s) : config.steps;
  const time =
    s === undefined || steps === undefined
      ? pending
      : config.minutes > 0
        ? `≈ ${n(steps)} steps in ${config.minutes} min (estimated for this machine)`
        : `≈ ${duration(steps * s)} for ${n(steps)} steps (estimated for this machine)`;
  // How often the budget reads this workspace's text: a few passes learn it, a fraction of one does not.
  const passes = steps !== undefined && tokens ? (steps * config.batch * config.seq) / tokens : undefined;
  const reads = passes === undefined ? "" : `≈ ${passes < 10 ? passes.toFixed(1) : n(Math.round(passes))} passes over this workspace's text`;
  return [size, time, reads].filter(Boolean).join(" · ");
}

/** Bytes of English prose per WordPiece token: 4.3 with an 8,000-token vocabulary trained on WikiText-2, 4.5 with bert-base-uncased's (measured); Markdown with code is nearer 3. */
const BYTES_PER_TOKEN = 4;

/** "22 text files, 1.3 MB (≈ 330k tokens)". */
function describeCorpus(c: { files: number; bytes: number }): string {
  const tokens = c.bytes / BYTES_PER_TOKEN;
  const k = tokens >= 1e6 ? `${(tokens / 1e6).toFixed(1)}M` : `${Math.round(tokens / 1e3)}k`;
  return `${c.files.toLocaleString("en-US")} text file${c.files === 1 ? "" : "s"}, ${formatBytes(c.bytes)} (≈ ${k} tokens)`;
}

/**
 * The preset picker, shown at once; each preset's size, then its time on this machine, fill in its detail
 * line as the server answers (the first time in a session it measures a few training steps: seconds).
 */
function pickPretrain(ext: Extension, items: PretrainPick[], folder: vscode.WorkspaceFolder): Promise<PretrainPick | undefined> {
  const qp = vscode.window.createQuickPick<PretrainPick>();
  qp.title = `Pretrain on ${folder.name}`;
  qp.placeholder = "BERT preset to pretrain on this workspace, or the selected model to continue";
  qp.items = items;
  qp.busy = true;
  let open = true;
  let sizes: P.PresetEstimate[] = [];
  let latest: { estimates: P.PresetEstimate[]; pending?: string } = { estimates: [] };
  let tokens: number | undefined;
  const fill = (estimates: P.PresetEstimate[], pending?: string) => {
    if (!open) return;
    latest = { estimates, pending };
    // New items move the highlight to the first: keep the user's.
    const active = qp.items.indexOf(qp.activeItems[0]);
    qp.items = items.map((t) => {
      const e = t.from || t.resume ? undefined : estimates.find((x) => x.preset === t.preset);
      return e ? { ...t, detail: presetDetail(e, pending, tokens) } : t;
    });
    if (active >= 0) qp.activeItems = [qp.items[active]];
  };
  const params: P.EstimatePretrainParams = { batch: config.batch, seq: config.seq, vocabSize: config.vocabSize, vocab: config.vocab, device: config.device };
  void (async () => {
    await ext.ready();
    const corpus = await ext.client.sendRequest(P.DescribeCorpus, { corpus: folder.uri.fsPath, include: config.include, exclude: config.exclude, maxFileMb: config.maxFileMb });
    if (!open) return;
    qp.title = `Pretrain on ${folder.name}: ${describeCorpus(corpus)}`;
    tokens = corpus.bytes / BYTES_PER_TOKEN;
    fill(latest.estimates, latest.pending);
  })().catch((e: Error) => ext.output.appendLine(`no corpus summary: ${e.message}`));
  void (async () => {
    await ext.ready();
    sizes = await ext.client.sendRequest(P.EstimatePretrain, params);
    fill(sizes, "measuring the speed on this machine…");
    fill(await ext.client.sendRequest(P.EstimatePretrain, { ...params, measure: true }), "no time estimate while a job trains");
  })()
    .catch((e: Error) => {
      ext.output.appendLine(`no pretraining estimate: ${e.message}`);
      fill(sizes);
    })
    .finally(() => {
      if (open) qp.busy = false;
    });
  return new Promise((resolve) => {
    qp.onDidAccept(() => {
      resolve(qp.selectedItems[0]);
      qp.hide();
    });
    qp.onDidHide(() => {
      open = false;
      resolve(undefined);
      qp.dispose();
    });
    qp.show();
  });
}

/**
 * With `opts.preset`, `opts.from` (continue pretraining that model) or `opts.run` (resume that run), no
 * picker is shown (for the Runs view, keybindings, scripts and tests); `opts.replace` answers the question asked when the run folder holds a run (see
 * startJob).
 */
async function pretrainOnWorkspace(ext: Extension, opts: PretrainOpts = {}): Promise<P.JobResult | undefined> {
  const folder = opts.run ? vscode.workspace.getWorkspaceFolder(vscode.Uri.file(opts.run)) : await pickFolder();
  if (!folder) return undefined;
  const budget = config.minutes > 0 ? `${config.minutes} min (bertStudio.minutes)` : `${config.steps} steps`;
  // A continued run is named after its model; its preset is unused (the engine keeps the model's size).
  const outOf = (t: { preset: string; from?: string }) => path.join(runsFolder(folder), t.from ? `continue-${path.basename(t.from)}` : `pretrain-${t.preset}`);
  const targets: (vscode.QuickPickItem & { preset: string; from?: string })[] = PRESET_NAMES.map((p) => ({ label: p, description: [p === config.preset ? "(setting)" : "", budget].filter(Boolean).join(", "), preset: p }));
  const scripted = opts.preset || opts.from || opts.run ? { preset: opts.preset ?? config.preset, from: opts.from, resume: !!opts.resume || !!opts.run } : undefined;
  const from = scripted ? undefined : await continuableModel(ext);
  if (from) targets.push({ label: "$(arrow-right) Continue from the selected model", description: `${path.basename(from)}: keeps its vocabulary and size, ${budget}`, preset: config.preset, from });
  const items: PretrainPick[] = [];
  for (const t of targets) {
    const hasRun = await vscode.workspace.fs.stat(vscode.Uri.file(path.join(outOf(t), "trainer_state.json"))).then(() => true, () => false);
    if (hasRun) items.push({ ...t, label: `$(debug-continue) Resume ${t.from ? path.basename(outOf(t)) : t.preset}`, description: outOf(t), resume: true });
    items.push({ ...t, description: hasRun ? "start again (asks first; the old run is kept, renamed)" : t.description, resume: false });
  }
  const pick = scripted ?? (await pickPretrain(ext, items, folder));
  if (!pick) return undefined;
  const out = opts.run ?? outOf(pick);
  const params: P.PretrainParams = {
    corpus: folder.uri.fsPath,
    out,
    preset: pick.preset as P.PretrainParams["preset"],
    steps: config.steps,
    minutes: config.minutes > 0 ? config.minutes : undefined,
    batch: config.batch,
    seq: config.seq,
    lr: config.pretrainLr(!!pick.from),
    schedule: config.schedule,
    device: config.device,
    // Continuing keeps the model's vocabulary: the engine refuses another one with `from`.
    ...(pick.from ? { from: pick.from } : { vocab: config.vocab, trainVocab: config.vocabSize }),
    include: config.include,
    exclude: config.exclude,
    maxFileMb: config.maxFileMb,
    resume: pick.resume,
  };
  try {
    const r = await startJob(ext, P.Pretrain, params, scripted ? opts.replace : undefined);
    if (r) void pretrainDone(ext, r);
    return r;
  } catch (e) {
    showError(e);
    return undefined;
  }
}

/** The held-out masked-token accuracy of a pretraining run's last evaluation row, if it has one. */
function heldOutAccuracy(r: P.JobResult): number | undefined {
  const a = r.metrics?.eval_mlm_accuracy ?? r.metrics?.mlm_accuracy;
  return typeof a === "number" ? a : undefined;
}

async function pretrainDone(ext: Extension, r: P.JobResult): Promise<void> {
  const name = path.basename(r.out);
  if (r.stopped) {
    void vscode.window.showInformationMessage(`BERT: ${name} stopped at step ${r.steps}; its checkpoint is kept (Resume it from the Runs view). The selected model is unchanged.`);
    return;
  }
  const acc = heldOutAccuracy(r);
  const score = acc === undefined ? "" : `: ${(acc * 100).toFixed(1)}% of held-out masked tokens right`;
  const pick = await vscode.window.showInformationMessage(`BERT: pretraining ${name} done at step ${r.steps}${score}. It is selected for [MASK] completions.`, "Try [MASK]", "Open Curves");
  if (pick === "Open Curves") ext.progress.show(name);
  if (pick === "Try [MASK]") await tryMask();
}

/** An untitled document (never read back into a corpus) with a [MASK] and the cursor after it: ghost text shows. */
async function tryMask(): Promise<void> {
  const doc = await vscode.workspace.openTextDocument({ content: "The [MASK] of the city is very old.\n", language: "plaintext" });
  const editor = await vscode.window.showTextDocument(doc);
  const at = doc.lineAt(0).text.indexOf("[MASK]") + "[MASK]".length;
  editor.selection = new vscode.Selection(0, at, 0, at);
  await vscode.commands.executeCommand("editor.action.inlineSuggest.trigger");
}

const TASKS: { task: P.FinetuneParams["task"]; label: string }[] = [
  { task: "classify", label: "Text classification" },
  { task: "pair", label: "Sentence-pair classification (entailment)" },
  { task: "choice", label: "Multiple choice (SWAG)" },
  { task: "qa", label: "Question answering (SQuAD)" },
  { task: "ner", label: "Named-entity recognition (CoNLL)" },
];

/**
 * The run folder for fine-tuning on `file`: `<task>-<name>` in the runs folder, with the file's folders
 * (relative to the workspace folder; outside it, its parent's name) in the name, so that two labelled files
 * of the same name get two runs.
 */
function finetuneOut(folder: vscode.WorkspaceFolder, task: string, file: string): string {
  const rel = path.relative(folder.uri.fsPath, path.dirname(file));
  const dirs = rel === "" ? [] : rel.startsWith("..") || path.isAbsolute(rel) ? [path.basename(path.dirname(file))] : rel.split(path.sep);
  return path.join(runsFolder(folder), [task, ...dirs, path.basename(file).replace(/\.[^.]*$/, "")].join("-"));
}

type FinetuneOpts = { replace?: boolean; eval?: string };

/** The evaluation examples: a file the user picks, or (the default) a seeded 10% of the training file. Undefined: cancelled. */
async function pickEvaluation(file: string): Promise<{ eval?: string } | undefined> {
  const split = Math.round(finetuneDefaults.evalSplit * 100);
  const items = [
    { label: `Hold out ${split}% of ${path.basename(file)} for evaluation`, description: "seeded: the same examples on every run", file: undefined as string | undefined },
    { label: "$(file) Choose an evaluation file…", description: "a labelled file in the same format" },
  ];
  const pick = await vscode.window.showQuickPick(items, { placeHolder: "Evaluation: how the fine-tuned model is scored" });
  if (!pick) return undefined;
  if (pick === items[0]) return {};
  const chosen = (await vscode.window.showOpenDialog({ canSelectMany: false, openLabel: "Evaluate on this file" }))?.[0]?.fsPath;
  return chosen ? { eval: chosen } : undefined;
}

/** "accuracy 81.2% on 16 held-out examples (majority class 56.3%)". */
export function describeScore(s: P.FinetuneScore): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  return `${s.metric.replace(/_/g, " ")} ${pct(s.value)} on ${s.examples} ${s.on === "held-out" ? "held-out" : "evaluation"} example${s.examples === 1 ? "" : "s"}${s.majority === undefined ? "" : ` (majority class ${pct(s.majority)})`}`;
}

async function finetuneDone(ext: Extension, r: P.JobResult): Promise<void> {
  const name = path.basename(r.out);
  if (r.stopped) {
    void vscode.window.showInformationMessage(`BERT: fine-tuning ${name} stopped at step ${r.steps}; its checkpoint is kept.`);
    return;
  }
  const s = r.score;
  const weak = s?.majority !== undefined && s.value <= s.majority;
  const text = s
    ? `BERT: ${name}: ${describeScore(s)}.${weak ? " It did not beat always answering the most frequent label: more labelled rows, more epochs (bertStudio.finetune.epochs) or a better pretrained model would help." : " It is selected for BERT: Predict."}`
    : `BERT: fine-tuning ${name} done at step ${r.steps} (no evaluation examples, so no score).`;
  const pick = await (weak ? vscode.window.showWarningMessage : vscode.window.showInformationMessage)(text, "Try It", "Open Curves");
  if (pick === "Open Curves") ext.progress.show(name);
  if (pick === "Try It") await vscode.commands.executeCommand("bertStudio.predict");
}

/**
 * `task` skips the pickers ("auto": the detected one; evaluation on a held-out share, or `opts.eval`); the
 * explorer's context menu passes the selected files there instead, which are ignored. The file's format is
 * checked before anything is asked. `opts.replace` answers the question asked when the run folder holds a
 * run (see startJob).
 */
async function finetuneOnLabeledFile(ext: Extension, uri?: vscode.Uri, taskArg?: P.FinetuneParams["task"] | vscode.Uri[], opts: FinetuneOpts = {}): Promise<P.JobResult | undefined> {
  const task = typeof taskArg === "string" ? taskArg : undefined;
  let file = uri?.fsPath ?? vscode.window.activeTextEditor?.document.uri.fsPath;
  if (!file || (!uri && vscode.window.activeTextEditor?.document.isUntitled)) {
    const picked = await vscode.window.showOpenDialog({ canSelectMany: false, openLabel: "Fine-tune on this file" });
    file = picked?.[0]?.fsPath;
  }
  if (!file) return undefined;
  await ext.ready();
  let detected: { task: string; why: string };
  try {
    detected = await ext.client.sendRequest(P.DetectTask, { file });
  } catch (e) {
    showError(e);
    return undefined;
  }
  const status = await ext.client.sendRequest(P.Status);
  if (!status.model) {
    void vscode.window.showErrorMessage("BERT: select or pretrain a language model first (the Runs view, or BERT: Pretrain on Workspace): fine-tuning starts from it.");
    return undefined;
  }
  const items = TASKS.map((t) => ({ ...t, description: t.task === detected.task ? `detected: ${detected.why}` : "" })).sort((a, b) => (a.task === detected.task ? -1 : b.task === detected.task ? 1 : 0));
  const pick = task ? { task: task === "auto" ? (detected.task as P.FinetuneParams["task"]) : task } : await vscode.window.showQuickPick(items, { placeHolder: `Task for ${path.basename(file)} (detected: ${detected.task})` });
  if (!pick) return undefined;
  const evaluation = task ? { eval: opts.eval } : await pickEvaluation(file);
  if (!evaluation) return undefined;
  const folder = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(file)) ?? vscode.workspace.workspaceFolders?.[0];
  if (!folder) {
    void vscode.window.showErrorMessage("BERT: open a folder first: fine-tuned models go to its .bert-studio/runs.");
    return undefined;
  }
  const out = finetuneOut(folder, pick.task, file);
  const params: P.FinetuneParams = {
    task: pick.task,
    train: file,
    eval: evaluation.eval,
    model: status.model,
    out,
    epochs: config.finetuneEpochs,
    batch: config.batch,
    maxLength: config.finetuneMaxLength(pick.task),
    lr: config.finetuneLr,
    schedule: config.schedule,
    device: config.device,
    resume: false,
  };
  try {
    const r = await startJob(ext, P.Finetune, params, opts.replace);
    if (r) void finetuneDone(ext, r);
    return r;
  } catch (e) {
    showError(e);
    return undefined;
  }
}

/** Replaces each [MASK] of the selection (or the current line) with the top prediction, or a chosen one. */
async function fillMaskInEditor(ext: Extension): Promise<boolean> {
  const editor = vscode.window.activeTextEditor;
  if (!editor) return false;
  const range = editor.selection.isEmpty ? editor.document.lineAt(editor.selection.active.line).range : editor.selection;
  const text = editor.document.getText(range);
  if (!text.includes("[MASK]")) {
    void vscode.window.showInformationMessage("BERT: no [MASK] in the selection or line.");
    return false;
  }
  await ext.ready();
  let result: P.FillMaskResult;
  try {
    result = await ext.client.sendRequest(P.FillMask, { text, topK: config.inlineTopK });
  } catch (e) {
    showError(e);
    return false;
  }
  if (!result.model) {
    void vscode.window.showInformationMessage("BERT: no model selected: run BERT: Pretrain on Workspace or BERT: Select Model.");
    return false;
  }
  let choices = result.masks.map((m) => m[0].token);
  if (result.masks.length === 1) {
    const pick = await vscode.window.showQuickPick(
      result.masks[0].map((m) => ({ label: m.token, description: `${(m.score * 100).toFixed(1)}%` })),
      { placeHolder: "Fill [MASK] with" },
    );
    if (!pick) return false;
    choices = [pick.label];
  }
  let i = 0;
  const filled = text.replace(/\[MASK\]/g, () => choices[i++] ?? "[MASK]");
  return editor.edit((e) => e.replace(range, filled));
}

/** Selects `dir` (a language model for [MASK], or a fine-tuned one for Predict: the server says which) and says so. */
export async function selectModelDir(ext: Extension, dir: string, quiet = false): Promise<P.SelectResult | undefined> {
  await ext.ready();
  try {
    const info = await ext.client.sendRequest(P.SelectModel, { dir });
    await ext.refreshStatus();
    if (!quiet) {
      const use = info.slot === "model" ? "[MASK] completions, Fill Mask, surprising tokens and as the base for fine-tuning" : `BERT: Predict (${info.task ?? info.architecture})`;
      void vscode.window.showInformationMessage(`BERT: ${path.basename(dir)} is selected for ${use}.`);
    }
    return info;
  } catch (e) {
    showError(e);
    return undefined;
  }
}

async function selectModel(ext: Extension): Promise<P.SelectResult | undefined> {
  await ext.ready();
  const folders = (vscode.workspace.workspaceFolders ?? []).map(runsFolder);
  const models = await ext.client.sendRequest(P.ListModels, { folders });
  const items: (vscode.QuickPickItem & { dir?: string })[] = models.map((m) => ({ label: path.relative(path.dirname(path.dirname(m.dir)), m.dir), description: m.task ? `fine-tuned (${m.task}): for Predict` : `${m.architecture}: for [MASK]`, dir: m.dir }));
  items.push({ label: "$(folder-opened) Choose a model folder…" });
  const pick = await vscode.window.showQuickPick(items, { placeHolder: "A language model for [MASK] completions, or a fine-tuned model for Predict" });
  if (!pick) return undefined;
  const dir = pick.dir ?? (await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: "Select model" }))?.[0]?.fsPath;
  return dir ? selectModelDir(ext, dir) : undefined;
}

/**
 * The BERT models of the user's Hugging Face cache, then "Choose a folder…"; without any, the folder dialog
 * at once. A cached model that cannot be imported is listed with the reason, so that a downloaded model is
 * never missing without a word. Undefined when nothing is chosen.
 */
async function pickHuggingFaceFolder(ext: Extension): Promise<{ dir: string; name: string } | undefined> {
  await ext.ready();
  const cached = await ext.client.sendRequest(P.ListCachedModels).catch((): P.CachedModel[] => []);
  const items: (vscode.QuickPickItem & { model?: P.CachedModel })[] = cached.map((m) => ({
    label: `${m.problem ? "$(warning) " : ""}${m.repo}`,
    description: [`${m.revision.slice(0, 7)}${m.refs.length ? ` (${m.refs.join(", ")})` : ""}`, m.architecture, m.problem ? "cannot be imported" : ""].filter(Boolean).join(" · "),
    detail: m.problem,
    model: m,
  }));
  const choose: (typeof items)[number] = { label: "$(folder-opened) Choose a folder…" };
  const pick = items.length ? await vscode.window.showQuickPick([...items, choose], { placeHolder: "BERT model from your Hugging Face cache, or a folder", matchOnDescription: true }) : choose;
  if (!pick) return undefined;
  const m = pick.model;
  if (m?.problem) {
    void vscode.window.showErrorMessage(`BERT: ${m.repo} cannot be imported: ${m.problem}. Download its model.safetensors, where the Hub has one (hf download ${m.repo} model.safetensors), and import it again.`);
    return undefined;
  }
  // A snapshot's folder is named after its revision: the copy is named after the repository.
  if (m) return { dir: m.dir, name: path.basename(m.repo) };
  const dir = (await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: "Import Hugging Face model folder" }))?.[0]?.fsPath;
  return dir ? { dir, name: path.basename(dir) } : undefined;
}

/** `dir` (for scripts and tests) skips the picker. */
async function importHuggingFaceModel(ext: Extension, dir?: string): Promise<P.ModelInfo | undefined> {
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!folder) {
    void vscode.window.showErrorMessage("BERT: open a folder first: imported models go to its .bert-studio/runs.");
    return undefined;
  }
  const source = dir ? { dir, name: path.basename(dir) } : await pickHuggingFaceFolder(ext);
  if (!source) return undefined;
  await ext.ready();
  try {
    const info = await ext.client.sendRequest(P.ImportModel, { dir: source.dir, dest: path.join(runsFolder(folder), `imported-${source.name}`) });
    await ext.client.sendRequest(P.SelectModel, { dir: info.dir });
    await ext.refreshStatus();
    void vscode.window.showInformationMessage(`BERT: imported ${info.architecture} into ${info.dir} and selected it.`);
    return info;
  } catch (e) {
    showError(e);
    return undefined;
  }
}

/**
 * Exports `model` (default: the selected language model); `format`, `dest` and `data` (a trainer folder's
 * corpus or labelled file) skip the questions (scripts, tests).
 */
async function exportModel(ext: Extension, format?: P.ExportParams["format"], dest?: string, model?: string, data?: string): Promise<string[] | undefined> {
  await ext.ready();
  model ??= (await ext.client.sendRequest(P.Status)).model;
  if (!model) {
    void vscode.window.showErrorMessage("BERT: no model to export: select one in the Runs view (or BERT: Select Model).");
    return undefined;
  }
  const name = path.basename(model);
  format ??= (
    await vscode.window.showQuickPick(
      [
        { label: "hf", description: "Hugging Face folder (config.json, model.safetensors, vocab): from_pretrained loads it" },
        { label: "onnx", description: "ONNX inference graph with the weights, plus the tokenizer" },
        { label: "trainer", description: "continue this run in PyTorch (one GPU, several, a cluster): the model, its data, train.py for Hugging Face's Trainer" },
      ],
      { placeHolder: `Export ${name} as` },
    )
  )?.label as P.ExportParams["format"] | undefined;
  if (!format) return undefined;
  // Next to the workspace, not in it: an export is for use elsewhere, and the workspace is pretrained on.
  const folder = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(model)) ?? vscode.workspace.workspaceFolders?.[0];
  const beside = folder ? vscode.Uri.joinPath(folder.uri, "..") : undefined;
  let corpus: string | undefined;
  let taskData: string | undefined;
  if (format === "trainer") {
    const fineTuned = (await ext.modelInfo(model))?.task;
    if (fineTuned) {
      taskData = data ?? (await vscode.window.showOpenDialog({ canSelectFiles: true, canSelectFolders: false, canSelectMany: false, title: `The labelled file ${name} was fine-tuned on: its rows become the trainer folder's data`, openLabel: "Use its rows", defaultUri: folder?.uri }))?.[0]?.fsPath;
      if (!taskData) return undefined;
    } else {
      corpus = data ?? folder?.uri.fsPath; // a pretraining run's corpus is the workspace folder, read as Pretrain reads it
    }
    // A trainer folder is a new folder: the save dialog names one.
    dest ??= (await vscode.window.showSaveDialog({ title: `Export ${name} for PyTorch's Trainer into a new folder`, saveLabel: "Export here", defaultUri: beside ? vscode.Uri.joinPath(beside, `${name}-trainer`) : undefined }))?.fsPath;
  } else {
    dest ??= (await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, title: `Export ${name} (${format === "hf" ? "Hugging Face folder" : "ONNX"}) into an empty folder`, openLabel: `Export ${name} here`, defaultUri: beside }))?.[0]?.fsPath;
  }
  if (!dest) return undefined;
  const target = dest;
  try {
    const { files, notes } = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `BERT: exporting ${name} (${format})` }, () =>
      ext.client.sendRequest(P.ExportModel, { model: model!, format: format!, dest: target, corpus, taskData }),
    );
    const said = notes.length ? ` ${notes.join(" ")}` : "";
    // The message's buttons are answered later (or never): the command returns what it wrote now.
    const reveal = () => vscode.commands.executeCommand("revealFileInOS", vscode.Uri.file(target));
    if (format === "trainer") {
      void vscode.window.showInformationMessage(`BERT: wrote a trainer folder for ${name} into ${target}: run python train.py there, or torchrun --nproc_per_node N train.py; its README says how to bring the result back.${said}`, "Open README", "Reveal").then((pick) => {
        if (pick === "Open README") void vscode.window.showTextDocument(vscode.Uri.file(path.join(target, "README.md")));
        if (pick === "Reveal") void reveal();
      });
      return files;
    }
    void vscode.window.showInformationMessage(`BERT: exported ${name} (${format}, ${files.length} files) to ${target}.${said}`, "Reveal").then((pick) => void (pick === "Reveal" && reveal()));
    return files;
  } catch (e) {
    showError(e);
    return undefined;
  }
}

/**
 * Stops one job after its current step (a checkpoint is kept): `which` is a job id (StatusResult's) or
 * "all"; without it, the only running job, or the one picked when several run. The number stopped.
 */
async function stopTraining(ext: Extension, which?: unknown): Promise<number> {
  await ext.ready();
  let target = typeof which === "string" ? which : undefined; // a menu or keybinding may pass other things
  if (!target) {
    const { jobs } = await ext.client.sendRequest(P.Status);
    if (jobs.length <= 1) target = jobs[0]?.id;
    else {
      const items = [...jobs.map((j) => ({ label: path.basename(j.out), description: `${j.kind}, step ${j.step}${j.steps ? `/${j.steps}` : ""}`, id: j.id })), { label: "All jobs", description: `${jobs.length} jobs`, id: "all" }];
      const pick = await vscode.window.showQuickPick(items, { placeHolder: "Job to stop (after its current step, keeping a checkpoint)" });
      if (!pick) return 0;
      target = pick.id;
    }
  }
  const n = !target ? 0 : target === "all" ? await ext.client.sendRequest(P.Cancel) : (await ext.client.sendRequest(P.StopJob, { job: target })) ? 1 : 0;
  void vscode.window.showInformationMessage(n ? `BERT: stopping ${n > 1 ? `${n} jobs` : "the job"} after the current step; a checkpoint is kept.` : "BERT: no job is running.");
  return n;
}

export function registerCommands(ext: Extension): void {
  const reg = (id: string, fn: (...args: never[]) => unknown) => ext.context.subscriptions.push(vscode.commands.registerCommand(id, fn));
  reg("bertStudio.pretrain", (opts?: PretrainOpts) => pretrainOnWorkspace(ext, opts));
  reg("bertStudio.finetune", (uri?: vscode.Uri, task?: P.FinetuneParams["task"] | vscode.Uri[], opts?: FinetuneOpts) => finetuneOnLabeledFile(ext, uri, task, opts));
  reg("bertStudio.fillMask", () => fillMaskInEditor(ext));
  reg("bertStudio.tryMask", () => tryMask());
  reg("bertStudio.showProgress", () => ext.progress.show());
  reg("bertStudio.stop", (which?: unknown) => stopTraining(ext, which));
  reg("bertStudio.selectModel", () => selectModel(ext));
  reg("bertStudio.importModel", (dir?: string) => importHuggingFaceModel(ext, dir));
  reg("bertStudio.exportModel", (format?: P.ExportParams["format"], dest?: string, model?: string, data?: string) => exportModel(ext, format, dest, model, data));
  // For tests and scripts: the server's status, and model selection without a picker.
  reg("bertStudio.status", async () => {
    await ext.ready();
    return ext.client.sendRequest(P.Status);
  });
  reg("bertStudio.progressDrawn", () => ext.progress.drawn);
  reg("bertStudio.selectModelFolder", (dir: string, quiet = true) => selectModelDir(ext, dir, quiet));
  // For tests: one raw request to the server (its answer, or its error), to check what the server itself allows.
  reg("bertStudio.request", async (method: string, params: unknown) => {
    await ext.ready();
    return ext.client.sendRequest(method, params);
  });
}
