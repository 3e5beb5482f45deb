// The palette commands (category "BERT"). Each asks what it needs, sends one request to the server and
// reports the outcome; a failure is one notification with the server's message.
import * as path from "node:path";
import * as vscode from "vscode";
import { State } from "vscode-languageclient/node";
import * as P from "../server/protocol.js";
import type { Extension } from "./extension.js";

const RUNS = path.join(".bert-studio", "runs");

function setting<T>(key: string, fallback: T): T {
  return vscode.workspace.getConfiguration("bertStudio").get<T>(key, fallback);
}

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
async function runJob<T extends { resume: boolean }>(ext: Extension, type: typeof P.Pretrain | typeof P.Finetune, params: T, token?: vscode.CancellationToken): Promise<P.JobResult | undefined> {
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

/** With `opts.preset`, no picker is shown (for keybindings, scripts and tests). */
async function pretrainCommand(ext: Extension, opts: { preset?: string; resume?: boolean } = {}): Promise<P.JobResult | undefined> {
  const folder = await pickFolder();
  if (!folder) return undefined;
  const presets = ["tiny", "small", "base"].map((p) => ({ label: p, description: p === setting("preset", "tiny") ? "(setting)" : "" }));
  const outOf = (preset: string) => path.join(runsFolder(folder), `pretrain-${preset}`);
  const items: (vscode.QuickPickItem & { preset: string; resume: boolean })[] = [];
  for (const p of presets) {
    const hasRun = await vscode.workspace.fs.stat(vscode.Uri.file(path.join(outOf(p.label), "trainer_state.json"))).then(() => true, () => false);
    if (hasRun) items.push({ label: `$(debug-continue) Resume ${p.label}`, description: outOf(p.label), preset: p.label, resume: true });
    items.push({ label: p.label, description: hasRun ? "start again (the old run is replaced)" : p.description, preset: p.label, resume: false });
  }
  const pick = opts.preset ? { preset: opts.preset, resume: !!opts.resume } : await vscode.window.showQuickPick(items, { placeHolder: "BERT preset to pretrain on this workspace" });
  if (!pick) return undefined;
  const out = outOf(pick.preset);
  if (!pick.resume) await vscode.workspace.fs.delete(vscode.Uri.file(out), { recursive: true, useTrash: false }).then(undefined, () => undefined);
  const vocab = setting<string>("vocab", "");
  const params: P.PretrainParams = {
    folder: folder.uri.fsPath,
    out,
    preset: pick.preset as P.PretrainParams["preset"],
    steps: setting("steps", 1000),
    batch: setting("batch", 32),
    seq: setting("seq", 128),
    lr: setting("lr", 1e-3),
    schedule: setting("schedule", "linear"),
    device: setting("device", "cpu"),
    vocab: vocab || undefined,
    trainVocab: setting("vocabSize", 8000),
    include: setting<string[]>("include", []),
    exclude: setting<string[]>("exclude", []),
    maxFileMb: setting("maxFileMb", 50),
    resume: pick.resume,
  };
  ext.progress.show();
  try {
    const r = await runJob(ext, P.Pretrain, params);
    if (!r) return undefined;
    ext.status.text = `$(symbol-misc) BERT: ${path.basename(r.out)}`;
    ext.status.tooltip = `BERT Studio model: ${r.out}`;
    void vscode.window.showInformationMessage(`BERT: pretraining ${r.stopped ? "stopped (checkpoint kept)" : "done"} at step ${r.steps}; the model is selected for [MASK] completions.`);
    return r;
  } catch (e) {
    ext.status.text = "$(symbol-misc) BERT";
    showError(e);
    return undefined;
  }
}

const TASKS: { task: P.FinetuneParams["task"]; label: string }[] = [
  { task: "classify", label: "Text classification" },
  { task: "pair", label: "Sentence-pair classification (entailment)" },
  { task: "choice", label: "Multiple choice (SWAG)" },
  { task: "qa", label: "Question answering (SQuAD)" },
  { task: "ner", label: "Named-entity recognition (CoNLL)" },
];

async function finetuneCommand(ext: Extension, uri?: vscode.Uri, task?: P.FinetuneParams["task"]): Promise<P.JobResult | undefined> {
  let file = uri?.fsPath ?? vscode.window.activeTextEditor?.document.uri.fsPath;
  if (!file || vscode.window.activeTextEditor?.document.isUntitled) {
    const picked = await vscode.window.showOpenDialog({ canSelectMany: false, openLabel: "Fine-tune on this file" });
    file = picked?.[0]?.fsPath;
  }
  if (!file) return undefined;
  await ext.ready();
  const status = await ext.client.sendRequest(P.Status);
  if (!status.model) {
    void vscode.window.showErrorMessage("BERT: select or pretrain a model first (BERT: Select Model, BERT: Pretrain on Workspace).");
    return undefined;
  }
  let detected: { task: string; why: string };
  try {
    detected = await ext.client.sendRequest(P.DetectTask, { file });
  } catch (e) {
    showError(e);
    return undefined;
  }
  const items = TASKS.map((t) => ({ ...t, description: t.task === detected.task ? `detected: ${detected.why}` : "" })).sort((a, b) => (a.task === detected.task ? -1 : b.task === detected.task ? 1 : 0));
  const pick = task ? { task: task === "auto" ? (detected.task as P.FinetuneParams["task"]) : task } : await vscode.window.showQuickPick(items, { placeHolder: `Task for ${path.basename(file)} (detected: ${detected.task})` });
  if (!pick) return undefined;
  const folder = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(file)) ?? vscode.workspace.workspaceFolders?.[0];
  const out = path.join(folder ? runsFolder(folder) : path.dirname(file), `${pick.task}-${path.basename(file).replace(/\.[^.]*$/, "")}`);
  const params: P.FinetuneParams = {
    task: pick.task,
    train: file,
    model: status.model,
    out,
    epochs: setting("finetune.epochs", 3),
    batch: setting("batch", 32),
    maxLength: setting("finetune.maxLength", pick.task === "qa" ? 384 : 128),
    lr: setting("finetune.lr", 5e-5),
    schedule: setting("schedule", "linear"),
    device: setting("device", "cpu"),
    resume: false,
  };
  await vscode.workspace.fs.delete(vscode.Uri.file(out), { recursive: true, useTrash: false }).then(undefined, () => undefined);
  ext.progress.show();
  try {
    const r = await runJob(ext, P.Finetune, params);
    if (r) void vscode.window.showInformationMessage(`BERT: fine-tuning ${r.stopped ? "stopped (checkpoint kept)" : "done"}: ${r.out}`);
    return r;
  } catch (e) {
    showError(e);
    return undefined;
  }
}

