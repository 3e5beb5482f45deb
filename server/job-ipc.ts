// The messages between the BERT server (server/jobs.ts) and the process of one training job
// (server/job-process.ts, bundled as dist/job.js), over Node's IPC channel (JSON: a NaN in a metrics row
// arrives as null, as it does over the LSP connection).
import type * as P from "../common/protocol.js";

/** What to train: the editor's request as the server received it (the task of "auto" already detected). */
export type JobSpec = { kind: "pretrain"; params: P.PretrainParams } | { kind: "finetune"; params: P.FinetuneParams; task: P.FinetuneTask };

/** Server → job. */
export type ToJob =
  /** Sent once, first: train `spec` with `threads` intra-op threads. */
  | { type: "start"; spec: JobSpec; threads: number }
  /** Stop after the current step, with a checkpoint. */
  | { type: "stop" };

/** How a job ended when it ended by itself (done, or stopped at a checkpoint). */
export interface JobDone {
  stopped: boolean;
  step: number;
  /** The last metrics row. */
  metrics?: Record<string, number>;
  /** Fine-tuning: the best checkpoint's score on the evaluation examples, when there were any. */
  score?: P.FinetuneScore;
}

/** Job → server. */
export type FromJob =
  | { type: "message"; text: string }
  /** A metrics row as it is written to metrics.jsonl. */
  | { type: "row"; row: Record<string, number> }
  /** After each metrics row: the run's total steps as known now (a time budget's is an estimate) and the seconds left. */
  | { type: "progress"; step: number; steps: number; eta_s: number }
  | ({ type: "done" } & JobDone)
  /** The trainer's error, whose message the editor shows as it is (e.g. "training diverged at step N: ..."). */
  | { type: "failed"; message: string };

/** The environment variable naming the server that forked a job (to tell, after that server died, a job that is stopping). */
export const JOB_PARENT_ENV = "BERT_STUDIO_JOB_PARENT";
