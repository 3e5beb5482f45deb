// [MASK] in the editor: with the cursor at or right after a [MASK], ghost text offers the top prediction
// (Tab accepts, the alternatives cycle); a hover on [MASK] lists the top-k with probabilities. Requests
// are debounced and dropped when typing goes on; with no model selected there is simply no suggestion.
//
// VS Code shows ghost text only for insertions at the cursor (a replacement of "[MASK]" is not shown), so
// the prediction is offered as an insertion next to the [MASK], and accepting it runs a command that
// removes that [MASK] in the same undo step.
import * as vscode from "vscode";
import { State } from "vscode-languageclient/node";
import * as P from "../common/protocol.js";
import { config } from "./config.js";
import type { Extension } from "./context.js";

const MASK = "[MASK]";
const REMOVE_MASK = "bertStudio.removeMaskAfterCompletion";
const DEBOUNCE_MS = 60;

/** The [MASK] of `line` at or right before `character`, and its index among the line's masks. */
export function maskAt(line: string, character: number): { start: number; index: number } | undefined {
  let index = 0;
  for (let i = line.indexOf(MASK); i >= 0; i = line.indexOf(MASK, i + 1), index++) {
    if (character >= i && character <= i + MASK.length) return { start: i, index };
  }
  return undefined;
}

async function predict(ext: Extension, line: string, index: number, token: vscode.CancellationToken): Promise<{ token: string; score: number }[] | undefined> {
  if (ext.client.state !== State.Running) return undefined;
  const r = await ext.client.sendRequest(P.FillMask, { text: line, topK: config.inlineTopK }, token).catch(() => undefined);
  return r?.masks[index];
}

function sleep(ms: number, token: vscode.CancellationToken): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(!token.isCancellationRequested), ms);
    token.onCancellationRequested(() => {
      clearTimeout(t);
      resolve(false);
    });
  });
}

export function registerInline(ext: Extension): void {
  const inline: vscode.InlineCompletionItemProvider = {
    async provideInlineCompletionItems(document, position, _context, token) {
      if (!config.inlineEnabled) return undefined;
      const line = document.lineAt(position.line).text;
      const at = maskAt(line, position.character);
      if (!at || !(await sleep(DEBOUNCE_MS, token))) return undefined;
      const preds = await predict(ext, line, at.index, token);
      if (!preds || token.isCancellationRequested) return undefined;
      return preds.map((p) => {
        // After the insertion the [MASK] is where it was (cursor after it) or shifted by the token (cursor before it).
        const maskStart = position.character <= at.start ? at.start + p.token.length : at.start;
        return new vscode.InlineCompletionItem(p.token, new vscode.Range(position, position), { title: "Replace [MASK]", command: REMOVE_MASK, arguments: [document.uri, position.line, maskStart] });
      });
    },
  };
  const hover: vscode.HoverProvider = {
    async provideHover(document, position, token) {
      const line = document.lineAt(position.line).text;
      const at = maskAt(line, position.character);
      if (!at) return undefined;
      const preds = await predict(ext, line, at.index, token);
      if (!preds) return undefined;
      const md = new vscode.MarkdownString(["| token | probability |", "|---|---:|", ...preds.map((p) => `| \`${p.token}\` | ${(p.score * 100).toFixed(1)}% |`)].join("\n"));
      return new vscode.Hover(md, new vscode.Range(position.line, at.start, position.line, at.start + MASK.length));
    },
  };
  const removeMask = async (uri: vscode.Uri, line: number, start: number) => {
    const editor = vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === uri.toString());
    const range = new vscode.Range(line, start, line, start + MASK.length);
    if (!editor || editor.document.getText(range) !== MASK) return;
    await editor.edit((e) => e.delete(range), { undoStopBefore: false, undoStopAfter: true });
  };
  const selector: vscode.DocumentSelector = [{ scheme: "file" }, { scheme: "untitled" }];
  ext.context.subscriptions.push(vscode.commands.registerCommand(REMOVE_MASK, removeMask));
  ext.context.subscriptions.push(vscode.languages.registerInlineCompletionItemProvider(selector, inline), vscode.languages.registerHoverProvider(selector, hover));
}
