// Full parity with the Hugging Face fixtures: forward outputs, losses, every gradient, three AdamW steps;
// on test/fixtures/hf (copied from HF, see its README) and on fixtures of other shapes, seeds and vocabularies (test/fixtures/hf-generated).
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { readSafetensors, toFloat32, writeSafetensors } from "../../server/model/safetensors.js";
import { runParity } from "../../server/dev/parity.js";

const FIXTURES = path.resolve(process.cwd(), "test/fixtures/hf");
const GENERATED = path.resolve(process.cwd(), "test/fixtures/hf-generated");
// Named, not listed from the folders: a missing fixture fails its own test, not the loading of this file.
const FIXTURE_NAMES = ["pretraining", "heads/sequence_classification", "heads/token_classification", "heads/question_answering", "heads/multiple_choice"];
const fixtureDirs = (root: string) => FIXTURE_NAMES.map((name) => path.join(root, name));

for (const dir of [...fixtureDirs(FIXTURES), ...fixtureDirs(GENERATED)]) {
  test(`parity with HF: ${dir.startsWith(GENERATED) ? "generated" : "hf"}/${path.relative(dir.startsWith(GENERATED) ? GENERATED : FIXTURES, dir)}`, async () => {
    const report = await runParity(dir);
    for (const [group, r] of Object.entries(report.groups)) {
      assert.ok(r!.checked > 0, `${group}: nothing checked`);
      assert.ok(r!.ratio <= 1, `${group}: worst error ${r!.worst} at ${r!.at} is ${r!.ratio.toFixed(2)}x the tolerance`);
    }
    assert.ok(report.ok);
    if (dir.endsWith("pretraining")) assert.ok(report.groups.steps, "pretraining fixture checks the AdamW steps");
  });
}

test("parity fails on a step off by more than its tolerance; a noise-sized gradient's element may be off by up to steps x lr", async () => {
  const name = "bert.encoder.layer.1.attention.self.value.weight";
  const expected = (await readSafetensors(path.join(GENERATED, "pretraining/expected.safetensors"))).tensors;
  const grad = toFloat32(expected.get(`grad.${name}`)!);
  const step3 = toFloat32(expected.get(`step3.${name}`)!);
  const maxW = Math.max(...step3.map(Math.abs));
  const noise = grad.findIndex((g) => Math.abs(g) < 1e-7); // the fixture's noise-sized gradient element
  const normal = grad.findIndex((g) => Math.abs(g) > 1e-3);
  assert.ok(noise >= 0 && normal >= 0);
  const perturbed = async (at: number, by: number) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "parity-"));
    cpSync(path.join(GENERATED, "pretraining"), dir, { recursive: true });
    const w = step3.slice();
    w[at] += by;
    const tensors = new Map(expected);
    tensors.set(`step3.${name}`, { dtype: "F32", shape: expected.get(`step3.${name}`)!.shape, data: new Uint8Array(w.buffer) });
    await writeSafetensors(path.join(dir, "expected.safetensors"), tensors);
    try {
      return (await runParity(dir)).groups.steps!;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const off = await perturbed(normal, 3e-4 * maxW);
  assert.ok(off.ratio > 1 && off.at === `step3.${name}`, JSON.stringify(off));
  const noisy = await perturbed(noise, 0.004); // lr 0.005, 3 steps
  assert.ok(noisy.ratio <= 1, JSON.stringify(noisy));
});
