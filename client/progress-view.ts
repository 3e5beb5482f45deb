// The training-progress webview host: one panel with the curves of every run (media/progress.ts draws
// them), fed by the runs' metrics.jsonl files and the server's metrics notifications. The page asks for its
// rows when its script starts ("ready"): when the panel opens, when it is shown again after being hidden (a
// hidden webview is unloaded), and when a window reload restores it (the serializer). Rows posted before
// the page listens are lost; that is why a restored panel stayed blank when the rows were posted at once.
import { randomBytes } from "node:crypto";
import * as path from "node:path";
import * as vscode from "vscode";
import type { MetricsEvent } from "../common/protocol.js";
import { appendRow, parseMetricRows, type MetricRow, type PageMessage, type ProgressMessage } from "../common/webview.js";

export const VIEW_TYPE = "bertStudio.progress";

export class ProgressView {
  private panel: vscode.WebviewPanel | undefined;
  /** Whether the panel's page has its rows (it answered "ready" and got "load"): rows and focus go to it. */
  private ready = false;
  /** The run to highlight once the page has its rows. */
  private focus: string | undefined;
  /** What the page last said it drew (runs with rows, charts), for tests; undefined until it drew once. */
  drawn: { runs: number; charts: number } | undefined;
  /** Rows by run name, as streamed since activation. */
  private readonly live = new Map<string, MetricRow[]>();

  constructor(private readonly context: vscode.ExtensionContext) {}

  /** Restores the panel after a window reload; the page keeps its toggles in its webview state. */
  register(): vscode.Disposable {
    return vscode.window.registerWebviewPanelSerializer(VIEW_TYPE, {
      deserializeWebviewPanel: async (panel) => this.attach(panel),
    });
  }

  /** Opens the panel beside the editor, or reveals it; with `run`, highlights that run and scrolls to its charts. */
  show(run?: string): void {
    if (run !== undefined) this.focus = run;
    if (this.panel) {
      this.panel.reveal(undefined, true);
      this.sendFocus();
      return;
    }
    const panel = vscode.window.createWebviewPanel(VIEW_TYPE, "BERT Training Progress", { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }, {});
    this.attach(panel);
  }

  /** Adds a streamed row and draws it. */
  add(e: MetricsEvent): void {
    const run = path.basename(e.out);
    appendRow(this.live.get(run) ?? this.live.set(run, []).get(run)!, e.row);
    if (this.ready) this.post({ type: "row", run, row: e.row });
  }

  private attach(panel: vscode.WebviewPanel): void {
    if (this.panel && this.panel !== panel) this.panel.dispose();
    this.panel = panel;
    this.ready = false;
    this.drawn = undefined;
    const media = vscode.Uri.joinPath(this.context.extensionUri, "dist", "media");
    panel.webview.options = { enableScripts: true, localResourceRoots: [media] };
    const subs = [
      panel.webview.onDidReceiveMessage((m: PageMessage) => {
        if (m?.type === "ready") void this.load(panel);
        else if (m?.type === "drawn") this.drawn = { runs: m.runs, charts: m.charts };
      }),
      // A hidden panel's page is unloaded: it asks again ("ready") when it is shown.
      panel.onDidChangeViewState(() => {
        if (!panel.visible && panel === this.panel) this.ready = false;
      }),
    ];
    panel.onDidDispose(() => {
      for (const s of subs) s.dispose();
      if (panel !== this.panel) return;
      this.panel = undefined;
      this.ready = false;
    });
    panel.webview.html = this.html(panel.webview, media);
  }

  /** The answer to "ready": every run's rows from disk with the streamed ones applied, then the focus. */
  private async load(panel: vscode.WebviewPanel): Promise<void> {
    const runs = await this.readRuns();
    if (panel !== this.panel) return;
    // metrics.jsonl already holds most streamed rows; applying them again keeps a resumed run's older ones.
    for (const [run, rows] of this.live) for (const row of rows) appendRow((runs[run] ??= []), row);
    this.post({ type: "load", runs });
    this.ready = true;
    this.sendFocus();
  }

  private sendFocus(): void {
    if (!this.ready || this.focus === undefined) return;
    this.post({ type: "focus", run: this.focus });
    this.focus = undefined;
  }

  private post(message: ProgressMessage): void {
    void this.panel?.webview.postMessage(message);
  }

  /** metrics.jsonl of every run under the workspace folders' .bert-studio/runs. */
  private async readRuns(): Promise<Record<string, MetricRow[]>> {
    const runs: Record<string, MetricRow[]> = {};
    for (const folder of vscode.workspace.workspaceFolders ?? []) {
      const root = vscode.Uri.joinPath(folder.uri, ".bert-studio", "runs");
      const entries = await vscode.workspace.fs.readDirectory(root).then(undefined, () => [] as [string, vscode.FileType][]);
      for (const [name, type] of entries) {
        if (type !== vscode.FileType.Directory) continue;
        const text = await vscode.workspace.fs.readFile(vscode.Uri.joinPath(root, name, "metrics.jsonl")).then((b) => Buffer.from(b).toString("utf8"), () => "");
        const rows = parseMetricRows(text);
        if (rows.length) runs[name] = rows;
      }
    }
    return runs;
  }

  private html(webview: vscode.Webview, media: vscode.Uri): string {
    const nonce = randomBytes(16).toString("base64");
    const uri = (f: string) => webview.asWebviewUri(vscode.Uri.joinPath(media, f)).toString();
    // uPlot sizes and colours its elements through element.style (the CSSOM), which style-src allows
    // without 'unsafe-inline'; the page itself sets no style: colours are classes of progress.css.
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src ${webview.cspSource} data:; style-src ${webview.cspSource}; script-src 'nonce-${nonce}';">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${uri("uPlot.min.css")}">
<link rel="stylesheet" href="${uri("progress.css")}">
<title>BERT Training Progress</title>
</head>
<body>
<div id="empty" hidden>No training yet: run <b>BERT: Pretrain on Workspace</b>.</div>
<div id="runs" hidden><table id="legend"><tbody></tbody></table></div>
<div id="charts"></div>
<script nonce="${nonce}" src="${uri("progress.js")}"></script>
</body>
</html>`;
  }
}