/** Replaces each [MASK] of the selection (or the current line) with the top prediction, or a chosen one. */
async function fillMaskCommand(ext: Extension): Promise<boolean> {
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
    result = await ext.client.sendRequest(P.FillMask, { text, topK: setting("inline.topK", 5) });
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

async function selectModelCommand(ext: Extension): Promise<P.ModelInfo | undefined> {
  await ext.ready();
  const folders = (vscode.workspace.workspaceFolders ?? []).map(runsFolder);
  const models = await ext.client.sendRequest(P.ListModels, { folders });
  const items: (vscode.QuickPickItem & { dir?: string })[] = models.map((m) => ({ label: path.relative(path.dirname(path.dirname(m.dir)), m.dir), description: m.task ?? m.architecture, dir: m.dir }));
  items.push({ label: "$(folder-opened) Choose a model folder…" });
  const pick = await vscode.window.showQuickPick(items, { placeHolder: "Model for [MASK] completions and fine-tuning" });
  if (!pick) return undefined;
  const dir = pick.dir ?? (await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: "Select model" }))?.[0]?.fsPath;
  if (!dir) return undefined;
  try {
    const info = await ext.client.sendRequest(P.SelectModel, { dir });
    ext.status.text = `$(symbol-misc) BERT: ${path.basename(dir)}`;
    ext.status.tooltip = `BERT Studio model: ${dir}`;
    return info;
  } catch (e) {
    showError(e);
    return undefined;
  }
}

