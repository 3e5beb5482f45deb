import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { SCHEDULE_NAMES } from "../../common/settings.js";
import { getScheduler, ScheduleError } from "../../server/training/schedules.js";

interface Fixture {
  base_lr: number;
  warmup_steps: number;
  total_steps: number;
  schedules: Record<string, { kwargs: Record<string, number>; lr: number[] }>;
}
let loaded: Fixture | undefined;
/** Read in the tests (not at load): a missing fixture fails the tests that need it. */
const fixture = () => (loaded ??= JSON.parse(readFileSync(path.resolve(process.cwd(), "test/fixtures/hf/schedulers.json"), "utf8")) as Fixture);

test("fixture covers every schedule", () => {
  assert.deepEqual(Object.keys(fixture().schedules).sort(), [...SCHEDULE_NAMES].sort());
});

for (const name of SCHEDULE_NAMES) {
  test(`schedule ${name} matches transformers.get_scheduler at every step`, () => {
    const { kwargs, lr } = fixture().schedules[name];
    const schedule = getScheduler(name, fixture().base_lr, {
      warmupSteps: fixture().warmup_steps,
      trainingSteps: fixture().total_steps,
      numCycles: kwargs.num_cycles,
      power: kwargs.power,
      lrEnd: kwargs.lr_end,
    });
    lr.forEach((want, step) => {
      const got = schedule(step);
      const rel = Math.abs(got - want) / Math.max(Math.abs(want), 1e-30);
      assert.ok(rel < 1e-9 || (want === 0 && got === 0), `${name} step ${step}: ${got} vs ${want}`);
    });
  });
}

test("unknown schedule names list the valid ones", () => {
  assert.throws(() => getScheduler("cosine_annealing", 1e-3, { trainingSteps: 10 }), (e: Error) => e instanceof ScheduleError && e.message.includes("linear, cosine"));
  assert.throws(() => getScheduler("linear", 1e-3, {}), /training steps/);
});
