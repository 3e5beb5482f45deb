// glibc malloc settings for processes that train. glibc reads them only at start-up, so the CLI re-runs
// itself with them (bin/bert-studio.js), the extension starts its server with them, and the server starts
// each job's process with them (server/jobs.ts).
//
// Measured training BERT-Base B8 T128 and the small preset B32 T128 (2 cores, AMD EPYC, glibc 2.36,
// Node 20; peak RSS of BERT-Base in brackets):
// - No settings: a BERT-Base step takes twice as long as with huge pages (page faults) [2.66 GB].
// - hugetlb=1 (large allocations on transparent huge pages) alone: glibc's dynamic thresholds raise the
//   trim threshold to 64 MB and keep freed activations on the heap [3.42 GB].
// - top_pad 64 MB: Node starts inside the first heap extension. Without it, in about half the runs V8
//   reserved its 512 MB code range right above the heap (the heap's end was 2 MB-aligned, a hint the
//   kernel then honours), the heap could not grow and glibc went on in separate mappings [3.15 GB].
// - "resident" adds a fixed mmap threshold, which also fixes the trim threshold at 128 KB: freed memory
//   goes back to the system [2.68 GB].
// - "batch" instead never maps or trims: a step's tensors reuse the previous step's memory instead of
//   faulting fresh pages in (in ONNX Runtime's profile, the word-embedding gradient's ScatterND fell from
//   ~180 ms to under 25 ms), 17% more tokens/s on both presets [2.68 GB, but kept until the process exits].
const HUGE_PAGES = ["glibc.malloc.hugetlb=1", "glibc.malloc.top_pad=67108864"];
export const MALLOC_TUNABLES = {
  /** For a process that trains and exits (the CLI, a job's process). */
  batch: [...HUGE_PAGES, "glibc.malloc.mmap_max=0", "glibc.malloc.trim_threshold=4294967296"].join(":"),
  /** For a process that lives on after training (the extension's server). */
  resident: [...HUGE_PAGES, "glibc.malloc.mmap_threshold=33554432"].join(":"),
};
export type MallocProfile = keyof typeof MALLOC_TUNABLES;

/** `env` with the profile's tunables added, or undefined where they do not apply or malloc tunables are already set. */
export function mallocEnv(env: NodeJS.ProcessEnv, profile: MallocProfile, platform: NodeJS.Platform = process.platform): NodeJS.ProcessEnv | undefined {
  const current = env.GLIBC_TUNABLES ?? "";
  if (platform !== "linux" || current.includes("glibc.malloc.")) return undefined;
  return { ...env, GLIBC_TUNABLES: [current, MALLOC_TUNABLES[profile]].filter(Boolean).join(":") };
}

/**
 * The environment for a process that `profile` suits, started from one that runs with profile `from`
 * (set by mallocEnv): `from`'s tunables are replaced by `profile`'s. The extension's server runs
 * "resident"; the job processes it forks train and exit, so they get "batch", as the CLI does. Undefined
 * where mallocEnv leaves `env` alone.
 */
export function switchMallocEnv(env: NodeJS.ProcessEnv, from: MallocProfile, profile: MallocProfile, platform: NodeJS.Platform = process.platform): NodeJS.ProcessEnv | undefined {
  const current = env.GLIBC_TUNABLES ?? "";
  const theirs = MALLOC_TUNABLES[from];
  if (current !== theirs && !current.endsWith(`:${theirs}`)) return mallocEnv(env, profile, platform);
  const rest = current.slice(0, current.length - theirs.length).replace(/:$/, "");
  const base: NodeJS.ProcessEnv = { ...env, GLIBC_TUNABLES: rest };
  if (!rest) delete base.GLIBC_TUNABLES;
  return mallocEnv(base, profile, platform) ?? base;
}
