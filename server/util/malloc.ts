// glibc malloc settings for a process that trains. glibc reads them only at start-up, so the CLI re-runs
// itself with them (bin/bert-studio.js) and the extension starts its server with them.
//
// Measured on BERT-Base B8 T128 training (2 cores, AMD EPYC, glibc 2.36, Node 20):
// - hugetlb=1: large allocations on transparent huge pages. Without them a step takes twice as long
//   (page faults).
// - mmap_threshold fixed at 32 MB: glibc's dynamic thresholds otherwise raise the trim threshold to 64 MB
//   and keep freed activations on the heap; peak RSS 3.42 GB instead of 2.66 GB, at the same speed.
// - top_pad 64 MB: Node starts inside the first heap extension. Without it, in about half the runs V8
//   reserved its 512 MB code range right above the heap (the heap's end was 2 MB-aligned, a hint the
//   kernel then honours), the heap could not grow, glibc went on with separate mappings it never trims,
//   and peak RSS was 3.15 GB instead of 2.66 GB.
export const MALLOC_TUNABLES = ["glibc.malloc.hugetlb=1", "glibc.malloc.mmap_threshold=33554432", "glibc.malloc.top_pad=67108864"].join(":");

/** `env` with MALLOC_TUNABLES added, or undefined where they do not apply or malloc tunables are already set. */
export function mallocEnv(env: NodeJS.ProcessEnv, platform: NodeJS.Platform = process.platform): NodeJS.ProcessEnv | undefined {
  const current = env.GLIBC_TUNABLES ?? "";
  if (platform !== "linux" || current.includes("glibc.malloc.")) return undefined;
  return { ...env, GLIBC_TUNABLES: [current, MALLOC_TUNABLES].filter(Boolean).join(":") };
}
