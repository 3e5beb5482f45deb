// A stand-in for the BERT server in jobs.test.ts: forks the job of argv[3] (JSON) from the bundle argv[2]
// and prints the job's pid with every metrics row, until the test kills it.
import { forkJob } from "../../server/jobs.js";
import type { JobSpec } from "../../server/job-ipc.js";

const spec = JSON.parse(process.argv[3]) as JobSpec;
const job = forkJob(spec, { onMessage: () => undefined, onRow: () => process.stdout.write(`${job.pid}\n`), onProgress: () => undefined }, { entry: process.argv[2] });
void job.result.catch(() => undefined);
