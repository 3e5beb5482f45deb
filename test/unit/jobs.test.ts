// Training jobs in a process of their own, as the editor's server runs them (server/jobs.ts forking the
// built dist/job.js; `npm test` builds first, run `npm run build` before running this file alone): progress
// and metrics arrive, a stop ends after a step with a checkpoint, a killed process is reported naming its
// run and checkpoint and the run resumes, and a job whose server dies stops at a checkpoint and exits.
import "./isolated-cache.js";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { MALLOC_TUNABLES } from "../../common/malloc.js";
import type { PretrainParams } from "../../common/protocol.js";
import { forkJob, requireIdle, type JobEvents } from "../../server/jobs.js";
import type { JobSpec } from "../../server/job-ipc.js";
import { LOCK_FILE } from "../../server/training/run-lock.js";
import { VOCAB, workspace } from "./pretrain-workspace.js";

const ENTRY = path.resolve("dist/job.js");
const built = existsSync(ENTRY) || "dist/job.js is not built: run npm run build (npm test does)";
const linux = process.platform === "linux";

/** A tiny pretraining job on the 120 kB WikiText workspace (a metrics row every 10 steps and at the last). */
function pretrainSpec(dir: string, extra: Partial<PretrainParams> = {}): JobSpec {
  const params: PretrainParams = { corpus: path.join(dir, "corpus"), out: path.join(dir, "run"), preset: "tiny", steps: 20, batch: 4, seq: 32, lr: 1e-3, schedule: "linear", device: "cpu", vocab: VOCAB, resume: false, evalEvery: 10, checkpointEvery: 10, ...extra };
  return { kind: "pretrain", params };
}

function recorder(onRow: (row: Record<string, number>) => void = () => undefined) {
  const seen = { messages: [] as string[], rows: [] as Record<string, number>[], progress: [] as { step: number; steps: number }[] };
  const events: JobEvents = {
    onMessage: (m) => seen.messages.push(m),
    onRow: (row) => {
      seen.rows.push(row);
      onRow(row);
    },
    onProgress: (p) => seen.progress.push(p),
  };
  return { seen, events };
}

