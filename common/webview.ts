// The training-progress webview's messages (host client/progress-view.ts ⇄ page media/progress.ts), the
// rule both sides apply to a run's rows, and the page's chart plan: which runs share an x range, which
// charts their rows make, the axes, and each run's colour. The plan is pure (no DOM, no uPlot), so it is
// tested as it is (test/unit/webview.test.ts) and the page only draws it.

/** One row of a run's metrics.jsonl (step, loss, lr, eval_* ...). */
export type MetricRow = Record<string, number>;

/** Host → page. */
export type ProgressMessage =
  /** Every run's rows, the answer to the page's "ready" (it replaces what the page shows). */
  | { type: "load"; runs: Record<string, MetricRow[]> }
  /** One row streamed while a job trains. */
  | { type: "row"; run: string; row: MetricRow }
  /** Highlight a run and scroll to it (ProgressView.show(run)); shows it if it was toggled off. */
  | { type: "focus"; run: string };

/**
 * Page → host. "ready": the page listens; the host answers with "load". A message posted before the page's
 * script runs is lost, which is why a restored panel stayed blank when the host posted its rows at once.
 */
/** From the page: "ready" when its script listens; "drawn" after each draw (what it shows, for the host's tests). */
export type PageMessage = { type: "ready" } | { type: "drawn"; runs: number; charts: number };

/**
 * Adds a streamed row to a run's rows. A resumed run logs again from its checkpoint's step: its rows from
 * that step on replace the ones shown (metrics.jsonl on disk drops them the same way).
 */
export function appendRow(rows: MetricRow[], row: MetricRow): void {
  const from = rows.findIndex((r) => r.step >= row.step);
  if (from >= 0) rows.splice(from);
  rows.push(row);
}

/**
 * The rows of a metrics.jsonl text (one JSON object per logged step), in order: a line that does not read
 * (cut short while it is written) or has no step is left out. The one reader of the file's format, for the
 * progress view, the Runs view and the trainer export.
 */
export function parseMetricRows(text: string): MetricRow[] {
  return text.split("\n").flatMap((l) => {
    if (!l.trim()) return [];
    try {
      const row = JSON.parse(l) as MetricRow;
      return row && typeof row.step === "number" ? [row] : [];
    } catch {
      return [];
    }
  });
}

// ---- colours -------------------------------------------------------------------------------------------

/** Colours a run can get: media/progress.css defines --run-0 … --run-9 for dark and for light themes. */
export const PALETTE_SIZE = 10;

/** FNV-1a of the name (32 bits): the same name gives the same slot in every session. */
export function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * Each run's palette slot: its name's hash, or the next free slot when another run has that one, so that up
 * to PALETTE_SIZE runs get distinct colours. The runs are taken in name order (the result does not depend
 * on the order the rows arrived in), after the ones in `kept` (the page's last answer, kept in the webview
 * state): a run that already has a colour keeps it when a new run arrives.
 */
export function runColours(names: readonly string[], kept: Readonly<Record<string, number>> = {}): Record<string, number> {
  const colours: Record<string, number> = {};
  const taken = new Set<number>();
  const sorted = [...new Set(names)].sort();
  for (const name of sorted) {
    const c = kept[name];
    if (Number.isInteger(c) && c >= 0 && c < PALETTE_SIZE && !taken.has(c)) {
      colours[name] = c;
      taken.add(c);
    }
  }
  for (const name of sorted) {
    if (name in colours) continue;
    let c = nameHash(name) % PALETTE_SIZE;
    while (taken.size < PALETTE_SIZE && taken.has(c)) c = (c + 1) % PALETTE_SIZE;
    colours[name] = c;
    taken.add(c);
  }
  return colours;
}

// ---- runs and their charts -----------------------------------------------------------------------------

export type RunKind = "pretraining" | "fine-tuning";

/** A pretraining run logs masked-LM figures (server/pretraining/pretrain.ts); a fine-tuning run does not. */
export function runKind(rows: readonly MetricRow[]): RunKind {
  return rows.some((r) => "mlm_loss" in r || "mlm_acc" in r || "eval_mlm_loss" in r) ? "pretraining" : "fine-tuning";
}

/**
 * The runs that share one x range, by kind: pretraining runs are compared with each other and fine-tuning
 * runs with each other, and an 84-step fine-tune is not drawn against a 1,000-step pretraining run.
 */
export interface RunGroup {
  kind: RunKind;
  title: string;
  /** In name order. */
  runs: string[];
}

