// A job's progress as words, for the status item and the progress notification (without VS Code, so that
// unit tests read it).
import type { MetricsEvent } from "../common/protocol.js";

/** A loss for display: a diverged step's NaN arrives as null (JSON has no NaN) and is shown, not thrown on. */
export function formatLoss(loss: unknown): string {
  return typeof loss === "number" && Number.isFinite(loss) ? loss.toFixed(3) : "n/a";
}

/** "40 s", "3 min", "1.5 h": a time left, for progress lines. */
export function formatEta(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return "";
  if (seconds < 90) return `${Math.max(1, Math.round(seconds))} s`;
  const min = seconds / 60;
  return min < 90 ? `${Math.round(min)} min` : `${(min / 60).toFixed(1)} h`;
}

/** A job's progress on one line: "step 120/1,000 (12%) · loss 3.214 · 2 min left"; "starting" before its first row. */
export function describeProgress(e: Pick<MetricsEvent, "row" | "steps" | "eta_s"> | undefined): string {
  const step = e?.row?.step;
  if (step === undefined) return "starting";
  const n = (x: number) => x.toLocaleString("en-US");
  const total = e?.steps && e.steps >= step ? `/${n(e.steps)} (${Math.floor((100 * step) / e.steps)}%)` : "";
  const eta = formatEta(e?.eta_s);
  return [`step ${n(step)}${total}`, `loss ${formatLoss(e?.row.loss)}`, eta ? `${eta} left` : ""].filter(Boolean).join(" · ");
}
