import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { getScheduler, SCHEDULE_NAMES, ScheduleError } from "../../server/training/schedules.js";

const fixture = JSON.parse(readFileSync(path.resolve(process.cwd(), "../shared/fixtures/hf/schedulers.json"), "utf8")) as {
  base_lr: number;
  warmup_steps: number;
  total_steps: number;
  schedules: Record<string, { kwargs: Record<string, number>; lr: number[] }>;
};

test("fixture covers every schedule", () => {
  assert.deepEqual(Object.keys(fixture.schedules).sort(), [...SCHEDULE_NAMES].sort());
});

for (const [name, { kwargs, lr }] of Object.entries(fixture.schedules)) {
  test(`schedule ${name} matches transformers.get_scheduler at every step`, () => {
    const schedule = getScheduler(name, fixture.base_lr, {
      warmupSteps: fixture.warmup_steps,
      trainingSteps: fixture.total_steps,
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
