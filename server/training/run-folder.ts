// A training run's folder: an HF checkpoint folder (config.json, model.safetensors, vocab.txt,
// tokenizer.json) plus optimizer.safetensors (Adam moments), trainer_state.json, metrics.jsonl,
// TensorBoard event files and, once the run has ended, outcome.json. Shared by pretraining and fine-tuning.
import { promises as fs } from "node:fs";
import * as path from "node:path";
import type { RunOutcome } from "../../common/protocol.js";
import { writeConfig, type BertConfig } from "../model/config.js";
import { loadModelFolder } from "../model/folder.js";
import type { Head } from "../model/heads.js";
import { CheckpointError, loadParams, requireComplete, saveParams, type ParamStore } from "../model/params.js";
import { readSafetensors, writeSafetensors } from "../model/safetensors.js";
import { exists, folderBytes, writeFileAtomic } from "../util/fs.js";
import { DivergedError } from "./optimizer.js";
import { RunLock } from "./run-lock.js";
import { EventWriter } from "./tensorboard.js";
import type { BertTokenizer } from "../text/tokenizer.js";

export interface Metrics {
  step: number;
  [name: string]: number;
}


/** Whether `dir` holds a run that can be resumed. */
export function hasRun(dir: string): Promise<boolean> {
  return exists(path.join(dir, "trainer_state.json"));
}

// A checkpoint is written as one set: every file goes to RUN/.checkpoint-staging (each fsynced), then a
// COMMIT.json naming the files is written there (the commit point), then the files are renamed into RUN
// (the weights last) and RUN is fsynced. A process killed before the commit leaves the old checkpoint as
// it was; one killed after it has its renames completed by the next process that takes the run's lock
// (recoverRunFolder). model.safetensors and optimizer.safetensors also carry the step in their metadata,
// and loading checks it against trainer_state.json.
const STAGING = ".checkpoint-staging";
const COMMIT = "COMMIT.json";
/** Renamed in this order: a reader keyed on the weights (the server's fill-mask) finds the rest in place. */
const LAST = ["trainer_state.json", "model.safetensors"];

let writing = 0;
const written: (() => void)[] = [];

/** Resolves when no checkpoint is being written in this process (a second Ctrl-C waits for this). */
export function checkpointsWritten(): Promise<void> {
  return writing === 0 ? Promise.resolve() : new Promise((r) => written.push(r));
}

async function fsyncPath(p: string): Promise<void> {
  const h = await fs.open(p, "r");
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** Writes files into `dir` as one set (see above): `write` puts them into the staging folder it is given. */
async function commitSet(dir: string, write: (staging: string) => Promise<void>, meta: object): Promise<void> {
  writing++;
  try {
    const staging = path.join(dir, STAGING);
    await fs.rm(staging, { recursive: true, force: true });
    await fs.mkdir(staging, { recursive: true });
    await write(staging);
    const rank = (f: string) => LAST.indexOf(f);
    const files = (await fs.readdir(staging)).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
    for (const f of files) await fsyncPath(path.join(staging, f)); // tokenizer.json is written by Rust, unsynced
    await writeFileAtomic(path.join(staging, COMMIT), JSON.stringify({ ...meta, files }) + "\n");
    await fsyncPath(staging);
    await applyCommit(dir, files);
  } finally {
    if (--writing === 0) for (const r of written.splice(0)) r();
  }
}

async function applyCommit(dir: string, files: string[]): Promise<void> {
  const staging = path.join(dir, STAGING);
  for (const f of files) {
    await fs.rename(path.join(staging, f), path.join(dir, f)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== "ENOENT") throw e; // renamed already, by a commit that was interrupted
    });
  }
  await fsyncPath(dir);
  await fs.rm(staging, { recursive: true, force: true });
}

/**
 * Finishes or undoes what a killed process left in `dir` (and `dir/best`): a committed checkpoint is
 * completed, an uncommitted one and `*.tmp-*` files are removed. Only for the holder of the run's lock.
 * Returns what was done, for the log.
 */