export function groupRuns(runs: Readonly<Record<string, readonly MetricRow[]>>): RunGroup[] {
  const titles: Record<RunKind, string> = { pretraining: "Pretraining", "fine-tuning": "Fine-tuning" };
  return (["pretraining", "fine-tuning"] as const)
    .map((kind) => ({ kind, title: titles[kind], runs: Object.keys(runs).filter((n) => runs[n].length > 0 && runKind(runs[n]) === kind).sort() }))
    .filter((g) => g.runs.length > 0);
}

/** log: losses (train and held-out differ by orders of magnitude early on); unit: a fraction in [0, 1]. */
export type YScale = "log" | "unit" | "linear";

export interface ChartSpec {
  id: string;
  title: string;
  /** The y axis's title. */
  y: string;
  scale: YScale;
  /** Drawn in this order; the first present is a solid line, the next ones dashed, dotted … */
  metrics: { key: string; label: string }[];
  /** Drawn only when some run logs this metric (MLM loss is the loss itself without NSP). */
  onlyWith?: string;
}

const LOSS: ChartSpec = { id: "loss", title: "Loss", y: "loss", scale: "log", metrics: [{ key: "loss", label: "train" }, { key: "eval_loss", label: "held-out" }] };
const LR: ChartSpec = { id: "lr", title: "Learning rate", y: "learning rate", scale: "linear", metrics: [{ key: "lr", label: "lr" }] };
const THROUGHPUT: ChartSpec = { id: "tokens_per_s", title: "Throughput", y: "tokens/s", scale: "linear", metrics: [{ key: "tokens_per_s", label: "tokens/s" }] };

/** The charts of each kind, in the order they are laid out. */
export const CHARTS: Record<RunKind, readonly ChartSpec[]> = {
  pretraining: [
    LOSS,
    { id: "mlm_loss", title: "MLM loss", y: "loss", scale: "log", onlyWith: "nsp_loss", metrics: [{ key: "mlm_loss", label: "train" }, { key: "eval_mlm_loss", label: "held-out" }] },
    { id: "nsp_loss", title: "NSP loss", y: "loss", scale: "log", metrics: [{ key: "nsp_loss", label: "train" }, { key: "eval_nsp_loss", label: "held-out" }] },
    { id: "mlm_acc", title: "MLM accuracy", y: "accuracy", scale: "unit", metrics: [{ key: "mlm_acc", label: "train" }, { key: "eval_mlm_acc", label: "held-out" }, { key: "eval_mlm_top5", label: "held-out top-5" }] },
    { id: "nsp_acc", title: "NSP accuracy", y: "accuracy", scale: "unit", metrics: [{ key: "nsp_acc", label: "train" }, { key: "eval_nsp_acc", label: "held-out" }] },
    LR,
    THROUGHPUT,
  ],
  "fine-tuning": [
    LOSS,
    {
      id: "score",
      title: "Held-out score",
      y: "accuracy / F1",
      scale: "unit",
      metrics: [
        { key: "eval_accuracy", label: "accuracy" },
        { key: "eval_macro_f1", label: "macro F1" },
        { key: "eval_f1", label: "F1" },
        { key: "eval_exact_match", label: "exact match" },
        { key: "eval_precision", label: "precision" },
        { key: "eval_recall", label: "recall" },
      ],
    },
    LR,
    THROUGHPUT,
  ],
};

/**
 * A metric's value as drawn. SQuAD's exact match and F1 are in percent (server/tasks/metrics.ts, as the
 * official script prints them); a QA run (the one that logs exact_match) is drawn in [0, 1] like the others.
 */
export function drawnValue(rows: readonly MetricRow[], key: string, value: number): number {
  const percent = (key === "eval_f1" || key === "eval_exact_match") && rows.some((r) => "eval_exact_match" in r);
  return percent ? value / 100 : value;
}

/**
 * A log axis's range around [min, max]: a little room, then out to one significant digit (0.47 → 0.4,
 * 2.51 → 3), where uPlot's log ticks start. uPlot's own range goes out to whole decades (0.1 to 10 for a
 * loss between 0.5 and 2.5), which leaves most of the chart empty.
 */
export function logRange(min: number | null, max: number | null): [number, number] {
  if (min === null || max === null || !(min > 0) || !(max > 0)) return [0.1, 1];
  const lo = min / 1.02;
  const hi = max * 1.02;
  const digit = (v: number) => 10 ** Math.floor(Math.log10(v));
  const round = (v: number) => +v.toPrecision(12); // 0.1 * 3 = 0.30000000000000004
  return [round(Math.floor(lo / digit(lo)) * digit(lo)), round(Math.ceil(hi / digit(hi)) * digit(hi))];
}

