// ONNX Runtime's profile of a session (SessionOptions.enableProfiling: a JSON array of trace events, one
// per run and one per node run) summed by op type: where a training step's time goes.
import { promises as fs } from "node:fs";
import * as path from "node:path";

export interface OpTime {
  op: string;
  /** Milliseconds per run in this op's kernels. */
  ms: number;
  /** Share of the kernels' time. */
  share: number;
  /** Nodes of this op per run. */
  nodes: number;
}

export interface ProfileSummary {
  file: string;
  /** Runs summed (those after the skipped ones). */
  runs: number;
  /** Mean wall time of those runs, ms. */
  run_ms: number;
  /** By op type, most time first. */
  ops: OpTime[];
}

interface TraceEvent {
  cat?: string;
  name: string;
  ts: number;
  dur: number;
  args?: { op_name?: string };
}

/** Sums the profile `file` by op type over its runs after the first `skip` (warm-up). */
export async function summarizeProfile(file: string, skip: number): Promise<ProfileSummary> {
  const events = JSON.parse(await fs.readFile(file, "utf8")) as TraceEvent[];
  const runs = events.filter((e) => e.cat === "Session" && e.name === "model_run").sort((a, b) => a.ts - b.ts);
  const kept = runs.slice(skip);
  if (kept.length === 0) throw new Error(`${file}: no run after the first ${skip}`);
  const from = kept[0].ts;
  const time = new Map<string, { us: number; nodes: number }>();
  for (const e of events) {
    if (e.cat !== "Node" || !e.name.endsWith("_kernel_time") || e.ts < from) continue;
    const op = e.args?.op_name ?? "?";
    const t = time.get(op) ?? { us: 0, nodes: 0 };
    t.us += e.dur;
    t.nodes++;
    time.set(op, t);
  }
  const total = [...time.values()].reduce((a, t) => a + t.us, 0);
  const ops = [...time].map(([op, t]) => ({ op, ms: t.us / kept.length / 1000, share: t.us / total, nodes: Math.round(t.nodes / kept.length) })).sort((a, b) => b.ms - a.ms);
  return { file, runs: kept.length, run_ms: kept.reduce((a, r) => a + r.dur, 0) / kept.length / 1000, ops };
}

/** The newest profile ORT wrote with the prefix `prefix` (it appends the date and `.json`). */
export async function newestProfile(prefix: string): Promise<string> {
  const dir = path.dirname(prefix);
  const base = path.basename(prefix);
  const files = (await fs.readdir(dir)).filter((f) => f.startsWith(`${base}_`) && f.endsWith(".json"));
  if (files.length === 0) throw new Error(`ONNX Runtime wrote no profile ${prefix}_*.json`);
  const stats = await Promise.all(files.map(async (f) => ({ f, t: (await fs.stat(path.join(dir, f))).mtimeMs })));
  return path.join(dir, stats.sort((a, b) => b.t - a.t)[0].f);
}
