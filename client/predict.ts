// BERT: Predict: the selected fine-tuned model applied to the editor's text (the selection, or the line).
// A classifier's label and probabilities show after the text (and in a hover there); a sentence-pair model
// reads the selection's first line and asks for the second text when there is no second line; named
// entities are underlined with their types in hovers; question answering asks a question about the
// selection and highlights the answer. The marks go when the document changes.
import * as vscode from "vscode";
import * as P from "../common/protocol.js";
import type { Extension } from "./context.js";

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** Where predictions were drawn, for tests: the result and the ranges marked. */
export interface Predicted {
  result: P.PredictResult;
  ranges: vscode.Range[];
}

/** `question` and `pair` skip the input boxes (scripts, tests). */
type PredictOpts = { question?: string; pair?: string };

export function registerPredict(ext: Extension): void {
  const label = vscode.window.createTextEditorDecorationType({ after: { margin: "0 0 0 1.5em", color: new vscode.ThemeColor("editorCodeLens.foreground"), fontStyle: "italic" } });
  const entity = vscode.window.createTextEditorDecorationType({ textDecoration: "underline wavy", borderRadius: "2px", backgroundColor: new vscode.ThemeColor("editor.wordHighlightBackground") });
  const answer = vscode.window.createTextEditorDecorationType({ backgroundColor: new vscode.ThemeColor("editor.findMatchHighlightBackground"), border: "1px solid", borderColor: new vscode.ThemeColor("editor.findMatchBorder") });
  const marked = new Set<vscode.TextEditor>();
  const clear = (editor: vscode.TextEditor) => {
    for (const d of [label, entity, answer]) editor.setDecorations(d, []);
    marked.delete(editor);
  };

  const predict = async (opts: PredictOpts = {}): Promise<Predicted | undefined> => {
    const editor = vscode.window.activeTextEditor;
    if (!editor) return void vscode.window.showInformationMessage("BERT: open a document and select the text to predict on.");
    const doc = editor.document;
    const range = editor.selection.isEmpty ? doc.lineAt(editor.selection.active.line).range : new vscode.Range(editor.selection.start, editor.selection.end);
    const text = doc.getText(range);
    if (!text.trim()) return void vscode.window.showInformationMessage("BERT: the selection (or line) is empty.");
    await ext.ready();
    const { taskModel } = await ext.client.sendRequest(P.Status);
    if (!taskModel) {
      void vscode.window.showErrorMessage("BERT: no fine-tuned model selected: fine-tune one (BERT: Fine-tune on Labeled File) or select one in the Runs view.");
      return undefined;
    }
    const params: P.PredictParams = { text };
    const task = (await ext.modelInfo(taskModel))?.task;
    if (task === "qa") {
      params.question = opts.question ?? (await vscode.window.showInputBox({ prompt: "Question about the selected text", placeHolder: "Who founded the city?" }));
      if (!params.question) return undefined;
    }
    const base = doc.offsetAt(range.start);
    if (task === "pair") {
      const [first, ...rest] = text.split(/\r?\n/);
      params.text = first;
      params.pair = opts.pair ?? (rest.join(" ").trim() || (await vscode.window.showInputBox({ prompt: `Second sentence to pair with "${first.slice(0, 60)}"` })));
      if (!params.pair) return undefined;
    }
    let result: P.PredictResult;
    try {
      result = await ext.client.sendRequest(P.Predict, params);
    } catch (e) {
      void vscode.window.showErrorMessage(`BERT: ${(e as Error).message}`);
      return undefined;
    }
    clear(editor);
    marked.add(editor);
    const at = (start: number, end: number) => new vscode.Range(doc.positionAt(base + start), doc.positionAt(base + end));
    const ranges: vscode.Range[] = [];
    if (result.probabilities && result.label !== undefined) {
      const probs = result.probabilities;
      const hover = new vscode.MarkdownString(["| label | probability |", "|---|---:|", ...probs.map((p) => `| ${p.label} | ${pct(p.score)} |`)].join("\n"));
      const end = new vscode.Range(range.end, range.end);
      ranges.push(end);
      editor.setDecorations(label, [{ range: end, hoverMessage: hover, renderOptions: { after: { contentText: `→ ${result.label} (${pct(probs[0].score)})` } } }]);
      void vscode.window.showInformationMessage(`BERT: ${result.label} (${probs.map((p) => `${p.label} ${pct(p.score)}`).join(", ")})`);
    } else if (result.entities) {
      const decos = result.entities.map((e) => ({ range: at(e.start, e.end), hoverMessage: new vscode.MarkdownString(`**${e.type}** entity: ${e.text}`) }));
      ranges.push(...decos.map((d) => d.range));
      editor.setDecorations(entity, decos);
      void vscode.window.showInformationMessage(result.entities.length ? `BERT: ${result.entities.length} entities: ${result.entities.map((e) => `${e.text} (${e.type})`).join(", ")}` : "BERT: no entities found.");
    } else if (result.answer) {
      const r = at(result.answer.start, result.answer.end);
      ranges.push(r);
      // The score is the span's start + end logits (as HF's run_qa ranks spans), not a probability.
      const score = `span score ${result.answer.score.toFixed(2)}`;
      editor.setDecorations(answer, [{ range: r, hoverMessage: new vscode.MarkdownString(`**answer** to "${params.question}" (${score})`) }]);
      editor.revealRange(r, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
      void vscode.window.showInformationMessage(result.answer.text ? `BERT: ${result.answer.text} (${score})` : "BERT: no answer found in the selection.");
    }
    return { result, ranges };
  };

  ext.context.subscriptions.push(
    label,
    entity,
    answer,
    vscode.commands.registerCommand("bertStudio.predict", predict),
    vscode.commands.registerCommand("bertStudio.clearPredictions", () => {
      for (const e of [...marked]) clear(e);
    }),
    // Marks on a changed text would point at the wrong words.
    vscode.workspace.onDidChangeTextDocument((e) => {
      for (const editor of [...marked]) if (editor.document === e.document && e.contentChanges.length) clear(editor);
    }),
  );
}
