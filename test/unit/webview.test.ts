// The progress view's rules, shared by the extension host and the page: a run's rows, the runs' colours,
// which runs share an x range, which charts their rows make, and the axes.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { appendRow, groupRuns, parseMetricRows, logRange, PALETTE_SIZE, planGroup, runColours, runKind, runSummary, type MetricRow } from "../../common/webview.js";

test("a resumed run's rows replace the ones from its checkpoint's step on; new steps are appended", () => {
  const rows: MetricRow[] = [10, 20, 30, 40].map((step) => ({ step, loss: 5 - step / 10 }));
  appendRow(rows, { step: 50, loss: 0.9 });
  assert.deepEqual(rows.map((r) => r.step), [10, 20, 30, 40, 50]);
  appendRow(rows, { step: 30, loss: 2.5 }); // resumed from the checkpoint at step 20
  assert.deepEqual(rows.map((r) => [r.step, r.loss]), [[10, 4], [20, 3], [30, 2.5]]);
});

/** Rows as the trainers log them: every `every` steps, held-out figures every `evalEvery`. */
function pretrainRows(steps: number, every = 10, evalEvery = 200): MetricRow[] {
  const rows: MetricRow[] = [];
  for (let step = every; step <= steps; step += every) {
    const row: MetricRow = { step, loss: 7 / Math.sqrt(step), mlm_loss: 6.4 / Math.sqrt(step), nsp_loss: 0.6 / Math.sqrt(step), mlm_acc: step / (2 * steps), nsp_acc: 0.7, lr: 5e-4, tokens_per_s: 4000, epoch: 0 };
    if (step % evalEvery === 0 || step === steps) Object.assign(row, { eval_loss: 6 / Math.sqrt(step), eval_mlm_loss: 5.5 / Math.sqrt(step), eval_mlm_acc: step / (3 * steps), eval_mlm_top5: step / (2 * steps), eval_nsp_loss: 0.5, eval_nsp_acc: 0.8 });
    rows.push(row);
  }
  return rows;
}
function finetuneRows(steps: number, scores: (step: number) => MetricRow = (s) => ({ eval_accuracy: 0.5 + s / (4 * steps), eval_macro_f1: 0.4 + s / (4 * steps) })): MetricRow[] {
  const rows: MetricRow[] = [];
  for (let step = 4; step <= steps; step += 4) rows.push({ step, loss: 1.1 - step / (2 * steps), lr: 3e-5, tokens_per_s: 15000, epoch: step / steps, ...(step % 20 === 0 || step === steps ? scores(step) : {}) });
  return rows;
}

test("a run's colour comes from its name: the same after a reload, whatever order the runs arrive in, and distinct for a few runs", () => {
  const names = ["pretrain-small", "pretrain-base", "continue-pretrain-small", "classify-reviews-train", "ner-conll-train", "qa-squad-train"];
  const colours = runColours(names);
  assert.deepEqual(runColours([...names].reverse()), colours, "arrival order does not matter");
  assert.deepEqual(runColours(names), colours, "a reload (the same runs) gives the same colours");
  assert.equal(new Set(Object.values(colours)).size, names.length, "distinct colours");
  for (const c of Object.values(colours)) assert.ok(Number.isInteger(c) && c >= 0 && c < PALETTE_SIZE);
  // A new run does not take a colour a run already has (the page keeps what it gave in its state).
  const more = runColours([...names, "pair-nli-train", "choice-swag-train"], colours);
  for (const n of names) assert.equal(more[n], colours[n], n);
  assert.equal(new Set(Object.values(more)).size, names.length + 2);
});

test("every colour slot has a colour for dark and for light themes in progress.css", () => {
  const css = readFileSync("media/progress.css", "utf8"); // the tests run in the repository's root
  for (let i = 0; i < PALETTE_SIZE; i++) {
    assert.match(css, new RegExp(`--run-${i}:`), `--run-${i}`);
    assert.match(css, new RegExp(`\\.run-c${i} \\{ background: var\\(--run-${i}\\); \\}`), `.run-c${i}`);
  }
  assert.match(css, /body\.vscode-light/);
});

test("an 84-step fine-tune and a 1,000-step pretraining run are drawn on x ranges of their own", () => {
  const runs = { "pretrain-small": pretrainRows(1000), "classify-reviews-train": finetuneRows(84) };
  assert.equal(runKind(runs["pretrain-small"]), "pretraining");
  assert.equal(runKind(runs["classify-reviews-train"]), "fine-tuning");
  const groups = groupRuns(runs);
  assert.deepEqual(groups.map((g) => [g.kind, g.runs]), [["pretraining", ["pretrain-small"]], ["fine-tuning", ["classify-reviews-train"]]]);
  const [pre, fine] = groups.map((g) => planGroup(runs, g.kind, g.runs));
  assert.deepEqual(pre.x.range, [10, 1000]);
  assert.deepEqual(fine.x.range, [4, 84]);
  assert.equal(pre.x.label, "step");
  // Every chart of a group has the group's steps, so that they line up under one another.
  for (const chart of fine.charts) for (const s of chart.series) assert.equal(s.values.length, fine.x.steps.length);
});