async function importCommand(ext: Extension, dir?: string): Promise<P.ModelInfo | undefined> {
  const folder = vscode.workspace.workspaceFolders?.[0];
  dir ??= (await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: "Import Hugging Face model folder" }))?.[0]?.fsPath;
  if (!dir || !folder) {
    if (!folder) void vscode.window.showErrorMessage("BERT: open a folder first: imported models go to its .bert-studio/runs.");
    return undefined;
  }
  await ext.ready();
  try {
    const info = await ext.client.sendRequest(P.ImportModel, { dir, dest: path.join(runsFolder(folder), `imported-${path.basename(dir)}`) });
    await ext.client.sendRequest(P.SelectModel, { dir: info.dir });
    void vscode.window.showInformationMessage(`BERT: imported ${info.architecture} into ${info.dir} and selected it.`);
    return info;
  } catch (e) {
    showError(e);
    return undefined;
  }
}

async function exportCommand(ext: Extension, format?: "onnx" | "hf", dest?: string): Promise<string[] | undefined> {
  await ext.ready();
  const status = await ext.client.sendRequest(P.Status);
  if (!status.model) {
    void vscode.window.showErrorMessage("BERT: no model selected to export.");
    return undefined;
  }
  format ??= (await vscode.window.showQuickPick([{ label: "onnx", description: "ONNX inference graph with the weights, plus tokenizer" }, { label: "hf", description: "Hugging Face folder (config.json, model.safetensors, vocab)" }], { placeHolder: "Export format" }))?.label as "onnx" | "hf" | undefined;
  dest ??= (await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: "Export here" }))?.[0]?.fsPath;
  if (!format || !dest) return undefined;
  try {
    const { files } = await ext.client.sendRequest(P.ExportModel, { model: status.model, format, dest });
    void vscode.window.showInformationMessage(`BERT: exported ${files.length} files to ${dest}.`);
    return files;
  } catch (e) {
    showError(e);
    return undefined;
  }
}

export function registerCommands(ext: Extension): void {
  const reg = (id: string, fn: (...args: never[]) => unknown) => ext.context.subscriptions.push(vscode.commands.registerCommand(id, fn));
  reg("bertStudio.pretrain", (opts?: { preset?: string; resume?: boolean }) => pretrainCommand(ext, opts));
  reg("bertStudio.finetune", (uri?: vscode.Uri, task?: P.FinetuneParams["task"]) => finetuneCommand(ext, uri, task));
  reg("bertStudio.fillMask", () => fillMaskCommand(ext));
  reg("bertStudio.showProgress", () => ext.progress.show());
  reg("bertStudio.stop", async () => {
    await ext.ready();
    const n = await ext.client.sendRequest(P.Cancel);
    void vscode.window.showInformationMessage(n ? "BERT: stopping after the current step; a checkpoint is kept." : "BERT: no job is running.");
    return n;
  });
  reg("bertStudio.selectModel", () => selectModelCommand(ext));
  reg("bertStudio.importModel", (dir?: string) => importCommand(ext, dir));
  reg("bertStudio.exportModel", (format?: "onnx" | "hf", dest?: string) => exportCommand(ext, format, dest));
  // For tests and scripts: the server's status, and model selection without a picker.
  reg("bertStudio.status", async () => {
    await ext.ready();
    return ext.client.sendRequest(P.Status);
  });
  reg("bertStudio.selectModelFolder", async (dir: string) => {
    await ext.ready();
    return ext.client.sendRequest(P.SelectModel, { dir });
  });
}
