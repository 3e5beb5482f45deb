// The training-progress webview. At the top, a legend of every run (a checkbox, its colour, its kind, latest
// step, loss and main figure); below it one section per kind of run (pretraining, fine-tuning), each a grid
// of uPlot charts against step with titled axes (losses on a log scale, accuracy and F1 in [0, 1]) and
// their own x range. What is drawn comes from common/webview.ts's plan; this file only puts it on screen.
// The rows come from the host (a "load" answering this page's "ready", then a "row" per metrics
// notification); the webview state keeps only the toggles, the focused run and the colours given.
import uPlot from "uplot";
import {
  appendRow,
  groupRuns,
  logRange,
  PALETTE_SIZE,
  planGroup,
  runColours,
  runKind,
  runSummary,
  type ChartPlan,
  type GroupPlan,
  type MetricRow,
  type PageMessage,
  type ProgressMessage,
  type RunGroup,
  type RunKind,
  type YScale,
} from "../common/webview.js";

interface ViewState {
  /** Runs toggled off in the legend. */
  hidden: string[];
  /** The palette slot each run got (runColours' `kept`): a run keeps its colour when others arrive. */
  colours: Record<string, number>;
  /** The highlighted run. */
  focus?: string;
}
declare function acquireVsCodeApi(): { getState(): unknown; setState(s: ViewState): void; postMessage(m: PageMessage): void };

const vscode = acquireVsCodeApi();
const saved = (vscode.getState() ?? {}) as Partial<ViewState>;
const state: ViewState = { hidden: Array.isArray(saved.hidden) ? saved.hidden : [], colours: saved.colours ?? {}, focus: saved.focus };
const save = () => vscode.setState(state);

/** Every run's rows. Not in the webview state: the host sends them again whenever the page starts. */
let runs: Record<string, MetricRow[]> = {};
let loaded = false;

const HEIGHT = 240;
const MIN_WIDTH = 240;
/** By a series' `dash`: solid for the first metric of a chart (train), dashed for the next (held-out) … */
const DASHES: number[][] = [[], [6, 4], [2, 3], [8, 3, 2, 3], [12, 4], [2, 6]];

const $ = (id: string) => document.getElementById(id)!;
function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

// ---- numbers -------------------------------------------------------------------------------------------

const formatStep = (v: number) => Math.round(v).toLocaleString("en-US");
const percent = (v: number) => `${(v * 100).toFixed(1)}%`;
/** Small values (learning rates) in exponent notation, so that neighbouring ticks do not read alike. */
function formatValue(v: number, scale: YScale, tick: boolean): string {
  if (scale === "unit") return tick ? String(+v.toFixed(2)) : v.toFixed(3);
  const a = Math.abs(v);
  if (v === 0) return "0";
  if (a < 0.01 || a >= 1e6) return v.toExponential(1);
  if (a >= 1000) return formatStep(v);
  return String(+v.toPrecision(tick ? 3 : 4));
}

// ---- the theme ---------------------------------------------------------------------------------------

/** Canvas colours and fonts from the theme's variables (read again when the theme changes). */
function theme() {
  const css = getComputedStyle(document.body);
  const v = (name: string, fallback: string) => css.getPropertyValue(name).trim() || fallback;
  const family = v("--vscode-font-family", "sans-serif");
  return {
    text: v("--vscode-charts-foreground", v("--vscode-foreground", "#cccccc")),
    grid: v("--vscode-charts-lines", v("--vscode-editorWidget-border", "#80808080")),
    font: `11px ${family}`,
    labelFont: `12px ${family}`,
    runs: Array.from({ length: PALETTE_SIZE }, (_, i) => v(`--run-${i}`, "#3794ff")),
  };
}
let themeVersion = 0;

// ---- the legend --------------------------------------------------------------------------------------

interface LegendRow {
  tr: HTMLTableRowElement;
  box: HTMLInputElement;
  swatch: HTMLElement;
  kind: HTMLElement;
  step: HTMLElement;
  loss: HTMLElement;
  metric: HTMLElement;
}
const legendRows = new Map<string, LegendRow>();

function legendRow(run: string): LegendRow {
  const known = legendRows.get(run);
  if (known) return known;
  const tr = el("tr", "run");
  const box = el("input");
  box.type = "checkbox";
  box.setAttribute("aria-label", `Show ${run}`);
  box.addEventListener("change", () => toggle(run, box.checked));
  const name = el("button", "name", run);
  name.title = "Highlight this run in the charts";
  name.addEventListener("click", () => focusRun(state.focus === run ? undefined : run, state.focus !== run));
  const row: LegendRow = { tr, box, swatch: el("span", "swatch"), kind: el("td", "kind"), step: el("td", "num"), loss: el("td", "num"), metric: el("td", "num") };
  const cell = (...children: HTMLElement[]) => {
    const td = el("td");
    td.append(...children);
    return td;
  };
  tr.append(cell(box), cell(row.swatch), cell(name), row.kind, row.step, row.loss, row.metric);
  legendRows.set(run, row);
  return row;
}

