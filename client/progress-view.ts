// The training-progress webview host: one panel with live curves of every run, fed by the server's
// metrics notifications and, when opened or restored, by the runs' metrics.jsonl files. The panel
// survives hide/show (its script keeps state) and window reloads (a webview serializer).
import { randomBytes } from "node:crypto";
import * as path from "node:path";
import * as vscode from "vscode";
import type { MetricsEvent } from "../common/protocol.js";
import { appendRow, type MetricRow, type ProgressMessage } from "../common/webview.js";

export const VIEW_TYPE = "bertStudio.progress";

export class ProgressView {
  private panel: vscode.WebviewPanel | undefined;
  /** Rows by run name, as streamed since activation. */
  private readonly live = new Map<string, MetricRow[]>();

  constructor(private readonly context: vscode.ExtensionContext) {}

  register(): vscode.Disposable {
    return vscode.window.registerWebviewPanelSerializer(VIEW_TYPE, {
      deserializeWebviewPanel: async (panel) => this.attach(panel),
    });
  }

  show(): void {
    if (this.panel) {
      this.panel.reveal(undefined, true);
      return;
    }
    const panel = vscode.window.createWebviewPanel(VIEW_TYPE, "BERT Training Progress", { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }, {});
    void this.attach(panel);
  }

  /** Adds a streamed row and draws it. */
  add(e: MetricsEvent): void {
    const run = path.basename(e.out);
    appendRow(this.live.get(run) ?? this.live.set(run, []).get(run)!, e.row);
    this.post({ type: "row", run, row: e.row });
  }

  private async attach(panel: vscode.WebviewPanel): Promise<void> {
    this.panel = panel;
    const media = vscode.Uri.joinPath(this.context.extensionUri, "dist", "media");
    panel.webview.options = { enableScripts: true, localResourceRoots: [media] };
    panel.webview.html = this.html(panel.webview, media);
    panel.onDidDispose(() => (this.panel = undefined));
    const runs = await this.readRuns();
    for (const [run, rows] of this.live) runs[run] = rows;
    this.post({ type: "load", runs });
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
        const rows = text.split("\n").flatMap((l) => {
          try {
            return l.trim() ? [JSON.parse(l) as MetricRow] : [];
          } catch {
            return [];
          }
        });
        if (rows.length) runs[name] = rows;
      }
    }
    return runs;
  }

  private html(webview: vscode.Webview, media: vscode.Uri): string {
    const nonce = randomBytes(16).toString("base64");
    const uri = (f: string) => webview.asWebviewUri(vscode.Uri.joinPath(media, f)).toString();
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
<div id="empty">No training yet: run <b>BERT: Pretrain on Workspace</b>.</div>
<div id="charts"></div>
<script nonce="${nonce}" src="${uri("progress.js")}"></script>
</body>
</html>`;
  }
}
