// What the extension writes, without VS Code: a job's progress line (status item and notification) and the
// surprising-tokens heat map's levels and request chunks.
import assert from "node:assert/strict";
import { test } from "node:test";
import { describeProgress, formatEta, formatLoss } from "../../client/progress-text.js";
import { chunks, level, LEVELS, thresholds } from "../../client/surprise-levels.js";

test("a job's progress line: starting before its first row, no total while unknown, then step, share, loss and time left", () => {
  assert.equal(describeProgress(undefined), "starting");
  assert.equal(describeProgress({ row: { step: 5, loss: 7.5 }, steps: 0 }), "step 5 · loss 7.500");
  assert.equal(describeProgress({ row: { step: 120, loss: 3.2141 }, steps: 1000, eta_s: 130 }), "step 120/1,000 (12%) · loss 3.214 · 2 min left");
  // A diverged step's loss arrives as null (JSON has no NaN).
  assert.equal(formatLoss(null), "n/a");
  assert.deepEqual([formatEta(0.2), formatEta(45), formatEta(600), formatEta(9000), formatEta(undefined)], ["1 s", "45 s", "10 min", "2.5 h", ""]);
});

test("the heat map marks the document's most surprising words that are surprising in themselves", () => {
  // A young model, surprised by everything: only the top shares are marked, the worst at the top level.
  const young = Array.from({ length: 100 }, (_, i) => 20 + i / 10);
  const bounds = thresholds(young);
  const marked = LEVELS.map((_, l) => young.filter((b) => level(b, bounds) === l).length);
  assert.deepEqual(marked, [10, 5, 3, 2]);
  // A model that reads the text well: nothing over 4 bits, nothing marked, whatever the shares say.
  const fluent = Array.from({ length: 100 }, (_, i) => i / 30);
  const calm = thresholds(fluent);
  assert.ok(fluent.every((b) => level(b, calm) === -1));
});

test("a document is sent in chunks of whole lines that cover it exactly", () => {
  const text = Array.from({ length: 300 }, (_, i) => `line ${i} of the document, with some words in it`).join("\n");
  const parts = chunks(text, 2000);
  assert.ok(parts.length > 1);
  assert.equal(parts.map(([, t]) => t).join(""), text);
  for (const [offset, t] of parts) assert.equal(text.slice(offset, offset + t.length), t);
  assert.ok(parts.slice(0, -1).every(([, t]) => t.endsWith("\n") && t.length <= 2000));
  assert.deepEqual(chunks("x".repeat(2500), 2000).map(([o, t]) => [o, t.length]), [[0, 2000], [2000, 500]], "a line longer than a chunk is cut");
});
