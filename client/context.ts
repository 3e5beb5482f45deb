// The extension's state, owned in one place: the language client and its start, the output channel, the
// status bar (drawn only by status-bar.ts, from the server's state and its metrics notifications) and the
// progress webview. Commands and inline completions receive it; they do not import each other.
import * as path from "node:path";
import * as vscode from "vscode";
import { LanguageClient, State, TransportKind, type LanguageClientOptions, type ServerOptions } from "vscode-languageclient/node";
import { mallocEnv } from "../common/malloc.js";
import * as P from "../common/protocol.js";
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
}

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
  const refreshStatus = async () => {
    if (client.state !== State.Running) return;
    const s = await client.sendRequest(P.Status).catch(() => undefined);
    if (s) status.sync(s);
  };
  const ext: Extension = { client, output, status, refreshStatus, context, progress, ready };
  client.onNotification(P.Message, ({ text }) => output.appendLine(text));
  client.onNotification(P.Metrics, (e) => {
    progress.add(e);
    status.metrics(e);
  });
  context.subscriptions.push(output, status, client, progress.register());
  // A (re)started server has no jobs: the item shows its model.
  context.subscriptions.push(client.onDidChangeState((e) => void (e.newState === State.Running && refreshStatus())));
  return ext;
}
