// BERT: Show Surprising Tokens: a proofreading heat map. Each word of the active document is coloured by how
// unlikely the selected language model finds it when it is masked (bert/surprise: bits of surprise, from the
// pseudo-log-likelihood of its pieces); the hover gives the figure and the words the model expected there.
// The document is scored in chunks of lines under a cancellable progress notification, so a long file shows
// its first results at once; the result is cached per document version, and the marks go at the first edit.
import * as vscode from "vscode";
import * as P from "../common/protocol.js";
import type { Extension } from "./context.js";
import { chunks, level, LEVELS, thresholds } from "./surprise-levels.js";

export interface SurpriseShown {
  model: string;
  /** Words scored, and how many were marked at each level. */
  words: number;
  marked: number[];
  /** The most surprising words, most surprising first (text, bits, alternatives). */
  top: { text: string; bits: number; expected: string[] }[];
}

export function registerSurprise(ext: Extension): void {
  const decorations = LEVELS.map((_, i) =>
    vscode.window.createTextEditorDecorationType({
      // Red with more opacity for more surprise; readable on dark and light themes.
      backgroundColor: `rgba(240, 80, 60, ${(0.15 + 0.17 * i).toFixed(2)})`,
      borderRadius: "2px",
      overviewRulerColor: i >= 2 ? "rgba(240, 80, 60, 0.8)" : undefined,
      overviewRulerLane: vscode.OverviewRulerLane.Right,
    }),
  );
  const cache = new Map<string, { version: number; model: string; words: (P.WordSurprise & { offset: number })[] }>();
  const shown = new Set<vscode.TextEditor>();
  const clear = (editor: vscode.TextEditor) => {
    for (const d of decorations) editor.setDecorations(d, []);
    shown.delete(editor);
  };

  const draw = (editor: vscode.TextEditor, model: string, words: (P.WordSurprise & { offset: number })[]): SurpriseShown => {
    const doc = editor.document;
    const byLevel: vscode.DecorationOptions[][] = LEVELS.map(() => []);
    const bounds = thresholds(words.map((w) => w.bits));
    for (const w of words) {
      const l = level(w.bits, bounds);
      if (l < 0) continue;
      const range = new vscode.Range(doc.positionAt(w.offset + w.start), doc.positionAt(w.offset + w.end));
      const alts = w.top.map((t) => `\`${t.token}\` ${(t.score * 100).toFixed(1)}%`).join(", ");
      const md = new vscode.MarkdownString(`**${w.bits.toFixed(1)} bits of surprise** (p ≈ ${Math.pow(2, -w.bits).toPrecision(2)}) for ${model.split(/[\\/]/).pop()}\n\nExpected here: ${alts || "(nothing likelier)"}`);
      byLevel[l].push({ range, hoverMessage: md });
    }
    decorations.forEach((d, i) => editor.setDecorations(d, byLevel[i]));
    shown.add(editor);
    const top = [...words]
      .sort((a, b) => b.bits - a.bits)
      .slice(0, 5)
      .map((w) => ({ text: doc.getText(new vscode.Range(doc.positionAt(w.offset + w.start), doc.positionAt(w.offset + w.end))), bits: w.bits, expected: w.top.map((t) => t.token) }));
    return { model, words: words.length, marked: byLevel.map((l) => l.length), top };
  };

  const show = async (): Promise<SurpriseShown | undefined> => {
    const editor = vscode.window.activeTextEditor;
    if (!editor) return void vscode.window.showInformationMessage("BERT: open a document to score its words.");
    const doc = editor.document;
    const key = doc.uri.toString();
    await ext.ready();
    const { model } = await ext.client.sendRequest(P.Status);
    if (!model) {
      void vscode.window.showErrorMessage("BERT: no language model selected: pretrain one (BERT: Pretrain on Workspace) or select one in the Runs view.");
      return undefined;
    }
    const hit = cache.get(key);
    if (hit && hit.version === doc.version && hit.model === model) return draw(editor, hit.model, hit.words);
    const version = doc.version;
    const parts = chunks(doc.getText());
    const words: (P.WordSurprise & { offset: number })[] = [];
    const done = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `BERT: scoring the words of ${doc.fileName.split(/[\\/]/).pop()}`, cancellable: true }, async (progress, token) => {
      for (const [i, [offset, text]] of parts.entries()) {
        if (token.isCancellationRequested || doc.version !== version) return false;
        if (!text.trim()) continue;
        const r = await ext.client.sendRequest(P.Surprise, { text, topK: 3 }, token);
        words.push(...r.words.map((w) => ({ ...w, offset })));
        draw(editor, model, words);
        progress.report({ increment: 100 / parts.length, message: `${Math.round((100 * (i + 1)) / parts.length)}%` });
      }
      return true;
    }).then(
      (ok) => ok,
      (e: Error) => {
        if (!/cancel/i.test(e.message)) void vscode.window.showErrorMessage(`BERT: ${e.message}`);
        return false;
      },
    );
    if (!done) return undefined;
    cache.set(key, { version, model, words });
    return draw(editor, model, words);
  };

  ext.context.subscriptions.push(
    ...decorations,
    vscode.commands.registerCommand("bertStudio.showSurprise", show),
    vscode.commands.registerCommand("bertStudio.clearSurprise", () => {
      for (const e of [...shown]) clear(e);
    }),
    vscode.workspace.onDidChangeTextDocument((e) => {
      if (!e.contentChanges.length) return;
      for (const editor of [...shown]) if (editor.document === e.document) clear(editor);
    }),
    vscode.workspace.onDidCloseTextDocument((d) => cache.delete(d.uri.toString())),
  );
}