function drawLegend(groups: RunGroup[], colours: Record<string, number>, hidden: Set<string>): void {
  const body = ($("legend") as HTMLTableElement).tBodies[0];
  const order = groups.flatMap((g) => g.runs);
  for (const [run, row] of legendRows) {
    if (order.includes(run)) continue;
    row.tr.remove();
    legendRows.delete(run);
  }
  const rows = order.map(legendRow);
  const inPlace = rows.every((row, i) => body.rows[i] === row.tr);
  order.forEach((run, i) => {
    const row = rows[i];
    const s = runSummary(runs[run]);
    row.box.checked = !hidden.has(run);
    row.swatch.className = `swatch run-c${colours[run]}`;
    row.tr.classList.toggle("off", hidden.has(run));
    row.tr.classList.toggle("focused", state.focus === run);
    row.kind.textContent = s.kind;
    row.step.textContent = `step ${formatStep(s.step)}`;
    row.loss.textContent = s.loss === undefined ? "" : `loss ${formatValue(s.loss, "log", false)}`;
    row.metric.textContent = s.metric ? `${s.metric.label} ${percent(s.metric.value)}` : "";
    if (!inPlace) body.append(row.tr); // in the groups' order; moved only when it changed (keeps keyboard focus)
  });
  $("runs").hidden = order.length === 0;
}

function toggle(run: string, shown: boolean): void {
  state.hidden = shown ? state.hidden.filter((r) => r !== run) : [...new Set([...state.hidden, run])];
  if (!shown && state.focus === run) state.focus = undefined;
  save();
  schedule();
}

let scrollPending = false;
/** Highlights `run` (undefined: none), shows it if it was off, and with `scroll` brings its charts into view. */
function focusRun(run: string | undefined, scroll: boolean): void {
  state.focus = run;
  if (run !== undefined) state.hidden = state.hidden.filter((r) => r !== run);
  scrollPending = scroll && run !== undefined;
  save();
  schedule();
}

// ---- the charts --------------------------------------------------------------------------------------

interface Drawn {
  plot: uPlot;
  div: HTMLElement;
}
let drawn: Drawn[] = [];
const sections = new Map<RunKind, { section: HTMLElement; meta: HTMLElement }>();
/** What the drawn charts show (runs, series, colours, focus, theme): when it changes they are made again, else only their data is. */
let layout = "";

function data(plan: GroupPlan, chart: ChartPlan): uPlot.AlignedData {
  return [plan.x.steps, ...chart.series.map((s) => s.values)] as uPlot.AlignedData;
}

function sparse(values: (number | null)[]): boolean {
  const n = values.filter((v) => v !== null).length;
  return n <= 24 || (n <= 100 && 4 * n <= values.length);
}

function options(group: RunGroup, plan: GroupPlan, chart: ChartPlan, colours: Record<string, number>, t: ReturnType<typeof theme>, width: number): uPlot.Options {
  const axis = { stroke: t.text, font: t.font, labelFont: t.labelFont, labelSize: 18, grid: { stroke: t.grid, width: 0.5 }, ticks: { stroke: t.grid, width: 0.5, size: 4 } };
  const focus = state.focus;
  return {
    title: chart.title,
    width: Math.max(MIN_WIDTH, width),
    height: HEIGHT,
    scales: { x: { time: false }, y: chart.y.distr === 3 ? { distr: 3, range: (_u, min, max) => logRange(min, max) } : chart.y.range ? { range: chart.y.range } : {} },
    axes: [
      { ...axis, label: plan.x.label, size: 30, values: (_u, ticks) => ticks.map((v) => (v == null ? "" : formatStep(v))) },
      { ...axis, label: chart.y.label, size: 54, values: (_u, ticks) => ticks.map((v) => (v == null ? "" : formatValue(v, chart.y.scale, true))) },
    ],
    series: [
      { label: "step", value: (_u, v) => (v == null ? "–" : formatStep(v)) },
      ...chart.series.map((s): uPlot.Series => ({
        label: s.label,
        stroke: t.runs[colours[s.run]],
        width: focus === s.run ? 3 : 1.5,
        alpha: focus !== undefined && focus !== s.run ? 0.3 : 1,
        dash: DASHES[s.dash % DASHES.length],
        spanGaps: true,
        // Points where a line is sparse (held-out figures every few hundred steps, a short run): where it was measured.
        points: { show: sparse(s.values), size: 5 },
        value: (_u, v) => (v == null ? "–" : formatValue(v, chart.y.scale, false)),
      })),
    ],
    cursor: { sync: { key: group.kind } }, // one crosshair across a group's charts
    legend: { live: true },
  };
}

function groupMeta(group: RunGroup, plan: GroupPlan, hidden: Set<string>): string {
  const off = group.runs.filter((r) => hidden.has(r)).length;
  const runsText = `${group.runs.length} run${group.runs.length === 1 ? "" : "s"}${off ? ` (${off} hidden)` : ""}`;
  return plan.x.steps.length ? `${runsText} · steps ${formatStep(plan.x.range[0])}–${formatStep(plan.x.range[1])}` : runsText;
}

