// The server's side of training jobs. Each job (pretrain, finetune) trains in a process of its own,
// forked here (server/job-process.ts, bundled as dist/job.js; messages in server/job-ipc.ts), so that the
// server answers fill-mask (ghost text, hover) at once while it trains: the inference sessions stay here.
// Measured in code-server on 2 cores (AMD EPYC; test/vscode/suite.ts, 5 samples each, p50 / p90) while a
// small-preset job trains at B32 T128: with the step in the server (onnxruntime-node runs a session
// synchronously on the main thread, so each request waited for the step in progress), ghost text came
// 3.9 s / 4.8 s after typing stopped, a hover 3.8 s / 4.3 s, a fill-mask request 2.4 s / 4.1 s; with the
// job in its own process (packaged VSIX) 155 / 190 ms, 21 / 34 ms and 3 / 9 ms (idle: 138 / 222, 16 / 43,
// 3 / 6 ms). Keystrokes were 11–13 / 20 ms in both. The price: on 2 cores a job trains on one thread,
// 2,800 tokens/s against 4,100 in the server on two.
//
// The job's process gets one core less than the machine has and a lower priority (job-process.ts), and the
// CLI's "batch" malloc profile. Its metrics rows (with its total steps and seconds left) and messages are
// forwarded to the client, which draws its progress from them; a stop (Stop Training, the notification's
// Cancel, $/cancelRequest) is sent to it and it stops after its step with a checkpoint. A process that dies
// (crash, kill -9, out of memory) fails its request with a message naming the run and its last
// checkpoint; its run lock is stale then and a resume takes it over.
import { fork } from "node:child_process";
import { promises as fs, readFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ResponseError, type CancellationToken, type Connection } from "vscode-languageserver/node";
import { switchMallocEnv } from "../common/malloc.js";
import * as P from "../common/protocol.js";
import { JOB_PARENT_ENV, type FromJob, type JobDone, type JobSpec, type ToJob } from "./job-ipc.js";
import { describeHolder, runLockHolder } from "./training/run-lock.js";
import { exists, folderBytes, sameOrInside } from "./util/fs.js";
import { procStat } from "./util/proc.js";

/** The job process's bundle, next to the server's (dist/). */
export const JOB_ENTRY = path.join(__dirname, "job.js");

/**
 * ONNX Runtime intra-op threads of a job: one core is left to the editor (the extension host, this
 * server's fill-mask, the renderer). On 2 cores that halves a job's speed; the CLI keeps using every core.
 */
export const jobThreads = (): number => Math.max(1, os.availableParallelism() - 1);

/** How long a new server waits for the job process of a server that died to stop at a checkpoint. */
const ORPHAN_WAIT_MS = 5 * 60_000;

export interface JobEvents {
  onMessage(text: string): void;
  onRow(row: Record<string, number>): void;
  /** After each row: the total steps as known now (a time budget's is an estimate) and the seconds left. */
  onProgress(p: { step: number; steps: number; eta_s?: number }): void;
}

export interface JobProcess {
  /** The job's process id (undefined when it could not be started). */
  readonly pid: number | undefined;
  /** How the job ended; rejects with the trainer's error, or with what happened to a process that died. */
  readonly result: Promise<JobDone>;
}

export interface ForkOptions {
  /** Aborting it stops the job after its current step, with a checkpoint. */
  signal?: AbortSignal;
  /** The job process's script (default: dist/job.js next to this bundle). */
  entry?: string;
  threads?: number;
}

/** Starts `spec` in a process of its own. */
export function forkJob(spec: JobSpec, events: JobEvents, opts: ForkOptions = {}): JobProcess {
  const threads = opts.threads ?? jobThreads();
  const env: NodeJS.ProcessEnv = { ...(switchMallocEnv(process.env, "resident", "batch") ?? process.env), [JOB_PARENT_ENV]: String(process.pid) };
  // The tokenizer (HF tokenizers, Rust) encodes a corpus on a rayon pool of one thread per core otherwise.
  env.RAYON_NUM_THREADS ??= String(threads);
  // No inherited --inspect (the server's debug configuration would give the job the same port).
  const execArgv = process.execArgv.filter((a) => !a.startsWith("--inspect"));
  // A session of its own on Linux, so that its scheduling group can be lowered with it (job-process.ts).
  const child = fork(opts.entry ?? JOB_ENTRY, [], { env, execArgv, stdio: ["ignore", "inherit", "pipe", "ipc"], detached: process.platform === "linux" });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    process.stderr.write(d);
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const send = (m: ToJob) => {
    if (child.connected) child.send(m, () => undefined);
  };
  let outcome: { done: JobDone } | { failed: string } | undefined;
  child.on("message", (m: FromJob) => {
    if (m.type === "message") events.onMessage(m.text);
    else if (m.type === "row") events.onRow(m.row);
    else if (m.type === "progress") events.onProgress({ step: m.step, steps: m.steps, eta_s: m.eta_s });
    else if (m.type === "done") outcome = { done: { stopped: m.stopped, step: m.step, metrics: m.metrics, ...(m.score ? { score: m.score } : {}) } };
    else if (m.type === "failed") outcome = { failed: m.message };
  });
  send({ type: "start", spec, threads });
  const stop = () => send({ type: "stop" });
  if (opts.signal?.aborted) stop();
  opts.signal?.addEventListener("abort", stop, { once: true });
  const result = new Promise<JobDone>((resolve, reject) => {
    child.once("error", (e) => {
      if (child.pid === undefined) reject(new Error(`the ${spec.kind} job's process could not start: ${e.message}`));
    });
    // "close" comes after the process ended and its IPC channel and stderr were read to the end.
    child.once("close", (code, signal) => {
      opts.signal?.removeEventListener("abort", stop);
      if (outcome && "done" in outcome) resolve(outcome.done);
      else if (outcome) reject(new Error(outcome.failed));
      else if (child.pid !== undefined) void deathMessage(spec, child.pid, code, signal, stderr).then((m) => reject(new Error(m)));
    });
  });
  return { pid: child.pid, result };
}