const stepOf = (run: string) => (JSON.parse(readFileSync(path.join(run, "trainer_state.json"), "utf8")) as { step: number }).step;
const loggedSteps = (run: string) => readFileSync(path.join(run, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => (JSON.parse(l) as { step: number }).step);
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
/** Field `i` (0 = state) after the command name of a /proc stat line. */
const statField = (file: string, i: number) => {
  const s = readFileSync(file, "utf8");
  return Number(s.slice(s.lastIndexOf(")") + 2).split(" ")[i]);
};

let finishedRun: string | undefined;

test("a job trains in its own process, below the editor's priority, and reports its messages, rows, progress and result", { skip: built !== true && built }, async () => {
  const dir = workspace("job-");
  // As the extension's server runs (common/malloc.ts): the job gets the CLI's "batch" profile instead.
  const saved = process.env.GLIBC_TUNABLES;
  process.env.GLIBC_TUNABLES = MALLOC_TUNABLES.resident;
  let inspected: { nice: number[]; env: string[]; group?: string } | undefined;
  const readGroup = (pid: number | string) => (existsSync(`/proc/${pid}/autogroup`) ? readFileSync(`/proc/${pid}/autogroup`, "utf8").trim() : undefined);
  const ours = readGroup("self");
  try {
    const { seen, events } = recorder((row) => {
      if (row.step !== 10 || !linux) return;
      const nice = readdirSync(`/proc/${job.pid}/task`).flatMap((t) => {
        try {
          return [statField(`/proc/${job.pid}/task/${t}/stat`, 16)];
        } catch {
          return []; // a thread that has just ended
        }
      });
      inspected = { nice, env: readFileSync(`/proc/${job.pid}/environ`, "utf8").split("\0"), group: readGroup(job.pid!) };
    });
    const job = forkJob(pretrainSpec(dir), events, { entry: ENTRY });
    assert.ok(job.pid && job.pid !== process.pid);
    const r = await job.result;
    assert.deepEqual(r, { stopped: false, step: 20, metrics: seen.rows.at(-1) });
    assert.deepEqual(seen.rows.map((x) => x.step), loggedSteps(path.join(dir, "run")), "the rows of metrics.jsonl");
    assert.equal(seen.rows.length, 2);
    assert.ok(Number.isFinite(seen.rows[1].eval_loss), "the evaluation's figures come with the rows");
    assert.deepEqual([seen.progress.at(-1)?.step, seen.progress.at(-1)?.steps], [20, 20]);
    assert.ok(seen.messages.some((m) => m.startsWith("corpus: ")), seen.messages.join("\n"));
    assert.equal(stepOf(path.join(dir, "run")), 20);
    assert.ok(!existsSync(path.join(dir, "run", LOCK_FILE)), "the lock is released");
    if (linux) {
      assert.ok(inspected, "the process was inspected while it trained");
      const expected = Math.min(19, os.getPriority() + 10);
      assert.deepEqual(new Set(inspected.nice), new Set([expected]), `every thread at nice ${expected}: ${inspected.nice.join(" ")}`);
      if (ours) {
        // Its own scheduling group, lowered with it; this process's (the server's) group keeps its priority.
        assert.match(inspected.group ?? "", new RegExp(`^/autogroup-\\d+ nice ${expected}$`));
        assert.notEqual(inspected.group?.split(" ")[0], ours.split(" ")[0]);
        assert.equal(readGroup("self"), ours);
      }
      // glibc splits GLIBC_TUNABLES in place at start-up (":" becomes NUL), so /proc shows its parts one by one.
      for (const t of MALLOC_TUNABLES.batch.split(":")) assert.ok(inspected.env.includes(t) || inspected.env.includes(`GLIBC_TUNABLES=${t}`), `the CLI's malloc profile: ${t}`);
      assert.ok(!inspected.env.some((e) => e.includes("mmap_threshold")), "not the server's");
      assert.ok(inspected.env.includes(`RAYON_NUM_THREADS=${Math.max(1, os.availableParallelism() - 1)}`));
    }
    finishedRun = path.join(dir, "run");
  } finally {
    if (saved === undefined) delete process.env.GLIBC_TUNABLES;
    else process.env.GLIBC_TUNABLES = saved;
  }
});

test("a stopped job ends after its current step with a checkpoint of that step", { skip: built !== true && built }, async () => {
  const dir = workspace("job-");
  const controller = new AbortController();
  const { seen, events } = recorder(() => controller.abort());
  const r = await forkJob(pretrainSpec(dir, { steps: 1000, checkpointEvery: 1000, evalEvery: 1000 }), events, { entry: ENTRY, signal: controller.signal }).result;
  assert.ok(r.stopped, JSON.stringify(r));
  assert.ok(r.step >= seen.rows[0].step && r.step < 1000, `stopped at step ${r.step}`);
  assert.equal(stepOf(path.join(dir, "run")), r.step);
});

test("a diverging job fails with the trainer's message", { skip: built !== true && built }, async () => {
  const dir = workspace("job-");
  const { events } = recorder();
  await assert.rejects(forkJob(pretrainSpec(dir, { lr: 1e30 }), events, { entry: ENTRY }).result, /^Error: training diverged at step \d+: .* Try a lower learning rate/);
});

test("a job whose process is killed (kill -9) is reported with its run and last checkpoint, and the run resumes from it", { skip: built !== true && built }, async () => {
  const dir = workspace("job-");
  const run = path.join(dir, "run");
  const spec = pretrainSpec(dir, { steps: 1000, checkpointEvery: 5, evalEvery: 1000 });
  // Rows every 10 steps: at step 20 the checkpoint of step 15 is complete.
  const { events } = recorder((row) => row.step === 20 && process.kill(job.pid!, "SIGKILL"));
  const job = forkJob(spec, events, { entry: ENTRY });
  const error = await job.result.then(() => assert.fail("the job should fail"), (e: Error) => e);
  const step = stepOf(run);
  assert.ok(step >= 15, `checkpoint at step ${step}`);
  assert.ok(error.message.includes(`(pid ${job.pid}) was killed (SIGKILL`), error.message);
  assert.ok(error.message.includes(run) && error.message.includes(`last checkpoint (step ${step})`) && error.message.includes("resume"), error.message);
  // Its lock is stale: a resume takes it over and continues from the checkpoint, each step logged once.
  const resumed = await forkJob({ kind: "pretrain", params: { ...spec.params, resume: true, steps: step + 5 } } as JobSpec, recorder().events, { entry: ENTRY }).result;
  assert.deepEqual([resumed.stopped, resumed.step], [false, step + 5]);
  const steps = loggedSteps(run);
  assert.ok(steps.every((x, i) => i === 0 || x > steps[i - 1]), steps.join(" "));
});

test("a job whose server is killed stops at a checkpoint and exits; a new server waits for it, then resumes the run", { skip: (built !== true && built) || (!linux && "Linux only (/proc)") }, async () => {
  const dir = workspace("job-");
  const run = path.join(dir, "run");
  const spec = pretrainSpec(dir, { steps: 100_000, checkpointEvery: 100_000, evalEvery: 100_000 });
  const server = spawn(process.execPath, [...process.execArgv, path.resolve("test/unit/job-server-stub.ts"), ENTRY, JSON.stringify(spec)], { stdio: ["ignore", "pipe", "inherit"] });
  const pid = await new Promise<number>((resolve) => server.stdout.once("data", (d: Buffer) => resolve(Number(d.toString().split("\n")[0]))));
  assert.ok(alive(pid));
  server.kill("SIGKILL");
  await once(server, "exit"); // the job's process has a new parent now
  const said: string[] = [];
  await requireIdle(run, (m) => said.push(m));
  assert.ok(!existsSync(path.join(run, LOCK_FILE)), "the run's lock is released");
  for (const end = Date.now() + 10_000; alive(pid); ) {
    assert.ok(Date.now() < end, "the job's process exits after releasing its run");
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.match(said.join("\n"), new RegExp(`waiting for the job process of the previous server \\(pid ${pid}\\)`));
  const step = stepOf(run);
  assert.ok(step >= 10 && step < 100_000, `stopped with a checkpoint at step ${step}`);
  const resumed = await forkJob({ kind: "pretrain", params: { ...spec.params, resume: true, steps: step + 3 } } as JobSpec, recorder().events, { entry: ENTRY }).result;
  assert.equal(resumed.step, step + 3);
});

test("a fine-tuning job runs in its own process too, with its steps in the progress", { skip: built !== true && built }, async () => {
  assert.ok(finishedRun, "the first test's run is the base model");
  const dir = path.dirname(finishedRun);
  const train = path.join(dir, "reviews.tsv");
  writeFileSync(train, readFileSync("data/finetune/sst2-train.tsv", "utf8").split("\n").slice(0, 81).join("\n") + "\n");
  const { seen, events } = recorder();
  const out = path.join(dir, "classify");
  const spec: JobSpec = { kind: "finetune", task: "classify", params: { task: "classify", train, model: finishedRun, out, epochs: 1, batch: 8, maxLength: 32, lr: 5e-5, schedule: "linear", device: "cpu", resume: false } };
  const r = await forkJob(spec, events, { entry: ENTRY }).result;
  // 80 rows, 8 held out for evaluation: 72 train, 9 steps of 8.
  assert.deepEqual([r.stopped, r.step], [false, 9]);
  assert.deepEqual([seen.progress.at(-1)?.step, seen.progress.at(-1)?.steps], [9, 9]);
  assert.equal(r.score?.on, "held-out");
  assert.deepEqual(JSON.parse(readFileSync(path.join(out, "config.json"), "utf8")).architectures, ["BertForSequenceClassification"]);
});

test("a job continuing from a model trains with the model's vocabulary: the editor's default one is not added", { skip: built !== true && built }, async () => {
  assert.ok(finishedRun, "the first test's run is the model to continue from");
  const dir = path.dirname(finishedRun);
  const { seen, events } = recorder();
  // As the editor sends it: `from`, and neither vocab nor trainVocab (the engine refuses a vocabulary with `from`).
  const spec = pretrainSpec(dir, { out: path.join(dir, "continued"), from: finishedRun, vocab: undefined, steps: 2, evalEvery: 2, checkpointEvery: 2 });
  const r = await forkJob(spec, events, { entry: ENTRY }).result;
  assert.deepEqual([r.stopped, r.step], [false, 2]);
  assert.ok(seen.messages.some((m) => m.startsWith(`continuing from ${finishedRun}: `)), seen.messages.join("\n"));
});
