// The status bar item, drawn in one place from one state: the selected model (as the server reports it) and
// the latest metrics row of each running job. A job's entry goes when the server no longer lists it, so
// after a job ends (done, stopped, failed or diverged) the item shows the model again.
import * as path from "node:path";
import * as vscode from "vscode";
import type { MetricsEvent, StatusResult } from "../common/protocol.js";

/** A loss for display: a diverged step's NaN arrives as null (JSON has no NaN) and is shown, not thrown on. */
export function formatLoss(loss: unknown): string {
  return typeof loss === "number" && Number.isFinite(loss) ? loss.toFixed(3) : "n/a";
}

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 10);
  private model: string | undefined;
  /** The latest event of each running job, the most recently updated last. */
  private readonly jobs = new Map<string, MetricsEvent>();

  constructor() {
    this.item.command = "bertStudio.showProgress";
    this.render();
    this.item.show();
  }

  metrics(e: MetricsEvent): void {
    this.jobs.delete(e.job);
    this.jobs.set(e.job, e);
    this.render();
  }

  /** Takes the server's state: the selected model, and which jobs still run. */
  sync(s: Pick<StatusResult, "model" | "jobs">): void {
    this.model = s.model;
    for (const id of [...this.jobs.keys()]) if (!s.jobs.some((j) => j.id === id)) this.jobs.delete(id);
    this.render();
  }

  private render(): void {
    const running = [...this.jobs.values()];
    const latest = running[running.length - 1];
    const model = this.model ? `BERT: ${path.basename(this.model)}` : "BERT";
    this.item.text = latest
      ? `$(sync~spin) BERT ${latest.kind} step ${latest.row?.step ?? "?"} loss ${formatLoss(latest.row?.loss)}${running.length > 1 ? ` (+${running.length - 1} more)` : ""}`
      : `$(symbol-misc) ${model}`;
    this.item.tooltip = this.model ? `BERT Studio model: ${this.model}` : "BERT Studio: no model selected";
  }

  /** What the item shows now (for tests). */
  get text(): string {
    return this.item.text;
  }

  dispose(): void {
    this.item.dispose();
  }
}
