// The progress view's rule for a run's rows, shared by the extension host and the page.
import assert from "node:assert/strict";
import { test } from "node:test";
import { appendRow, type MetricRow } from "../../common/webview.js";

test("a resumed run's rows replace the ones from its checkpoint's step on; new steps are appended", () => {
  const rows: MetricRow[] = [10, 20, 30, 40].map((step) => ({ step, loss: 5 - step / 10 }));
  appendRow(rows, { step: 50, loss: 0.9 });
  assert.deepEqual(rows.map((r) => r.step), [10, 20, 30, 40, 50]);
  appendRow(rows, { step: 30, loss: 2.5 }); // resumed from the checkpoint at step 20
  assert.deepEqual(rows.map((r) => [r.step, r.loss]), [[10, 4], [20, 3], [30, 2.5]]);
});
