// The training-progress webview: loss, accuracy (MLM/NSP or the task metric), learning rate and tokens/s
// against step, one line per run and metric, drawn with uPlot in the theme's colours. The runs are kept
// in the webview state, so hiding the panel or reloading the window shows the same curves.
import uPlot from "uplot";
import { appendRow, type MetricRow, type ProgressMessage } from "../common/webview.js";

interface ViewState {
  runs: Record<string, MetricRow[]>;
}
declare function acquireVsCodeApi(): { getState(): ViewState | undefined; setState(s: ViewState): void };

const vscode = acquireVsCodeApi();
const state: ViewState = vscode.getState() ?? { runs: {} };

const CHARTS: { title: string; metrics: string[]; log?: boolean }[] = [
  { title: "Loss", metrics: ["loss", "eval_loss", "mlm_loss", "nsp_loss"] },
  { title: "Accuracy / task metric", metrics: ["mlm_acc", "nsp_acc", "eval_mlm_acc", "eval_nsp_acc", "eval_accuracy", "eval_f1", "eval_exact_match"] },
  { title: "Learning rate", metrics: ["lr"] },
  { title: "Tokens/s", metrics: ["tokens_per_s"] },
];
const PALETTE = ["--vscode-charts-blue", "--vscode-charts-orange", "--vscode-charts-green", "--vscode-charts-purple", "--vscode-charts-red", "--vscode-charts-yellow"];

function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

let plots: uPlot[] = [];
let scheduled = false;

function draw(): void {
  scheduled = false;
  const host = document.getElementById("charts")!;
  const runs = Object.entries(state.runs).filter(([, rows]) => rows.length > 0);
  document.getElementById("empty")!.style.display = runs.length ? "none" : "block";
  for (const p of plots) p.destroy();
  plots = [];
  host.textContent = "";
  const fg = cssVar("--vscode-foreground", "#ccc");
  const grid = cssVar("--vscode-editorWidget-border", "#444");
  const width = Math.max(300, host.clientWidth - 8);
  const steps = [...new Set(runs.flatMap(([, rows]) => rows.map((r) => r.step)))].sort((a, b) => a - b);
  const at = new Map(steps.map((s, i) => [s, i]));
  for (const chart of CHARTS) {
    const series: uPlot.Series[] = [{ label: "step" }];
    const data: (number | null)[][] = [steps];
    let colour = 0;
    runs.forEach(([run, rows]) => {
      for (const m of chart.metrics) {
        if (!rows.some((r) => typeof r[m] === "number")) continue;
        const ys: (number | null)[] = steps.map(() => null);
        for (const r of rows) if (typeof r[m] === "number") ys[at.get(r.step)!] = r[m];
        series.push({ label: runs.length > 1 ? `${run}: ${m}` : m, stroke: cssVar(PALETTE[colour++ % PALETTE.length], "#3794ff"), width: 1.5, spanGaps: true, points: { show: rows.length < 40 } });
        data.push(ys);
      }
    });
    if (series.length === 1) continue;
    const div = document.createElement("div");
    div.className = "chart";
    host.appendChild(div);
    const axis = { stroke: fg, grid: { stroke: grid, width: 0.5 }, ticks: { stroke: grid } };
    // Small values (learning rates) in exponent notation, so that neighbouring ticks do not read alike.
    const yAxis = { ...axis, size: 60, values: (_: uPlot, ticks: number[]) => ticks.map((t) => (t !== 0 && Math.abs(t) < 0.01 ? t.toExponential(1) : String(+t.toPrecision(4)))) };
    plots.push(new uPlot({ title: chart.title, width, height: 200, series, axes: [axis, yAxis], scales: { x: { time: false } }, legend: { live: false } }, data as uPlot.AlignedData, div));
  }
}

function redraw(): void {
  if (!scheduled) {
    scheduled = true;
    requestAnimationFrame(draw);
  }
}

window.addEventListener("message", (e: MessageEvent<ProgressMessage>) => {
  const msg = e.data;
  if (msg.type === "load") {
    for (const [run, rows] of Object.entries(msg.runs)) state.runs[run] = rows;
  } else if (msg.type === "row") {
    appendRow((state.runs[msg.run] ??= []), msg.row);
  } else return;
  vscode.setState(state);
  redraw();
});
window.addEventListener("resize", redraw);
redraw();
