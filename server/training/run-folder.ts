// A training run's folder: an HF checkpoint folder (config.json, model.safetensors, vocab.txt,
// tokenizer.json) plus optimizer.safetensors (Adam moments), trainer_state.json, metrics.jsonl and
// TensorBoard event files. Shared by pretraining and fine-tuning.
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { readConfig, writeConfig, type BertConfig } from "../model/config.js";
import type { Task } from "../model/heads.js";
import { loadParams, ParamStore, paramShapes, requireComplete } from "../model/params.js";
import { readSafetensors, writeSafetensors } from "../model/safetensors.js";
import { saveParams } from "../model/params.js";
import { writeFileAtomic } from "../util/fs.js";
import { EventWriter } from "./tensorboard.js";
import type { BertTokenizer } from "./tokenizer.js";

export interface Metrics {
  step: number;
  [name: string]: number;
}

export async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(() => true, () => false);
}

/** Whether `dir` holds a run that can be resumed. */
export function hasRun(dir: string): Promise<boolean> {
  return exists(path.join(dir, "trainer_state.json"));
}

/**
 * Writes the model as an HF folder (config, tokenizer, weights); each file atomically, the weights last:
 * a reader that reloads when model.safetensors changes (the server's fill-mask) then finds the config and
 * tokenizer that belong to it already in place.
 */
export async function saveModel(dir: string, cfg: BertConfig, params: ParamStore, tok: BertTokenizer): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  await writeConfig(dir, cfg);
  await tok.save(dir);
  await saveParams(params, path.join(dir, "model.safetensors"));
}

/** The model folder plus Adam moments and the trainer's state: everything a resume needs. */
export async function saveCheckpoint(dir: string, cfg: BertConfig, opt: { params: ParamStore; m: ParamStore; v: ParamStore }, tok: BertTokenizer, state: object): Promise<void> {
  await saveModel(dir, cfg, opt.params, tok);
  await writeSafetensors(
    path.join(dir, "optimizer.safetensors"),
    opt.params.specs.flatMap((s) => [
      [`m.${s.name}`, { dtype: "F32" as const, shape: s.shape, data: opt.m.view(s.name) }],
      [`v.${s.name}`, { dtype: "F32" as const, shape: s.shape, data: opt.v.view(s.name) }],
    ]),
  );
  await writeFileAtomic(path.join(dir, "trainer_state.json"), JSON.stringify(state, null, 2) + "\n");
}

/** Reads what `saveCheckpoint` wrote; any problem is an error naming the file. */
export async function loadCheckpoint<S>(dir: string, task: Task): Promise<{ cfg: BertConfig; params: ParamStore; m: ParamStore; v: ParamStore; state: S }> {
  const cfg = await readConfig(dir);
  const params = ParamStore.fromShapes(paramShapes(cfg, task));
  requireComplete(loadParams(params, (await readSafetensors(path.join(dir, "model.safetensors"))).tensors, "model.safetensors"), dir);
  const moments = (await readSafetensors(path.join(dir, "optimizer.safetensors"))).tensors;
  const m = params.like();
  const v = params.like();
  for (const [prefix, store] of [["m.", m], ["v.", v]] as const) {
    const named = new Map([...moments].filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k.slice(2), t]));
    requireComplete(loadParams(store, named, "optimizer.safetensors"), `${dir}/optimizer.safetensors`);
  }
  const state = JSON.parse(await fs.readFile(path.join(dir, "trainer_state.json"), "utf8")) as S;
  return { cfg, params, m, v, state };
}

/** metrics.jsonl (one JSON object per logged step) and TensorBoard scalars, written together. */
export class MetricsLog {
  private constructor(
    private readonly file: string,
    private readonly events: EventWriter,
  ) {}

  /** Opens the run's log; a new run (not `resume`) starts metrics.jsonl afresh. */
  static async open(dir: string, resume: boolean): Promise<MetricsLog> {
    const file = path.join(dir, "metrics.jsonl");
    if (!resume) await fs.rm(file, { force: true });
    return new MetricsLog(file, await EventWriter.create(dir));
  }

  async write(row: Metrics): Promise<void> {
    await fs.appendFile(this.file, JSON.stringify(row) + "\n");
    await this.events.scalars(row.step, Object.fromEntries(Object.entries(row).filter(([k, v]) => k !== "step" && k !== "epoch" && typeof v === "number")));
  }
}
