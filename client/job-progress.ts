// A training job's notification: its title, a percentage bar, "step 120/1,000 (12%) · loss 3.214 · 2 min
// left" from the job's metrics notifications, and Cancel, which stops the job after its current step (a
// checkpoint is kept). It closes when the job ends. The status bar item says the same in one line.
import * as path from "node:path";
import * as vscode from "vscode";
import * as P from "../common/protocol.js";
import type { Extension } from "./context.js";
import { describeProgress } from "./progress-text.js";

/** Runs `job` (which trains into `out`) under a cancellable progress notification. */
export function withJobProgress<T>(ext: Extension, title: string, out: string, job: () => Promise<T>): Promise<T> {
  return Promise.resolve(
    vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `${title} ${path.basename(out)}`, cancellable: true }, async (progress, token) => {
      let shown = 0;
      progress.report({ message: "starting (reading the data)…" });
      const sub = ext.onMetrics((e) => {
        if (path.resolve(e.out) !== path.resolve(out)) return;
        const pct = e.steps ? Math.min(100, (100 * e.row.step) / e.steps) : 0;
        progress.report({ message: describeProgress(e), increment: Math.max(0, pct - shown) });
        shown = Math.max(shown, pct);
      });
      const cancel = token.onCancellationRequested(async () => {
        const { jobs } = await ext.client.sendRequest(P.Status);
        for (const j of jobs) if (path.resolve(j.out) === path.resolve(out)) await ext.client.sendRequest(P.StopJob, { job: j.id });
      });
      try {
        return await job();
      } finally {
        sub.dispose();
        cancel.dispose();
      }
    }),
  );
}
