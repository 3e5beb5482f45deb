// Full parity with the Hugging Face fixtures: forward outputs, losses, every gradient, three AdamW steps.
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { runParity } from "../../server/parity.js";

const FIXTURES = path.resolve(process.cwd(), "../shared/fixtures/hf");
const dirs = [path.join(FIXTURES, "pretraining"), ...readdirSync(path.join(FIXTURES, "heads")).map((d) => path.join(FIXTURES, "heads", d))];

for (const dir of dirs) {
  test(`parity with HF: ${path.relative(FIXTURES, dir)}`, async () => {
    const report = await runParity(dir);
    for (const [group, r] of Object.entries(report.groups)) {
      assert.ok(r!.checked > 0, `${group}: nothing checked`);
      assert.ok(r!.ratio <= 1, `${group}: worst error ${r!.worst} at ${r!.at} is ${r!.ratio.toFixed(2)}x the tolerance`);
    }
    assert.ok(report.ok);
    if (dir.endsWith("pretraining")) assert.ok(report.groups.steps, "pretraining fixture checks the AdamW steps");
  });
}
