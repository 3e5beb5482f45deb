// The Runs view (BERT Studio's view container): every run and model of the workspace's .bert-studio/runs,
// as the server reads them (bert/listRuns): kind, state, step/total, best score, date; the selected models
// are marked. Its actions (inline and in the context menu, by `viewItem`): Select, Resume, Stop, Open
// Curves, Export, Reveal, Delete (to the trash, after a modal question). It redraws when a job logs a row
// (at most once a second), when the server's state is read again, and when a run folder's state files change.
import * as path from "node:path";
import * as vscode from "vscode";
import * as P from "../common/protocol.js";
import type { Extension } from "./context.js";

export const RUNS_VIEW = "bertStudio.runs";

const ICONS: Record<P.RunState, vscode.ThemeIcon> = {
  training: new vscode.ThemeIcon("sync~spin", new vscode.ThemeColor("charts.blue")),
  done: new vscode.ThemeIcon("pass", new vscode.ThemeColor("testing.iconPassed")),
  stopped: new vscode.ThemeIcon("debug-pause"),
  failed: new vscode.ThemeIcon("error", new vscode.ThemeColor("testing.iconFailed")),
  diverged: new vscode.ThemeIcon("warning", new vscode.ThemeColor("problemsWarningIcon.foreground")),
  model: new vscode.ThemeIcon("package"),
};

/** "81.2% accuracy", "34.0% masked-token accuracy". */
function describeBest(b: NonNullable<P.RunInfo["best"]>): string {
  const name = b.metric === "mlm_accuracy" ? "masked-token accuracy" : b.metric.replace(/^eval_/, "").replace(/_/g, " ");
  return `${(b.value * 100).toFixed(1)}% ${name}`;
}

/** The line beside a run's name: state, step/total, best score, date. */
export function describeRun(r: P.RunInfo, selected: Pick<P.StatusResult, "model" | "taskModel">): string {
  const n = (x: number) => x.toLocaleString("en-US");
  const step = r.step === undefined ? "" : `step ${n(r.step)}${r.steps ? `/${n(r.steps)}` : ""}`;
  const mark = path.resolve(r.dir) === path.resolve(selected.model ?? "") || path.resolve(r.dir) === path.resolve(selected.taskModel ?? "") ? "★ selected" : "";
  const date = new Date(r.modified).toLocaleString("en-US", { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  return [mark, r.state === "model" ? r.architecture : r.state, step, r.best ? describeBest(r.best) : "", date].filter(Boolean).join(" · ");
}

class RunItem extends vscode.TreeItem {
  constructor(
    readonly run: P.RunInfo,
    selected: Pick<P.StatusResult, "model" | "taskModel">,
  ) {
    super(run.name, vscode.TreeItemCollapsibleState.None);
    this.id = run.dir;
    this.description = describeRun(run, selected);
    this.iconPath = ICONS[run.state];
    this.resourceUri = vscode.Uri.file(run.dir);
    const what = run.kind === "finetune" ? `fine-tuned (${run.task ?? run.architecture})` : run.kind === "pretrain" ? `pretraining (${run.architecture})` : `model (${run.architecture})`;
    this.tooltip = new vscode.MarkdownString([`**${run.name}**: ${what}`, `${this.description}`, run.message ? `\n${run.message}` : "", `\n\`${run.dir}\``].filter(Boolean).join("\n\n"));
    // viewItem: run.<kind>.<state>, for the menus' when clauses.
    this.contextValue = `run.${run.kind}.${run.state}`;
    this.command = { command: "bertStudio.runs.openCurves", title: "Open Curves", arguments: [this] };
  }
}

export class RunsView implements vscode.TreeDataProvider<RunItem>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly subs: vscode.Disposable[] = [];
  private selected: Pick<P.StatusResult, "model" | "taskModel"> = { model: undefined, taskModel: undefined };
  private timer: NodeJS.Timeout | undefined;
  /** The runs as last listed (for tests and the commands). */
  runs: P.RunInfo[] = [];

  constructor(private readonly ext: Extension) {
    this.subs.push(
      ext.onMetrics(() => this.refreshSoon()),
      ext.onStatus((s) => {
        this.selected = s;
        this.refresh();
      }),
    );
    const watcher = vscode.workspace.createFileSystemWatcher("**/.bert-studio/runs/*/{outcome.json,trainer_state.json,config.json}");
    this.subs.push(watcher, watcher.onDidCreate(() => this.refreshSoon()), watcher.onDidChange(() => this.refreshSoon()), watcher.onDidDelete(() => this.refreshSoon()));
  }

  refresh(): void {
    this.changed.fire();
  }

  /** Redraws within a second, once however many rows arrive. */
  private refreshSoon(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.refresh();
    }, 1000);
  }

  getTreeItem(item: RunItem): vscode.TreeItem {
    return item;
  }

  async getChildren(): Promise<RunItem[]> {
    const folders = (vscode.workspace.workspaceFolders ?? []).map((f) => path.join(f.uri.fsPath, ".bert-studio", "runs"));
    if (folders.length === 0) return [];
    try {
      await this.ext.ready();
      this.runs = await this.ext.client.sendRequest(P.ListRuns, { folders });
    } catch (e) {
      this.ext.output.appendLine(`the Runs view could not list the runs: ${(e as Error).message}`);
      this.runs = [];
    }
    return this.runs.map((r) => new RunItem(r, this.selected));
  }

  dispose(): void {
    clearTimeout(this.timer);
    for (const s of this.subs) s.dispose();
    this.changed.dispose();
  }
}

