// The extension's state, owned in one place: the language client and its start, the output channel, the
// status bar (drawn only by status-bar.ts, from the server's state and its metrics notifications), the
// progress webview and the selected models, which are kept in the workspace state so that a window reload
// (or a restarted server) selects them again. Commands, views and inline completions receive it; they do
// not import each other.
import * as path from "node:path";
import * as vscode from "vscode";
import { LanguageClient, State, TransportKind, type LanguageClientOptions, type ServerOptions } from "vscode-languageclient/node";
import { mallocEnv } from "../common/malloc.js";
import * as P from "../common/protocol.js";
import { SECTION } from "../common/settings.js";
import { config } from "./config.js";
import { ProgressView } from "./progress-view.js";
import { StatusBar } from "./status-bar.js";

export interface Extension {
  client: LanguageClient;
  output: vscode.LogOutputChannel;
  status: StatusBar;
  /** Redraws the status bar from the server's state (after a job ends or the model changes). */
  refreshStatus(): Promise<void>;
  context: vscode.ExtensionContext;
  progress: ProgressView;
  /** Resolves once the server answers requests. */
  ready(): Promise<void>;
  /** Every metrics notification (a job's row). */
  onMetrics: vscode.Event<P.MetricsEvent>;
  /** After the server's state was read again (a job ended, a model was selected, the server restarted). */
  onStatus: vscode.Event<P.StatusResult>;
  /** What the server says of the model folder `dir` (architecture, task); undefined when it lists none there. */
  modelInfo(dir: string): Promise<P.ModelInfo | undefined>;
}

/** The workspace-state key of the selected models. */
const SELECTION = "bertStudio.selection";
type Selection = Pick<P.StatusResult, "model" | "taskModel">;

/** Creates the client (not started), the status bar and the progress view, wired to the server's notifications. */
export function createExtension(context: vscode.ExtensionContext): Extension {
  const output = vscode.window.createOutputChannel("BERT Studio", { log: true });
  const module = context.asAbsolutePath(path.join("dist", "server.js"));
  const env = mallocEnv(process.env, "resident") ?? process.env;
  const serverOptions: ServerOptions = {
    run: { module, transport: TransportKind.ipc, options: { env } },
    debug: { module, transport: TransportKind.ipc, options: { env, execArgv: ["--nolazy", "--inspect=6011"] } },
  };
  const clientOptions: LanguageClientOptions = { outputChannel: output, documentSelector: [] };
  const client = new LanguageClient("bertStudio", "BERT Studio", serverOptions, clientOptions);
  const status = new StatusBar();
  let started: Promise<void> | undefined;
  const ready = () => {
    if (client.state === State.Running) return Promise.resolve();
    // Limited support in untrusted workspaces: the server (which reads files and runs models) stays off.
    if (!vscode.workspace.isTrusted) return Promise.reject(new Error("BERT Studio needs a trusted workspace to start its server"));
    started ??= client.start().finally(() => (started = undefined));
    return started;
  };
  const progress = new ProgressView(context);
  const metrics = new vscode.EventEmitter<P.MetricsEvent>();
  const statusRead = new vscode.EventEmitter<P.StatusResult>();
  // Until a started server was given the kept selection, its empty one must not overwrite it.
  let restored: Promise<void> | undefined;
  const refreshStatus = async () => {
    if (client.state !== State.Running) return;
    await restored;
    const s = await client.sendRequest(P.Status).catch(() => undefined);
    if (!s) return;
    status.sync(s);
    // For the menus' and the palette's `when` clauses.
    void vscode.commands.executeCommand("setContext", "bertStudio.hasModel", !!s.model);
    void vscode.commands.executeCommand("setContext", "bertStudio.hasTaskModel", !!s.taskModel);
    void vscode.commands.executeCommand("setContext", "bertStudio.training", s.jobs.length > 0);
    await context.workspaceState.update(SELECTION, { model: s.model, taskModel: s.taskModel } satisfies Selection);
    statusRead.fire(s);
  };
  /** Tells the server the inference settings (bertStudio.int8); a refusal is a line in the log. */
  const sendInference = () => client.sendRequest(P.SetInference, { int8: config.int8 }).catch((e: Error) => output.appendLine(`bertStudio.int8 was not applied: ${e.message}`));
  /** Selects the kept models in a server that has just started; one that is gone is dropped with a line in the log. */
  const restoreSelection = async () => {
    await sendInference();
    const kept = context.workspaceState.get<Selection>(SELECTION);
    for (const dir of [kept?.model, kept?.taskModel]) {
      if (!dir) continue;
      await client.sendRequest(P.SelectModel, { dir }).catch((e: Error) => output.appendLine(`the model selected before (${dir}) cannot be selected again: ${e.message}`));
    }
  };
  const modelInfo = async (dir: string) => {
    await ready();
    // ListModels reads the models of a folder: `dir` is among its parent's.
    const models = await client.sendRequest(P.ListModels, { folders: [path.dirname(dir)] }).catch((): P.ModelInfo[] => []);
    return models.find((m) => path.resolve(m.dir) === path.resolve(dir));
  };
  const ext: Extension = { client, output, status, refreshStatus, context, progress, ready, onMetrics: metrics.event, onStatus: statusRead.event, modelInfo };
  client.onNotification(P.Message, ({ text }) => output.appendLine(text));
  client.onNotification(P.Metrics, (e) => {
    progress.add(e);
    status.metrics(e);
    void vscode.commands.executeCommand("setContext", "bertStudio.training", true);
    metrics.fire(e);
  });
  context.subscriptions.push(output, status, client, progress.register(), metrics, statusRead);
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration(`${SECTION}.int8`) || client.state !== State.Running) return;
      void sendInference();
    }),
  );
  // A (re)started server has no jobs and no selection: it gets the kept one, then the item shows it.
  context.subscriptions.push(
    client.onDidChangeState((e) => {
      if (e.newState !== State.Running) return;
      restored = restoreSelection();
      void restored.then(refreshStatus);
    }),
  );
  return ext;
}
