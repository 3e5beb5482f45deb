// The one status bar item, drawn in one place from one state: the selected models (as the server reports
// them) and the latest metrics row of each running job. While a job trains it shows that job's progress;
// when no job runs (done, stopped, failed or diverged: the server no longer lists it) it shows the selected
// models again. A click opens the Runs view.
import * as path from "node:path";
import * as vscode from "vscode";
import type { MetricsEvent, StatusResult } from "../common/protocol.js";
import { describeProgress } from "./progress-text.js";

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem("bertStudio.status", vscode.StatusBarAlignment.Left, 10);
  private model: string | undefined;
  private taskModel: string | undefined;
  /** The latest event of each running job, the most recently updated last. */
  private readonly jobs = new Map<string, MetricsEvent>();

  constructor() {
    this.item.name = "BERT Studio";
    this.item.command = "bertStudio.runs.focus";
    this.render();
    this.item.show();
  }

  metrics(e: MetricsEvent): void {
    this.jobs.delete(e.job);
    this.jobs.set(e.job, e);
    this.render();
  }

  /** Takes the server's state: the selected models, and which jobs still run. */
  sync(s: Pick<StatusResult, "model" | "jobs"> & Partial<Pick<StatusResult, "taskModel">>): void {
    this.model = s.model;
    this.taskModel = s.taskModel;
    for (const id of [...this.jobs.keys()]) if (!s.jobs.some((j) => j.id === id)) this.jobs.delete(id);
    this.render();
  }

  private render(): void {
    const running = [...this.jobs.values()];
    const latest = running[running.length - 1];
    const names = [this.model, this.taskModel].filter((m): m is string => !!m).map((m) => path.basename(m));
    if (latest) {
      this.item.text = `$(sync~spin) BERT ${latest.kind} ${path.basename(latest.out)}: ${describeProgress(latest)}${running.length > 1 ? ` (+${running.length - 1} more)` : ""}`;
      this.item.tooltip = `Training ${latest.out}. Click for the Runs view (Stop is there and in the notification).`;
      return;
    }
    this.item.text = names.length ? `$(symbol-misc) BERT: ${names.join(" · ")}` : "$(symbol-misc) BERT";
    const lines = [this.model ? `Language model ([MASK], surprise): ${this.model}` : "No language model selected", this.taskModel ? `Fine-tuned model (Predict): ${this.taskModel}` : ""];
    this.item.tooltip = `${lines.filter(Boolean).join("\n")}\nClick for the Runs view.`;
  }

  /** What the item shows now (for tests). */
  get text(): string {
    return this.item.text;
  }

  dispose(): void {
    this.item.dispose();
  }
}
