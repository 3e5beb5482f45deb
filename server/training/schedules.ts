// Learning-rate schedules as Hugging Face transformers' `get_scheduler` (optimization.py): each returns
// the learning rate for optimizer step `step` (0-based), as LambdaLR would set it.
import { SCHEDULE_NAMES, type ScheduleName } from "../../common/settings.js";


export class ScheduleError extends Error {}

export interface SchedulerOptions {
  warmupSteps?: number;
  trainingSteps?: number;
  /** cosine: 0.5 (half a wave); cosine_with_restarts: number of hard restarts (default 1). */
  numCycles?: number;
  /** polynomial */
  power?: number;
  lrEnd?: number;
}

export type Schedule = (step: number) => number;

export function getScheduler(name: string, baseLr: number, opts: SchedulerOptions = {}): Schedule {
  if (!(SCHEDULE_NAMES as readonly string[]).includes(name)) {
    throw new ScheduleError(`unknown schedule ${JSON.stringify(name)}; choose one of ${SCHEDULE_NAMES.join(", ")}`);
  }
  const warmup = opts.warmupSteps ?? 0;
  if (!Number.isInteger(warmup) || warmup < 0) throw new ScheduleError(`warmup steps must be a non-negative integer, got ${warmup}`);
  const needsTotal = name !== "constant" && name !== "constant_with_warmup";
  const total = opts.trainingSteps ?? NaN;
  if (needsTotal && !(Number.isInteger(total) && total > 0)) {
    throw new ScheduleError(`schedule ${name} needs the number of training steps (a positive integer), got ${opts.trainingSteps}`);
  }
  const lambda = multiplier(name as ScheduleName, warmup, total, opts, baseLr);
  return (step: number) => baseLr * lambda(step);
}

function multiplier(name: ScheduleName, warmup: number, total: number, opts: SchedulerOptions, baseLr: number): Schedule {
  const warm = (step: number) => step / Math.max(1, warmup);
  switch (name) {
    case "constant":
      return () => 1;
    case "constant_with_warmup":
      return (s) => (s < warmup ? warm(s) : 1);
    case "linear":
      return (s) => (s < warmup ? warm(s) : Math.max(0, (total - s) / Math.max(1, total - warmup)));
    case "cosine": {
      const cycles = opts.numCycles ?? 0.5;
      return (s) => {
        if (s < warmup) return warm(s);
        const progress = (s - warmup) / Math.max(1, total - warmup);
        return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * progress)));
      };
    }
    case "cosine_with_restarts": {
      const cycles = opts.numCycles ?? 1;
      return (s) => {
        if (s < warmup) return warm(s);
        const progress = (s - warmup) / Math.max(1, total - warmup);
        if (progress >= 1) return 0;
        return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * ((cycles * progress) % 1))));
      };
    }
    case "polynomial": {
      const lrEnd = opts.lrEnd ?? 1e-7;
      const power = opts.power ?? 1;
      if (!(baseLr > lrEnd)) throw new ScheduleError(`polynomial schedule: lr_end (${lrEnd}) must be smaller than the initial lr (${baseLr})`);
      return (s) => {
        if (s < warmup) return warm(s);
        if (s > total) return lrEnd / baseLr;
        const remaining = 1 - (s - warmup) / (total - warmup);
        return ((baseLr - lrEnd) * remaining ** power + lrEnd) / baseLr;
      };
    }
  }
}
