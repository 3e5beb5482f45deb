// The extension host side, kept thin (as the lsp-sample's activate): it creates the extension's state
// (context.ts: the language client for the BERT server, server/main.ts over IPC; the status bar; the
// progress webview; the kept model selection), registers the palette commands, the Runs view, the inline
// [MASK] completions, hovers and code actions, Predict and the surprising-tokens view, and starts the
// server. Model work never runs here.
import * as vscode from "vscode";
import { registerCommands } from "./commands.js";
import { createExtension, type Extension } from "./context.js";
import { registerInline } from "./inline.js";
import { registerPredict } from "./predict.js";
import { registerRunsView } from "./runs-view.js";
import { registerSurprise } from "./surprise.js";

let ext: Extension | undefined;

export function activate(context: vscode.ExtensionContext): Extension {
  ext = createExtension(context);
  registerCommands(ext);
  registerInline(ext);
  registerRunsView(ext);
  registerPredict(ext);
  registerSurprise(ext);
  const { ready, output } = ext;
  context.subscriptions.push(vscode.workspace.onDidGrantWorkspaceTrust(() => void ready().catch(() => undefined)));
  // The server starts in the background: activation returns at once.
  if (vscode.workspace.isTrusted) void ready().catch((e: Error) => output.appendLine(`the BERT server did not start: ${e.message}`));
  return ext;
}

export async function deactivate(): Promise<void> {
  await ext?.client.stop().catch(() => undefined);
}