function rebuild(plans: { group: RunGroup; plan: GroupPlan }[], colours: Record<string, number>, hidden: Set<string>): void {
  for (const d of drawn) d.plot.destroy();
  drawn = [];
  sections.clear();
  const host = $("charts");
  host.textContent = "";
  const t = theme();
  for (const { group, plan } of plans) {
    const section = el("section", "group");
    const meta = el("span", "meta", groupMeta(group, plan, hidden));
    const h = el("h2", undefined, group.title);
    h.append(" ", meta);
    section.append(h);
    host.append(section);
    sections.set(group.kind, { section, meta });
    if (plan.charts.length === 0) {
      section.append(el("p", "note", "Every run of this kind is toggled off: tick one in the list above."));
      continue;
    }
    const grid = el("div", "grid");
    section.append(grid);
    for (const chart of plan.charts) {
      const div = el("div", "chart");
      grid.append(div);
      drawn.push({ div, plot: new uPlot(options(group, plan, chart, colours, t, div.clientWidth), data(plan, chart), div) });
    }
  }
}

/** Same charts, new rows: the data only (a live run streams a row every few steps). A zoomed chart stays zoomed. */
function update(plans: { group: RunGroup; plan: GroupPlan }[], hidden: Set<string>): void {
  const charts = plans.flatMap(({ plan }) => plan.charts.map((chart) => data(plan, chart)));
  charts.forEach((d, i) => {
    const { plot } = drawn[i];
    const xs = plot.data[0];
    const zoomed = xs.length > 0 && (plot.scales.x.min! > xs[0] || plot.scales.x.max! < xs[xs.length - 1]);
    plot.setData(d, !zoomed);
  });
  for (const { group, plan } of plans) sections.get(group.kind)!.meta.textContent = groupMeta(group, plan, hidden);
}

function draw(): void {
  scheduled = false;
  const names = Object.keys(runs).filter((r) => runs[r].length > 0);
  const colours = runColours(names, state.colours);
  if (loaded && JSON.stringify(colours) !== JSON.stringify(state.colours)) {
    state.colours = colours;
    save();
  }
  const hidden = new Set(state.hidden);
  const groups = groupRuns(runs);
  $("empty").hidden = !loaded || names.length > 0;
  drawLegend(groups, colours, hidden);
  const plans = groups.map((group) => ({ group, plan: planGroup(runs, group.kind, group.runs.filter((r) => !hidden.has(r))) }));
  const signature = JSON.stringify([themeVersion, state.focus, colours, plans.map(({ group, plan }) => [group.kind, plan.charts.map((c) => [c.id, c.series.map((s) => [s.run, s.key])])])]);
  if (signature !== layout) {
    layout = signature;
    rebuild(plans, colours, hidden);
  } else update(plans, hidden);
  if (loaded) vscode.postMessage({ type: "drawn", runs: names.length, charts: drawn.length });
  if (scrollPending && state.focus !== undefined && state.focus in runs && runs[state.focus].length > 0) {
    scrollPending = false;
    // Below the legend, which stays at the top.
    const section = sections.get(runKind(runs[state.focus]))?.section;
    if (section) window.scrollTo({ top: section.getBoundingClientRect().top + window.scrollY - $("runs").offsetHeight - 4 });
  }
}

let scheduled = false;
function schedule(): void {
  if (!scheduled) {
    scheduled = true;
    requestAnimationFrame(draw);
  }
}

/** The charts follow the panel's width (each takes its grid cell's). */
function resize(): void {
  for (const d of drawn) {
    const width = Math.max(MIN_WIDTH, d.div.clientWidth);
    if (width !== d.plot.width) d.plot.setSize({ width, height: HEIGHT });
  }
}

window.addEventListener("message", (e: MessageEvent<ProgressMessage>) => {
  const msg = e.data;
  if (msg.type === "load") {
    runs = msg.runs;
    loaded = true;
    // Runs deleted since: their toggles go.
    state.hidden = state.hidden.filter((r) => r in runs);
    if (state.focus !== undefined && !(state.focus in runs)) state.focus = undefined;
    save();
  } else if (msg.type === "row") {
    appendRow((runs[msg.run] ??= []), msg.row);
  } else if (msg.type === "focus") {
    focusRun(msg.run, true);
    return;
  } else return;
  schedule();
});
let resizing = false;
new ResizeObserver(() => {
  if (resizing) return;
  resizing = true;
  requestAnimationFrame(() => ((resizing = false), resize()));
}).observe($("charts"));
// VS Code swaps the body's theme class (vscode-dark, vscode-light …) and its variables on a theme change.
new MutationObserver(() => (themeVersion++, schedule())).observe(document.body, { attributes: true, attributeFilter: ["class"] });
vscode.postMessage({ type: "ready" });
