// [MASK] in the editor. Where the cursor rests at a [MASK] (right after it or at its start, anywhere in a
// line), ghost text offers the top prediction, the alternatives cycle, Tab accepts; moving the cursor there
// asks for it (debounced), as typing does. A hover on [MASK] lists the top-k with probabilities, and a code
// action (the lightbulb) fills it with any of them. Requests are debounced and dropped when typing goes on;
// with no language model selected there is simply no suggestion.
//
// VS Code shows ghost text only for insertions at the cursor (a replacement of "[MASK]" is not shown), so
// the prediction is offered as an insertion next to the [MASK]. Accepting it runs a command that takes the
// insertion back and replaces the [MASK] with the token in one edit: one undo restores the [MASK].
import * as vscode from "vscode";
import { State } from "vscode-languageclient/node";
import * as P from "../common/protocol.js";
import { config } from "./config.js";
import type { Extension } from "./context.js";

const MASK = "[MASK]";
const REPLACE_MASK = "bertStudio.replaceMaskAfterCompletion";
const DEBOUNCE_MS = 60;
/** How long the cursor rests on a [MASK] before ghost text is asked for. */
const REST_MS = 150;

/** The [MASK] of `line` at or right before `character`, and its index among the line's masks. */
export function maskAt(line: string, character: number): { start: number; index: number } | undefined {
  let index = 0;
  for (let i = line.indexOf(MASK); i >= 0; i = line.indexOf(MASK, i + 1), index++) {
    if (character >= i && character <= i + MASK.length) return { start: i, index };
  }
  return undefined;
}

/** A mask where ghost text can show: the cursor right after it or at its start (not inside the word). */
function ghostMaskAt(line: string, character: number): { start: number; index: number } | undefined {
  const at = maskAt(line, character);
  return at && (character === at.start || character === at.start + MASK.length) ? at : undefined;
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

/**
 * After VS Code inserted an accepted prediction next to the [MASK]: takes that insertion back (undo) and
 * replaces the [MASK] with the token as one edit, so that one undo restores the line. When the undo did not
 * give back the line as it was (another edit came between), the [MASK] is removed instead.
 */
async function replaceMask(uri: vscode.Uri, line: number, before: string, maskStart: number, inserted: string, at: number): Promise<void> {
  const editor = vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === uri.toString());
  if (!editor) return;
  const doc = editor.document;
  const expected = before.slice(0, at) + inserted + before.slice(at);
  if (doc.lineAt(line).text !== expected) return;
  await vscode.commands.executeCommand("undo");
  const mask = new vscode.Range(line, maskStart, line, maskStart + MASK.length);
  if (doc.lineAt(line).text === before) {
    await editor.edit((e) => e.replace(mask, inserted));
  } else {
    await vscode.commands.executeCommand("redo");
    // The token went in before the mask when the cursor was at its start.
    const shifted = at <= maskStart ? mask.with(mask.start.translate(0, inserted.length), mask.end.translate(0, inserted.length)) : mask;
    if (doc.getText(shifted) === MASK) await editor.edit((e) => e.delete(shifted), { undoStopBefore: false, undoStopAfter: true });
  }
  const end = new vscode.Position(line, maskStart + inserted.length);
  editor.selection = new vscode.Selection(end, end);
}

/** The lightbulb on a [MASK]: "Fill [MASK] with 'history' (41%)" for each prediction. */
function codeActions(ext: Extension): vscode.CodeActionProvider {
  return {
    async provideCodeActions(document, range, _context, token) {
      const line = document.lineAt(range.start.line).text;
      const at = maskAt(line, range.start.character);
      if (!at) return undefined;
      const preds = await predict(ext, line, at.index, token);
      if (!preds) return undefined;
      const mask = new vscode.Range(range.start.line, at.start, range.start.line, at.start + MASK.length);
      return preds.map((p, i) => {
        const action = new vscode.CodeAction(`Fill [MASK] with "${p.token}" (${(p.score * 100).toFixed(1)}%)`, vscode.CodeActionKind.QuickFix);
        action.edit = new vscode.WorkspaceEdit();
        action.edit.replace(document.uri, mask, p.token);
        action.isPreferred = i === 0;
        return action;
      });
    },
  };
}

export function registerInline(ext: Extension): void {
  const inline: vscode.InlineCompletionItemProvider = {
    async provideInlineCompletionItems(document, position, _context, token) {
      if (!config.inlineEnabled) return undefined;
      const line = document.lineAt(position.line).text;
      const at = ghostMaskAt(line, position.character);
      if (!at || !(await sleep(DEBOUNCE_MS, token))) return undefined;
      const preds = await predict(ext, line, at.index, token);
      if (!preds || token.isCancellationRequested) return undefined;
      return preds.map(
        (p) =>
          new vscode.InlineCompletionItem(p.token, new vscode.Range(position, position), {
            title: "Replace [MASK]",
            command: REPLACE_MASK,
            arguments: [document.uri, position.line, line, at.start, p.token, position.character],
          }),
      );
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
  // The cursor coming to rest on a [MASK] (a click, the arrow keys) asks for ghost text, as typing does.
  let rest: NodeJS.Timeout | undefined;
  const onSelection = vscode.window.onDidChangeTextEditorSelection((e) => {
    clearTimeout(rest);
    if (!config.inlineEnabled || e.selections.length !== 1 || !e.selections[0].isEmpty) return;
    const pos = e.selections[0].active;
    if (!ghostMaskAt(e.textEditor.document.lineAt(pos.line).text, pos.character)) return;
    rest = setTimeout(() => {
      if (vscode.window.activeTextEditor === e.textEditor && e.textEditor.selection.active.isEqual(pos)) void vscode.commands.executeCommand("editor.action.inlineSuggest.trigger");
    }, REST_MS);
  });
  const selector: vscode.DocumentSelector = [{ scheme: "file" }, { scheme: "untitled" }];
  ext.context.subscriptions.push(
    vscode.commands.registerCommand(REPLACE_MASK, replaceMask),
    onSelection,
    { dispose: () => clearTimeout(rest) },
    vscode.languages.registerInlineCompletionItemProvider(selector, inline),
    vscode.languages.registerHoverProvider(selector, hover),
    vscode.languages.registerCodeActionsProvider(selector, codeActions(ext), { providedCodeActionKinds: [vscode.CodeActionKind.QuickFix] }),
  );
}
