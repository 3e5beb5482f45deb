// The process of one training job (bundled as dist/job.js), forked by the BERT server (server/jobs.ts):
// it runs one pretrain or finetune and reports over IPC (server/job-ipc.ts). Training in its own process
// keeps the server's event loop free: onnxruntime-node runs a session synchronously on the calling
// thread, so a training step in the server (seconds for the small preset at B32 T128 on two cores) held
// every fill-mask request (ghost text, hover) behind it.
//
// It runs below the editor's priority (nice +10) and the server gives it one core less than the machine
// has (see jobs.ts); when the server goes away (its IPC channel closes) it stops after the current step
// with a checkpoint and exits, so the restarted server can resume the run.
import { readdirSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import { pretrainDefaults } from "../common/settings.js";
import type { FromJob, JobDone, JobSpec, ToJob } from "./job-ipc.js";
import type { Device } from "../common/settings.js";
import { procStat } from "./util/proc.js";

/** After its server is gone, a job that has not stopped within this time exits anyway (a complete checkpoint is kept). */
const ORPHAN_EXIT_MS = 10 * 60_000;

/**
 * Lowers this process's priority by 10. Linux keeps a nice value per thread, and a thread inherits its
 * creator's: every thread there is now (V8's, libuv's) is lowered, and those made later (ONNX Runtime's
 * intra-op pool, created by the main thread) start lowered.
 *
 * Where the kernel groups processes by session for scheduling (autogroup), nice values count only inside
 * a group and groups share the cores evenly: the editor's processes in other sessions (code-server's
 * browser, for one) would compete with the job as equals. On Linux the server starts the job in a
 * session of its own (jobs.ts), whose group is lowered too.
 */
function lowerPriority(): void {
  const nice = Math.min(19, os.getPriority() + 10);
  const linux = process.platform === "linux";
  for (const tid of linux ? readdirSync("/proc/self/task").map(Number) : [0]) {
    try {
      os.setPriority(tid, nice);
    } catch {
      // a thread that has just ended
    }
  }
  if (!linux) return;
  try {
    // Only as the leader of its own session: otherwise the group is the server's, which must keep its priority.
    if (Number(procStat("self")?.[3]) === process.pid) writeFileSync("/proc/self/autogroup", String(nice)); // field 6: session
  } catch {
    // no autogroup in this kernel
  }
}

function send(m: FromJob): void {
  if (process.connected) process.send!(m);
}

/**
 * The one place that knows the trainers' option types: the editor's request → pretrain()/finetune()
 * options, with what no request says taken from common/settings.ts (as the CLI does).
 */
async function train(spec: JobSpec, threads: number, signal: AbortSignal): Promise<JobDone> {
  const onMessage = (text: string) => send({ type: "message", text });
  const onRow = (row: Record<string, number>) => send({ type: "row", row });
  const onProgress = ({ step, steps, eta_s }: { step: number; steps: number; eta_s: number }) => send({ type: "progress", step, steps, eta_s });
  const common = { device: spec.params.device as Device, threads, resume: spec.params.resume, signal, onMessage, onRow, onProgress };
  if (spec.kind === "pretrain") {
    const { pretrain } = await import("./pretraining/pretrain.js");
    const p = spec.params;
    // The request is the engine's options: what the user left unset defaults there (common/settings.ts).
    const { metrics, stopped, step } = await pretrain({
      ...p,
      ...common,
      // The editor trains a vocabulary unless it names one; continuing from a model keeps the model's, so
      // no default is added then (a trainVocab sent with `from` is the engine's to refuse). A resumed run
      // uses its own either way.
      trainVocab: p.vocab ? undefined : (p.trainVocab ?? (p.from ? undefined : pretrainDefaults.trainVocab)),
    });
    return { stopped, step, metrics: metrics[metrics.length - 1] };
  }
  const { finetune } = await import("./tasks/finetune.js");
  const { metrics, stopped, step, score } = await finetune({ ...spec.params, ...common, task: spec.task }); // unset fields default in the engine
  return { stopped, step, metrics: metrics[metrics.length - 1], score };
}

/** Reports the outcome, then exits once the message is out (or at once when nobody listens any more). */
function finish(m: FromJob, code: number): void {
  if (process.connected) process.send!(m, () => process.exit(code));
  else process.exit(code);
}

lowerPriority();
// Its stdout and stderr lead to the server: once that is gone, a write must not end the job before its checkpoint.
for (const stream of [process.stdout, process.stderr]) stream.on("error", () => undefined);
const controller = new AbortController();
let started = false;
process.on("message", (m: ToJob) => {
  if (m.type === "stop") controller.abort();
  else if (m.type === "start" && !started) {
    started = true;
    train(m.spec, m.threads, controller.signal).then(
      (done) => finish({ type: "done", ...done }, 0),
      (e: unknown) => finish({ type: "failed", message: e instanceof Error ? e.message : String(e) }, 1),
    );
  }
});
process.on("disconnect", () => {
  // The server exited or was killed: stop at the next step (with a checkpoint, which a resume continues from).
  controller.abort();
  if (!started) process.exit(0);
  setTimeout(() => void import("./training/run-folder.js").then(({ checkpointsWritten }) => checkpointsWritten()).then(() => process.exit(1)), ORPHAN_EXIT_MS).unref();
});