/** The step of the run's last checkpoint, if it has one. */
async function checkpointStep(out: string): Promise<number | undefined> {
  try {
    const step = (JSON.parse(await fs.readFile(path.join(out, "trainer_state.json"), "utf8")) as { step?: unknown }).step;
    return typeof step === "number" ? step : undefined;
  } catch {
    return undefined;
  }
}

/** What the user reads when a job's process ended without a result. */
async function deathMessage(spec: JobSpec, pid: number, code: number | null, signal: NodeJS.Signals | null, stderr: string): Promise<string> {
  const out = spec.params.out;
  const how = signal ? `was killed (${signal}${signal === "SIGKILL" ? ": out of memory, or killed by hand" : ""})` : `ended with exit status ${code} and no result`;
  const printed = stderr.trim().split("\n").filter(Boolean).at(-1);
  const step = await checkpointStep(out);
  const how2 = spec.kind === "pretrain" ? "BERT: Pretrain on Workspace, then Resume" : "bert-studio finetune with --resume";
  const next = step === undefined ? "no checkpoint had been written yet: start it again" : `its last checkpoint (step ${step}) is kept there: resume the run (${how2}) to continue from it`;
  return `the ${spec.kind} job's process (pid ${pid}) ${how} while training into ${out}${printed ? ` (it printed: ${printed.slice(0, 300)})` : ""}; ${next}`;
}

// ---- The jobs of this server ----

export interface Job {
  id: string;
  kind: JobSpec["kind"];
  out: string;
  step: number;
  steps: number;
  loss?: number;
  /** Seconds left, as the job's process last estimated them. */
  eta_s?: number;
  /** The job's process, once forked. */
  pid?: number;
  controller: AbortController;
}

export const jobs = new Map<string, Job>();
let jobCounter = 0;

/** A job of this server (other than `except`) training into, above or below `dir`. */
export function jobAt(dir: string, except?: Job): Job | undefined {
  return [...jobs.values()].find((j) => j !== except && (sameOrInside(j.out, dir) || sameOrInside(dir, j.out)));
}

const busyError = (job: Job) => new Error(`${job.id} is training into ${job.out} (step ${job.step}): stop it first (BERT: Stop Training) or choose another folder`);

/** Stops one job after its current step (with a checkpoint); false when there is no such job. */
export function stopJob(id: string): boolean {
  jobs.get(id)?.controller.abort();
  return jobs.has(id);
}

/** Stops every job after its current step; the number stopped. */
export function stopAll(): number {
  for (const j of jobs.values()) j.controller.abort();
  return jobs.size;
}

export const jobList = (): P.StatusResult["jobs"] => [...jobs.values()].map(({ id, kind, out, step, steps, loss, pid }) => ({ id, kind, out, step, steps, loss, pid }));

/**
 * Whether `pid` is the job process of a server that is gone: its parent is no longer the server that
 * forked it (named in its environment). Such a job is stopping at a checkpoint (job-process.ts). Linux
 * only (/proc); elsewhere false.
 */
function orphanedJob(pid: number): boolean {
  try {
    const parent = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").find((e) => e.startsWith(`${JOB_PARENT_ENV}=`));
    if (!parent) return false;
    const ppid = procStat(pid)?.[1]; // field 4
    return ppid !== undefined && Number(ppid) !== Number(parent.slice(JOB_PARENT_ENV.length + 1));
  } catch {
    return false;
  }
}

/**
 * Refuses when a job of this server (but `except`), or another process holding the run's lock, trains into
 * `dir`. The job process of a server that was killed is waited for: it stops after its step with a
 * checkpoint, and the client, which restarted the server, sends the job again to resume it.
 */