export interface ChartSeries {
  run: string;
  key: string;
  /** "run · held-out", or the run alone in a chart of one metric. */
  label: string;
  /** 0: solid, 1: dashed, 2: dotted … (the page's DASHES). */
  dash: number;
  /** Aligned with the group's steps; null where the run has no value at that step. */
  values: (number | null)[];
}

export interface ChartPlan {
  id: string;
  title: string;
  y: { label: string; scale: YScale; /** uPlot's scale distribution: 3 is log10. */ distr: 1 | 3; range?: [number, number] };
  series: ChartSeries[];
}

/** One group's charts over the runs shown: every chart has the same steps (the union of the runs' steps). */
export interface GroupPlan {
  x: { label: "step"; steps: number[]; range: [number, number] };
  charts: ChartPlan[];
}

/** The charts that `shown` (runs of one group) make: those with a metric some of the runs log. */
export function planGroup(runs: Readonly<Record<string, readonly MetricRow[]>>, kind: RunKind, shown: readonly string[]): GroupPlan {
  const rowsOf = shown.map((run) => [run, runs[run] ?? []] as const).filter(([, rows]) => rows.length > 0);
  const steps = [...new Set(rowsOf.flatMap(([, rows]) => rows.map((r) => r.step)))].sort((a, b) => a - b);
  const at = new Map(steps.map((s, i) => [s, i]));
  const logs = (key: string) => rowsOf.some(([, rows]) => rows.some((r) => typeof r[key] === "number"));
  const charts: ChartPlan[] = [];
  for (const spec of CHARTS[kind]) {
    if (spec.onlyWith && !logs(spec.onlyWith)) continue;
    const metrics = spec.metrics.filter((m) => logs(m.key));
    if (metrics.length === 0) continue;
    const series: ChartSeries[] = [];
    for (const [run, rows] of rowsOf) {
      metrics.forEach((m, dash) => {
        if (!rows.some((r) => typeof r[m.key] === "number")) return;
        const values: (number | null)[] = steps.map(() => null);
        for (const r of rows) {
          const v = r[m.key];
          if (typeof v !== "number" || !Number.isFinite(v)) continue;
          const d = drawnValue(rows, m.key, v);
          values[at.get(r.step)!] = spec.scale === "log" && d <= 0 ? null : d;
        }
        series.push({ run, key: m.key, label: metrics.length > 1 ? `${run} · ${m.label}` : run, dash, values });
      });
    }
    const y = { label: spec.y, scale: spec.scale, distr: spec.scale === "log" ? 3 : 1, ...(spec.scale === "unit" ? { range: [0, 1] } : {}) } as ChartPlan["y"];
    charts.push({ id: spec.id, title: spec.title, y, series });
  }
  return { x: { label: "step", steps, range: [steps[0] ?? 0, steps.at(-1) ?? 0] }, charts };
}

/** A run's line in the legend: its latest step, latest loss and latest main figure (a fraction). */
export interface RunSummary {
  kind: RunKind;
  step: number;
  loss?: number;
  metric?: { label: string; value: number };
}

/** The main figure: held-out if evaluated, else the training one; fine-tuning: its task's main metric. */
const MAIN: Record<RunKind, { key: string; label: string }[]> = {
  pretraining: [
    { key: "eval_mlm_acc", label: "held-out MLM acc" },
    { key: "mlm_acc", label: "MLM acc" },
  ],
  // Each task's mainMetric (server/tasks/tasks.ts): accuracy for classify, pair and choice; F1 for QA and NER.
  "fine-tuning": [
    { key: "eval_accuracy", label: "accuracy" },
    { key: "eval_f1", label: "F1" },
  ],
};

export function runSummary(rows: readonly MetricRow[]): RunSummary {
  const kind = runKind(rows);
  const latest = (key: string): number | undefined => {
    for (let i = rows.length - 1; i >= 0; i--) if (typeof rows[i][key] === "number") return rows[i][key];
    return undefined;
  };
  const summary: RunSummary = { kind, step: rows.at(-1)?.step ?? 0, loss: latest("loss") };
  for (const m of MAIN[kind]) {
    const v = latest(m.key);
    if (v === undefined) continue;
    summary.metric = { label: m.label, value: drawnValue(rows, m.key, v) };
    break;
  }
  return summary;
}