export async function recoverRunFolder(dir: string): Promise<string[]> {
  const done: string[] = [];
  for (const d of [dir, path.join(dir, "best")]) {
    const staging = path.join(d, STAGING);
    const commit = await fs.readFile(path.join(staging, COMMIT), "utf8").then((t) => JSON.parse(t) as { files: string[]; step?: number }, () => undefined);
    if (commit) {
      await applyCommit(d, commit.files);
      done.push(`completed the checkpoint${commit.step === undefined ? "" : ` of step ${commit.step}`} in ${d} that a stopped process had committed`);
    } else if (await exists(staging)) {
      const mb = (await folderBytes(staging)) / 1048576;
      await fs.rm(staging, { recursive: true, force: true });
      done.push(`removed a half-written checkpoint (${mb.toFixed(0)} MB) that a stopped process left in ${d}; the checkpoint before it is intact`);
    }
    for (const f of await fs.readdir(d).catch(() => [])) {
      if (/\.tmp-\d+$/.test(f)) {
        await fs.rm(path.join(d, f), { force: true });
        done.push(`removed ${path.join(d, f)}, left by a stopped process`);
      }
    }
  }
  return done;
}

/** The first parameter that is NaN or infinite, if any: such weights are never written. */
function nonFinite(store: ParamStore): string | undefined {
  for (const s of store.specs) {
    const data = store.view(s.name);
    for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return s.name;
  }
  return undefined;
}

function requireFinite(stores: [string, ParamStore][]): void {
  for (const [what, store] of stores) {
    const bad = nonFinite(store);
    if (bad) throw new DivergedError(`${what} ${bad} holds NaN or infinite values; the checkpoint was not written`);
  }
}

async function writeModelFiles(dir: string, cfg: BertConfig, params: ParamStore, tok: BertTokenizer, step?: number): Promise<void> {
  await writeConfig(dir, cfg);
  await tok.save(dir);
  await saveParams(params, path.join(dir, "model.safetensors"), step === undefined ? {} : { step: String(step) });
}

/** Writes the model as an HF folder (config, tokenizer, weights) as one set: see commitSet. */
export async function saveModel(dir: string, cfg: BertConfig, params: ParamStore, tok: BertTokenizer, step?: number): Promise<void> {
  requireFinite([["parameter", params]]);
  await fs.mkdir(dir, { recursive: true });
  await commitSet(dir, (staging) => writeModelFiles(staging, cfg, params, tok, step), { step });
}

/** The model folder plus Adam moments and the trainer's state: everything a resume needs, as one set. */
export async function saveCheckpoint<S extends { step: number }>(dir: string, cfg: BertConfig, opt: { params: ParamStore; m: ParamStore; v: ParamStore }, tok: BertTokenizer, state: S): Promise<void> {
  requireFinite([["parameter", opt.params], ["Adam moment m of", opt.m], ["Adam moment v of", opt.v]]);
  await commitSet(
    dir,
    async (staging) => {
      await writeModelFiles(staging, cfg, opt.params, tok, state.step);
      await writeSafetensors(
        path.join(staging, "optimizer.safetensors"),
        opt.params.specs.flatMap((s) => [
          [`m.${s.name}`, { dtype: "F32" as const, shape: s.shape, data: opt.m.view(s.name) }],
          [`v.${s.name}`, { dtype: "F32" as const, shape: s.shape, data: opt.v.view(s.name) }],
        ]),
        { format: "pt", step: String(state.step) },
      );
      await writeFileAtomic(path.join(staging, "trainer_state.json"), JSON.stringify(state, null, 2) + "\n");
    },
    { step: state.step },
  );
}

/** Reads what `saveCheckpoint` wrote; any problem is an error naming the file. */
export async function loadCheckpoint<S extends { step: number }>(dir: string, task: Head, tok: BertTokenizer): Promise<{ cfg: BertConfig; params: ParamStore; m: ParamStore; v: ParamStore; state: S }> {
  const { cfg, params, metadata } = await loadModelFolder(dir, { head: task, tokenizer: tok });
  const optimizer = await readSafetensors(path.join(dir, "optimizer.safetensors"));
  const m = params.like();
  const v = params.like();
  for (const [prefix, store] of [["m.", m], ["v.", v]] as const) {
    const named = new Map([...optimizer.tensors].filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k.slice(2), t]));
    requireComplete(loadParams(store, named, "optimizer.safetensors"), `${dir}/optimizer.safetensors`);
  }
  const state = JSON.parse(await fs.readFile(path.join(dir, "trainer_state.json"), "utf8")) as S;
  for (const [file, meta] of [["model.safetensors", metadata], ["optimizer.safetensors", optimizer.metadata]] as const) {
    if (meta.step !== undefined && Number(meta.step) !== state.step) {
      throw new CheckpointError(`${dir}: ${file} is from step ${meta.step} but trainer_state.json from step ${state.step} (files of two checkpoints)`);
    }
  }
  return { cfg, params, m, v, state };
}