/** A command's run: the tree item it was invoked on, or a run folder path (scripts, tests). */
function runOf(view: RunsView, arg: unknown): P.RunInfo | undefined {
  if (arg instanceof RunItem) return arg.run;
  if (typeof arg === "string") return view.runs.find((r) => path.resolve(r.dir) === path.resolve(arg)) ?? undefined;
  return undefined;
}

async function deleteRun(ext: Extension, view: RunsView, run: P.RunInfo, confirmed: boolean): Promise<boolean> {
  if (!confirmed) {
    const what = run.step === undefined ? "a model" : `a ${run.kind === "finetune" ? "fine-tuning" : "pretraining"} run at step ${run.step}`;
    const ok = await vscode.window.showWarningMessage(`Move ${run.name} to the trash?`, { modal: true, detail: `${run.dir} holds ${what}. It goes to the trash, from where it can be restored.` }, "Move to Trash");
    if (ok !== "Move to Trash") return false;
  }
  try {
    const { trashedTo } = await ext.client.sendRequest(P.DeleteRun, { dir: run.dir });
    void vscode.window.showInformationMessage(`BERT: ${run.name} moved to ${trashedTo}.`);
    return true;
  } catch (e) {
    void vscode.window.showErrorMessage(`BERT: ${(e as Error).message}`);
    return false;
  } finally {
    await ext.refreshStatus();
    view.refresh();
  }
}

/** The Runs view and its commands (`bertStudio.runs.*`; each takes a tree item or a run folder path). */
export function registerRunsView(ext: Extension): RunsView {
  const view = new RunsView(ext);
  const tree = vscode.window.createTreeView(RUNS_VIEW, { treeDataProvider: view, showCollapseAll: false });
  const reg = (id: string, fn: (run: P.RunInfo, ...rest: never[]) => unknown) =>
    vscode.commands.registerCommand(`bertStudio.runs.${id}`, async (arg: unknown, ...rest: never[]) => {
      if (view.runs.length === 0) await view.getChildren();
      const run = runOf(view, arg);
      if (!run) return void vscode.window.showErrorMessage("BERT: choose a run in the Runs view.");
      return fn(run, ...rest);
    });
  ext.context.subscriptions.push(
    view,
    tree,
    vscode.commands.registerCommand("bertStudio.runs.refresh", () => view.refresh()),
    reg("select", (r) => vscode.commands.executeCommand("bertStudio.selectModelFolder", r.dir, false)),
    reg("resume", (r) => vscode.commands.executeCommand("bertStudio.pretrain", { run: r.dir })),
    reg("stop", (r) => (r.job ? vscode.commands.executeCommand("bertStudio.stop", r.job) : vscode.window.showInformationMessage(`BERT: no job of this window trains ${r.name}.`))),
    reg("openCurves", (r) => ext.progress.show(r.name)),
    reg("export", (r) => vscode.commands.executeCommand("bertStudio.exportModel", undefined, undefined, r.dir)),
    reg("reveal", (r) => vscode.commands.executeCommand("revealFileInOS", vscode.Uri.file(r.dir))),
    // `confirmed` (scripts, tests) skips the modal question.
    reg("delete", (r, confirmed?: boolean) => deleteRun(ext, view, r, confirmed === true)),
  );
  return view;
}
