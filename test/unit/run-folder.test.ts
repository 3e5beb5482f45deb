// A run folder's guarantees: one process trains into it at a time, a checkpoint is written as one set (a
// killed process leaves either the old one or the new one), a resumed run's metrics have each step once,
// and a run that diverges writes nothing of it.
import "./isolated-cache.js";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { readSafetensors, toFloat32 } from "../../server/model/safetensors.js";
import { DivergedError } from "../../server/training/optimizer.js";
import { pretrain, type PretrainOptions } from "../../server/pretraining/pretrain.js";
import { loadCheckpoint, MetricsLog, recoverRunFolder } from "../../server/training/run-folder.js";
import { BertTokenizer } from "../../server/text/tokenizer.js";
import { LOCK_FILE, RunLock, RunLockedError, runLockHolder } from "../../server/training/run-lock.js";
import { tinyRun, VOCAB, workspace as corpusWorkspace } from "./pretrain-workspace.js";

/** Checkpoints every 2 steps, a row every step. */
const options = (dir: string, extra: Partial<PretrainOptions> = {}) => tinyRun(dir, { steps: 4, evalEvery: 100, checkpointEvery: 2, logEvery: 1, ...extra });

const rows = (run: string) =>
  readFileSync(path.join(run, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, number>);

/** The pid of a process that has exited: a lock it held is stale. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(r.stdout);
}

test("a run folder being trained into is refused to a second trainer, naming the holder; a stale lock is taken over", async () => {
  const dir = corpusWorkspace("run-folder-");
  const run = path.join(dir, "run");
  const lock = await RunLock.acquire(run, "pretrain");
  try {
    await assert.rejects(pretrain(options(dir)), (e: Error) => e instanceof RunLockedError && e.message.includes(`pretrain (pid ${process.pid})`));
    assert.equal((await runLockHolder(run))?.pid, process.pid);
    // From another process (the CLI), as from another VS Code window.
    const r = spawnSync(process.execPath, ["bin/bert-studio.js", "pretrain", path.join(dir, "corpus"), "--out", run, "--vocab", VOCAB, "--steps", "2", "--resume"], { encoding: "utf8" });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`is in use: pretrain \\(pid ${process.pid}\\) has been training into it since`));
  } finally {
    await lock.release();
  }
  assert.equal(existsSync(path.join(run, LOCK_FILE)), false, "released");
  writeFileSync(path.join(run, LOCK_FILE), JSON.stringify({ pid: deadPid(), host: os.hostname(), since: "2026-01-01T00:00:00Z", what: "pretrain" }));
  assert.equal(await runLockHolder(run), undefined, "a lock whose process is gone is stale");
  const done = await pretrain(options(dir, { steps: 2 }));
  assert.equal(done.step, 2);
  assert.equal(existsSync(path.join(run, LOCK_FILE)), false, "released at the end");
});

test("a checkpoint killed before its commit leaves the previous one; after it, the next start completes it", async () => {
  const dir = corpusWorkspace("run-folder-");
  const run = path.join(dir, "run");
  await pretrain(options(dir, { steps: 2 }));
  const step2 = readFileSync(path.join(run, "model.safetensors"));
  // The step-4 checkpoint of the same run, made elsewhere: what a killed writer had staged.
  const other = mkdtempSync(path.join(os.tmpdir(), "run-folder-"));
  cpSync(dir, other, { recursive: true });
  await pretrain(options(other, { steps: 4, resume: true }));
  const staged = (commit: boolean) => {
    const staging = path.join(run, ".checkpoint-staging");
    mkdirSync(staging, { recursive: true });
    const files = ["config.json", "vocab.txt", "tokenizer.json", "optimizer.safetensors", "trainer_state.json", "model.safetensors"];
    for (const f of files) cpSync(path.join(other, "run", f), path.join(staging, f));
    if (commit) writeFileSync(path.join(staging, "COMMIT.json"), JSON.stringify({ step: 4, files }));
    writeFileSync(path.join(run, "model.safetensors.tmp-12345"), "half a file");
  };

  staged(false); // killed while staging
  const undone = await recoverRunFolder(run);
  assert.match(undone.join("\n"), /removed a half-written checkpoint .* the checkpoint before it is intact/);
  assert.match(undone.join("\n"), /removed .*model\.safetensors\.tmp-12345/);
  assert.deepEqual(readFileSync(path.join(run, "model.safetensors")), step2);
  assert.equal((await loadCheckpoint<{ step: number }>(run, "masked_lm", await BertTokenizer.fromDir(run))).state.step, 2);
  assert.deepEqual(readdirSync(run).filter((f) => f.startsWith(".checkpoint") || f.includes(".tmp-")), []);

  staged(true); // killed after the commit, two files already renamed
  for (const f of ["config.json", "optimizer.safetensors"]) renameSync(path.join(run, ".checkpoint-staging", f), path.join(run, f));
  await assert.rejects(loadCheckpoint(run, "masked_lm", await BertTokenizer.fromDir(run)), /optimizer\.safetensors is from step 4 but trainer_state\.json from step 2 \(files of two checkpoints\)/);
  assert.match((await recoverRunFolder(run)).join("\n"), /completed the checkpoint of step 4/);
  assert.equal((await loadCheckpoint<{ step: number }>(run, "masked_lm", await BertTokenizer.fromDir(run))).state.step, 4);
  assert.deepEqual(readFileSync(path.join(run, "model.safetensors")), readFileSync(path.join(other, "run/model.safetensors")));

  // The trainer recovers by itself when it takes the lock.
  staged(false);
  const messages: string[] = [];
  const resumed = await pretrain(options(dir, { steps: 6, resume: true, onMessage: (m) => messages.push(m) }));
  assert.equal(resumed.step, 6);
  assert.ok(messages.some((m) => /removed a half-written checkpoint/.test(m)), messages.join("\n"));
  assert.ok(messages.includes("resuming at step 4"), messages.join("\n"));
});

test("resuming drops the metrics rows logged after the checkpoint; TensorBoard is told to drop them too", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "metrics-"));
  const first = await MetricsLog.open(dir);
  for (const step of [1, 2, 3, 4, 5]) await first.write({ step, loss: 10 - step });
  writeFileSync(path.join(dir, "metrics.jsonl"), readFileSync(path.join(dir, "metrics.jsonl"), "utf8") + '{"step": 6, "lo'); // cut by a kill
  const second = await MetricsLog.open(dir, 3);
  await second.write({ step: 4, loss: 6.5 });
  assert.deepEqual(rows(dir).map((r) => [r.step, r.loss]), [[1, 9], [2, 8], [3, 7], [4, 6.5]]);
  const events = readdirSync(dir).filter((f) => f.includes("tfevents"));
  assert.equal(events.length, 2, "the second writer opened its own file, in the same second, without truncating the first");
  for (const f of events) assert.ok(readFileSync(path.join(dir, f)).length > 0);
  // Event { step = 2: 4 (varint 0x10 0x04); session_log = 7 { status = 1: START } (0x3a 0x02 0x08 0x01) }
  const resumedFile = events.find((f) => readFileSync(path.join(dir, f)).includes(Buffer.from([0x3a, 0x02, 0x08, 0x01])));
  assert.ok(resumedFile, "a SessionLog START event");
  assert.ok(readFileSync(path.join(dir, resumedFile!)).includes(Buffer.from([0x10, 0x04, 0x3a, 0x02, 0x08, 0x01])), "at step 4, the first step after the checkpoint");
  await assert.rejects(second.write({ step: 5, loss: NaN }), /training diverged: loss is NaN at step 5/);
  assert.equal(rows(dir).length, 4, "no null in metrics.jsonl");
});

test("a diverging run stops with a clear error, keeps its last checkpoint and writes no NaN", async () => {
  const dir = corpusWorkspace("run-folder-");
  const run = path.join(dir, "run");
  await pretrain(options(dir, { steps: 2 }));
  const before = readFileSync(path.join(run, "model.safetensors"));
  const rowsBefore = rows(run).length;
  await assert.rejects(pretrain(options(dir, { steps: 8, resume: true, lr: 1e30 })), (e: Error) => e instanceof DivergedError && /training diverged at step \d+: .* is (NaN|Infinity|-Infinity) at learning rate .*Try a lower learning rate/.test(e.message));
  assert.deepEqual(readFileSync(path.join(run, "model.safetensors")), before, "the step-2 checkpoint is untouched");
  assert.equal(JSON.parse(readFileSync(path.join(run, "trainer_state.json"), "utf8")).step, 2);
  const written = rows(run);
  assert.ok(written.length >= rowsBefore && written.every((r) => Object.values(r).every((v) => typeof v === "number" && Number.isFinite(v))), JSON.stringify(written));
  const { tensors } = await readSafetensors(path.join(run, "model.safetensors"));
  for (const [name, t] of tensors) assert.ok(toFloat32(t).every(Number.isFinite), name);
});

test("the CLI: a diverging run exits non-zero; kill -9 then --resume continues the same curve with each step once", async (t) => {
  const dir = corpusWorkspace("run-folder-");
  const run = path.join(dir, "run");
  const args = ["bin/bert-studio.js", "pretrain", path.join(dir, "corpus"), "--out", run, "--vocab", VOCAB, "--batch", "4", "--seq", "32", "--dropout", "0", "--schedule", "constant", "--eval-every", "100000"];
  const diverged = spawnSync(process.execPath, [...args, "--out", path.join(dir, "nan"), "--steps", "20", "--lr", "1e30"], { encoding: "utf8" });
  assert.equal(diverged.status, 1, diverged.stderr);
  assert.match(diverged.stderr, /training diverged at step \d+/);

  // A long run, killed when it has logged past its last checkpoint (rows that the checkpoint does not hold).
  const child = spawn(process.execPath, [...args, "--steps", "100000", "--checkpoint-every", "20"], { detached: true, stdio: "ignore" });
  const killAll = () => {
    try {
      process.kill(-child.pid!, "SIGKILL"); // the CLI and the child it runs the job in
    } catch {
      // gone already
    }
  };
  t.after(killAll); // never left running, whatever fails below
  let killedAt = { checkpoint: 0, logged: 0 };
  for (const end = Date.now() + 120_000; Date.now() < end; ) {
    await new Promise((r) => setTimeout(r, 5));
    const state = existsSync(path.join(run, "trainer_state.json")) ? (JSON.parse(readFileSync(path.join(run, "trainer_state.json"), "utf8")) as { step: number }) : undefined;
    // The last line may be half written: the last complete row counts.
    const text = existsSync(path.join(run, "metrics.jsonl")) ? readFileSync(path.join(run, "metrics.jsonl"), "utf8") : "";
    const complete = text.slice(0, text.lastIndexOf("\n") + 1).trim();
    const logged = complete ? (JSON.parse(complete.split("\n").at(-1)!) as { step: number }).step : 0;
    if (state && state.step >= 20 && logged > state.step) {
      killAll();
      killedAt = { checkpoint: state.step, logged };
      break;
    }
  }
  await new Promise((r) => child.once("exit", r));
  assert.ok(killedAt.logged > killedAt.checkpoint, "killed with rows logged after the last checkpoint");
  for (const end = Date.now() + 10_000; (await runLockHolder(run)) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20)); // the trainer's exit
  const checkpoint = (JSON.parse(readFileSync(path.join(run, "trainer_state.json"), "utf8")) as { step: number }).step;
  const complete = readFileSync(path.join(run, "metrics.jsonl"), "utf8").split("\n").filter((l) => l.endsWith("}")); // the kill may cut the last line
  const before = new Map(complete.map((l) => JSON.parse(l) as Record<string, number>).map((r) => [r.step, r.loss]));
  assert.ok([...before.keys()].some((s) => s > checkpoint));

  const resumed = spawnSync(process.execPath, [...args, "--steps", String(checkpoint + 30), "--resume"], { encoding: "utf8" });
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, new RegExp(`resuming at step ${checkpoint}\\b`));
  const steps = rows(run).map((r) => r.step);
  assert.deepEqual(steps, Array.from({ length: steps.length }, (_, i) => (i + 1) * 10), "each logged step once, in order");
  assert.equal(steps.at(-1), checkpoint + 30);
  // Dropout off and a constant learning rate: the resumed run retraces the killed run's steps exactly.
  const after = new Map(rows(run).map((r) => [r.step, r.loss]));
  for (const [step, loss] of before) {
    if (step > checkpoint && after.has(step)) assert.ok(Math.abs(after.get(step)! - loss) < 1e-4, `step ${step}: resumed ${after.get(step)} vs killed run ${loss}`);
  }
  assert.ok(existsSync(path.join(run, LOCK_FILE)) === false, "the killed run's stale lock was taken over and released");
});

test("the CLI: a second Ctrl-C exits without leaving half a checkpoint", async (t) => {
  const dir = corpusWorkspace("run-folder-");
  const run = path.join(dir, "run");
  // A checkpoint at every step: the second Ctrl-C comes while one is being written.
  const child = spawn(process.execPath, ["bin/bert-studio.js", "pretrain", path.join(dir, "corpus"), "--out", run, "--vocab", VOCAB, "--batch", "4", "--seq", "32", "--steps", "100000", "--checkpoint-every", "1", "--eval-every", "100000"], { stdio: ["ignore", "ignore", "pipe"], detached: true });
  t.after(() => {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // exited, as it should
    }
  });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  for (const end = Date.now() + 60_000; !existsSync(path.join(run, "trainer_state.json")) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
  child.kill("SIGINT");
  const first = Date.now();
  const staging = path.join(run, ".checkpoint-staging");
  while (Date.now() - first < 150 || !existsSync(staging)) {
    if (Date.now() - first > 5000) break;
    await new Promise((r) => setTimeout(r, 1));
  }
  child.kill("SIGINT");
  const code = await exited;
  assert.ok(code === 130 || code === 0, `exit ${code}: ${stderr}`);
  assert.match(stderr, /stopping after this step/);
  assert.deepEqual(readdirSync(run).filter((f) => f.startsWith(".checkpoint") || f.includes(".tmp-") || f === LOCK_FILE), [], "no staged files, temporary files or lock left");
  const { state } = await loadCheckpoint<{ step: number }>(run, "masked_lm", await BertTokenizer.fromDir(run));
  assert.ok(state.step >= 1);
});