export async function requireIdle(dir: string, say: (m: string) => void, except?: Job): Promise<void> {
  const job = jobAt(dir, except);
  if (job) throw busyError(job);
  let holder = await runLockHolder(dir);
  if (holder && holder.host === os.hostname() && orphanedJob(holder.pid)) {
    say(`waiting for the job process of the previous server (pid ${holder.pid}) to stop at a checkpoint in ${dir}`);
    for (const end = Date.now() + ORPHAN_WAIT_MS; holder && orphanedJob(holder.pid) && Date.now() < end; ) {
      await new Promise((r) => setTimeout(r, 200));
      holder = await runLockHolder(dir);
    }
  }
  if (holder) throw new Error(`${dir} is in use: ${describeHolder(holder)}; stop that job first`);
}

/** The next free `dir-<n>`: no folder there and no job training into it. */
export async function freeName(dir: string): Promise<string> {
  for (let n = 1; ; n++) {
    const name = `${dir}-${n}`;
    if (!jobAt(name) && !(await exists(name))) return name;
  }
}

/** What runJob needs of the server. */
export interface JobHost {
  connection: Connection;
  log(text: string): void;
  /** The run in `from` was kept as `to` (replace): a selected model inside it moves with it. */
  moved(from: string, to: string): void;
}

/**
 * Decides what happens to a run already in `out` before a job writes there: it is resumed (`resume`, when it
 * has a checkpoint), kept as the next free `out-<n>` (`replace`: a rename, so nothing is lost) or left
 * alone with a RUN_EXISTS error the client turns into a question.
 */
async function prepareRun(host: JobHost, out: string, resume: boolean, replace: boolean, job: Job): Promise<void> {
  await requireIdle(out, host.log, job);
  const state = await fs.readFile(path.join(out, "trainer_state.json"), "utf8").then((t) => t, () => undefined);
  if (resume && state !== undefined) return;
  if (state === undefined && !(await exists(path.join(out, "model.safetensors")))) return;
  let step: number | undefined;
  try {
    step = state === undefined ? undefined : (JSON.parse(state) as { step?: number }).step;
  } catch {
    // an unreadable state still means a run is there
  }
  const keptAs = await freeName(out);
  if (!replace) {
    const data: P.RunExists = { out, step, bytes: await folderBytes(out), keptAs };
    throw new ResponseError(P.RUN_EXISTS, `${out} already holds a run${step === undefined ? "" : ` (step ${step})`}: resume it, or replace it (it is then kept as ${path.basename(keptAs)})`, data);
  }
  await fs.rename(out, keptAs);
  host.moved(out, keptAs);
  host.log(`the previous run in ${out} is kept as ${keptAs}`);
}

/**
 * The job's rows as bert/metrics notifications, from which the extension draws its progress (with Cancel).
 * The job process sends each row's progress message (total steps as known now, seconds left) right after
 * the row, so a row waits for it and its notification carries both; a row whose progress message does not
 * come goes out with what is known at the next row or when the job ends (`flush`).
 */
function metricsRelay(host: JobHost, job: Job): Pick<JobEvents, "onRow" | "onProgress"> & { flush(): void } {
  let pending: Record<string, number> | undefined;
  const flush = () => {
    if (!pending) return;
    const row = pending;
    pending = undefined;
    // A diverged step's loss is NaN (null once sent as JSON): sent as it is, never thrown on.
    void host.connection.sendNotification(P.Metrics, { job: job.id, kind: job.kind, out: job.out, row, steps: job.steps || undefined, eta_s: job.eta_s });
  };
  return {
    onRow(row) {
      flush();
      job.step = row.step;
      job.loss = row.loss;
      pending = row;
    },
    onProgress({ steps, eta_s }) {
      job.steps = steps;
      job.eta_s = eta_s;
      flush();
    },
    flush,
  };
}

/**
 * Runs a job in its own process, stopped by the request's own cancellation (and by stopJob/stopAll). The
 * job is listed from the start, so a second request for the same folder is refused while `prepare` (the
 * caller's checks) and prepareRun decide about it.
 */
export async function runJob(host: JobHost, spec: JobSpec, token: CancellationToken, prepare: () => void = () => undefined): Promise<P.JobResult> {
  const p: P.RunParams = spec.params;
  const busy = jobAt(p.out);
  if (busy) throw busyError(busy);
  const job: Job = { id: `${spec.kind}-${++jobCounter}`, kind: spec.kind, out: p.out, step: 0, steps: spec.kind === "pretrain" ? spec.params.steps : 0, controller: new AbortController() };
  jobs.set(job.id, job);
  const relay = metricsRelay(host, job);
  try {
    prepare();
    await prepareRun(host, p.out, p.resume, p.replace === true, job);
    token.onCancellationRequested(() => job.controller.abort());
    const child = forkJob(spec, { onMessage: host.log, onRow: relay.onRow, onProgress: relay.onProgress }, { signal: job.controller.signal });
    job.pid = child.pid;
    const { stopped, step, metrics, score } = await child.result;
    return { out: p.out, stopped, steps: step, metrics, score };
  } finally {
    relay.flush();
    jobs.delete(job.id);
  }
}