/** `<run>/outcome.json`: how the run ended (common/protocol.ts RunOutcome), for the Runs view. */
export const OUTCOME = "outcome.json";

/** Writes `<dir>/outcome.json` atomically (the training loop does, as a run ends). */
export async function writeOutcome(dir: string, outcome: RunOutcome): Promise<void> {
  await writeFileAtomic(path.join(dir, OUTCOME), JSON.stringify(outcome, null, 2) + "\n");
}

/** `<dir>/outcome.json`, if it has one that reads. */
export async function readOutcome(dir: string): Promise<RunOutcome | undefined> {
  return fs.readFile(path.join(dir, OUTCOME), "utf8").then((t) => JSON.parse(t) as RunOutcome, () => undefined);
}

/**
 * Runs `train` holding `dir`'s lock (created with `dir`), after completing or undoing what a killed
 * process left there. A folder this call created and nothing was written to is removed again.
 *
 * An earlier run's outcome.json is taken away first (a run in training has none); the training loop writes
 * the new one as the run ends, however it ends. A run that fails before its loop begins (bad input, a
 * checkpoint that does not load) has left the folder as it was: the earlier outcome.json is put back.
 */
export async function withRunLock<R>(dir: string, what: string, say: (m: string) => void, train: () => Promise<R>): Promise<R> {
  const created = !(await exists(dir));
  const lock = await RunLock.acquire(dir, what);
  try {
    for (const m of await recoverRunFolder(dir)) say(m);
    const file = path.join(dir, OUTCOME);
    const earlier = await fs.readFile(file).catch(() => undefined);
    await fs.rm(file, { force: true });
    try {
      return await train();
    } catch (e) {
      if (earlier && !(await exists(file))) await writeFileAtomic(file, earlier).catch(() => undefined);
      throw e;
    }
  } finally {
    await lock.release();
    if (created) await fs.rmdir(dir).catch(() => undefined); // fails unless empty
  }
}

/** metrics.jsonl (one JSON object per logged step) and TensorBoard scalars, written together. */
export class MetricsLog {
  private constructor(
    /** The run folder. */
    readonly dir: string,
    private readonly file: string,
    private readonly events: EventWriter,
  ) {}

  /**
   * Opens the run's log. A new run starts metrics.jsonl afresh; a run resumed from the checkpoint of step
   * `resumeStep` drops the rows logged after it (by a process killed between checkpoints), so no step
   * appears twice, and tells TensorBoard to drop its events after it too.
   */
  static async open(dir: string, resumeStep?: number): Promise<MetricsLog> {
    const file = path.join(dir, "metrics.jsonl");
    if (resumeStep === undefined) await fs.rm(file, { force: true });
    else {
      const text = await fs.readFile(file, "utf8").catch(() => "");
      const lines = text.split("\n").filter((l) => l.trim());
      const kept = lines.filter((l) => {
        try {
          return (JSON.parse(l) as Metrics).step <= resumeStep;
        } catch {
          return false; // a line cut short by a kill
        }
      });
      if (kept.length !== lines.length) await writeFileAtomic(file, kept.map((l) => l + "\n").join(""));
    }
    return new MetricsLog(dir, file, await EventWriter.create(dir, resumeStep));
  }

  /** Appends a row; a NaN or infinite value (which JSON would write as null) is an error, not a row. */
  async write(row: Metrics): Promise<void> {
    const bad = Object.entries(row).find(([, v]) => typeof v === "number" && !Number.isFinite(v));
    if (bad) throw new DivergedError(`training diverged: ${bad[0]} is ${bad[1]} at step ${row.step}`);
    await fs.appendFile(this.file, JSON.stringify(row) + "\n");
    await this.events.scalars(row.step, Object.fromEntries(Object.entries(row).filter(([k, v]) => k !== "step" && k !== "epoch" && typeof v === "number")));
  }
}