test("pretraining runs share their charts: loss, MLM and NSP loss on log axes, accuracies in [0, 1], learning rate, tokens/s", () => {
  const runs = { "pretrain-small": pretrainRows(1000), "pretrain-base": pretrainRows(400) };
  const [group] = groupRuns(runs);
  assert.deepEqual(group.runs, ["pretrain-base", "pretrain-small"]);
  const plan = planGroup(runs, group.kind, group.runs);
  assert.deepEqual(plan.charts.map((c) => [c.title, c.y.label]), [
    ["Loss", "loss"],
    ["MLM loss", "loss"],
    ["NSP loss", "loss"],
    ["MLM accuracy", "accuracy"],
    ["NSP accuracy", "accuracy"],
    ["Learning rate", "learning rate"],
    ["Throughput", "tokens/s"],
  ]);
  const chart = (id: string) => plan.charts.find((c) => c.id === id)!;
  for (const id of ["loss", "mlm_loss", "nsp_loss"]) assert.equal(chart(id).y.distr, 3, `${id} on a log axis`);
  for (const id of ["mlm_acc", "nsp_acc"]) assert.deepEqual([chart(id).y.distr, chart(id).y.range], [1, [0, 1]]);
  assert.equal(chart("lr").y.distr, 1);
  // One line per run and metric: train solid, held-out dashed (drawn where it was measured, null elsewhere).
  const loss = chart("loss");
  assert.deepEqual(loss.series.map((s) => [s.label, s.dash]), [["pretrain-base · train", 0], ["pretrain-base · held-out", 1], ["pretrain-small · train", 0], ["pretrain-small · held-out", 1]]);
  const heldOut = loss.series[3].values.filter((v) => v !== null);
  assert.equal(heldOut.length, 5); // steps 200, 400, … 1,000
  // The 400-step run has no values past its last step.
  assert.equal(loss.series[0].values[plan.x.steps.indexOf(500)], null);
});

test("a log axis fits its losses to a significant digit, not to whole decades", () => {
  assert.deepEqual(logRange(0.47, 2.51), [0.4, 3]);
  assert.deepEqual(logRange(0.05, 0.5), [0.04, 0.6]); // a point at the top is not drawn on the frame
  assert.deepEqual(logRange(0.7, 0.7), [0.6, 0.8]); // one value still gets a range
  assert.deepEqual(logRange(null, null), [0.1, 1]); // no data
});

test("a masked-LM-only run has no MLM-loss chart (it is its loss) and no NSP charts", () => {
  const rows = pretrainRows(100).map(({ nsp_loss: _l, nsp_acc: _a, eval_nsp_loss: _el, eval_nsp_acc: _ea, ...r }) => r);
  const plan = planGroup({ mlm: rows }, "pretraining", ["mlm"]);
  assert.deepEqual(plan.charts.map((c) => c.id), ["loss", "mlm_acc", "lr", "tokens_per_s"]);
});

test("fine-tuning charts: the task's held-out scores in [0, 1], SQuAD's percentages included", () => {
  const runs = {
    "classify-reviews-train": finetuneRows(84),
    "qa-squad-train": finetuneRows(40, (s) => ({ eval_exact_match: s, eval_f1: 1.5 * s, eval_examples: 50 })),
  };
  const plan = planGroup(runs, "fine-tuning", Object.keys(runs));
  assert.deepEqual(plan.charts.map((c) => c.id), ["loss", "score", "lr", "tokens_per_s"]);
  assert.equal(plan.charts[0].y.distr, 3);
  const score = plan.charts[1];
  assert.deepEqual(score.y.range, [0, 1]);
  const values = score.series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  assert.ok(values.every((v) => v >= 0 && v <= 1), "SQuAD's percent drawn as fractions");
  assert.deepEqual(score.series.map((s) => s.label), ["classify-reviews-train · accuracy", "classify-reviews-train · macro F1", "qa-squad-train · F1", "qa-squad-train · exact match"]);
});

test("a run toggled off leaves its group's charts and x range", () => {
  const runs = { long: finetuneRows(800), short: finetuneRows(84) };
  assert.deepEqual(planGroup(runs, "fine-tuning", ["long", "short"]).x.range, [4, 800]);
  const plan = planGroup(runs, "fine-tuning", ["short"]);
  assert.deepEqual(plan.x.range, [4, 84]);
  assert.ok(plan.charts.every((c) => c.series.every((s) => s.run === "short")));
  assert.deepEqual(planGroup(runs, "fine-tuning", []).charts, []);
});

test("the legend's line for a run: latest step, loss and main figure", () => {
  assert.deepEqual(runSummary(pretrainRows(1000)), { kind: "pretraining", step: 1000, loss: 7 / Math.sqrt(1000), metric: { label: "held-out MLM acc", value: 1 / 3 } });
  const qa = runSummary(finetuneRows(40, (s) => ({ eval_exact_match: s, eval_f1: 2 * s })));
  assert.deepEqual(qa.metric, { label: "F1", value: 0.8 });
  assert.equal(runSummary(finetuneRows(84)).metric?.label, "accuracy");
  assert.equal(runSummary([{ step: 3, loss: 1 }]).metric, undefined);
});

test("metrics.jsonl reads as its rows in order; a line cut short while written, or without a step, is left out", () => {
  const text = '{"step":10,"loss":2.5}\n\n{"step":20,"loss":2.1,"eval_accuracy":0.7}\n{"loss":1}\n{"step":30,"lo';
  assert.deepEqual(parseMetricRows(text), [
    { step: 10, loss: 2.5 },
    { step: 20, loss: 2.1, eval_accuracy: 0.7 },
  ]);
});
