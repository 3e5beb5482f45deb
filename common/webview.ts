// The training-progress webview's messages, host (client/progress-view.ts) → page (media/progress.ts), and
// the rule both sides apply to a run's rows: one definition for both.

/** One row of a run's metrics.jsonl (step, loss, lr, eval_* ...). */
export type MetricRow = Record<string, number>;

export type ProgressMessage =
  /** Every run's rows, sent when the panel opens or is restored. */
  | { type: "load"; runs: Record<string, MetricRow[]> }
  /** One row streamed while a job trains. */
  | { type: "row"; run: string; row: MetricRow };

/**
 * Adds a streamed row to a run's rows. A resumed run logs again from its checkpoint's step: its rows from
 * that step on replace the ones shown (metrics.jsonl on disk drops them the same way).
 */
export function appendRow(rows: MetricRow[], row: MetricRow): void {
  const from = rows.findIndex((r) => r.step >= row.step);
  if (from >= 0) rows.splice(from);
  rows.push(row);
}
