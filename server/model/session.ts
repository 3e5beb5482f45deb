// ONNX Runtime sessions: session options tuned for this workload, and execution-provider selection
// with a fallback to CPU that says once why.
import * as os from "node:os";
import * as ort from "onnxruntime-node";

import type { Device } from "../../common/settings.js";

export interface SessionConfig {
  device?: Device;
  /** Intra-op threads; default: the number of CPU cores. */
  threads?: number;
  /** Called with a one-line message when a provider falls back to CPU. */
  onFallback?: (message: string) => void;
  /** Also writes the model as ONNX Runtime optimized it to this file, in ORT's format (what createOptimizedSession loads); CPU only. */
  saveOptimized?: string;
  /** Files the model's external data lie in, as bytes (an initializer's location names one by `path`). */
  externalData?: { path: string; data: Uint8Array }[];
  /** The folder of the model's external data files on disk (for a model given as bytes). */
  externalFolder?: string;
  /** ORT's profiling on: each run's and each node's time go to `<profile>_<date>.json` at endProfiling (dev/profile.ts reads it). */
  profile?: string;
}

function providersFor(device: Device): string[] {
  switch (device) {
    case "cpu":
      return ["cpu"];
    case "webgpu":
      return ["webgpu", "cpu"];
    case "cuda":
      return ["cuda", "cpu"];
    case "auto":
      return ["cuda", "webgpu", "cpu"];
  }
}

// ONNX Runtime's process-wide logger prints a provider's failure to load (CUDA libraries missing) as an
// error before we can fall back; createSession reports it once, in a sentence. Sessions log on their own
// level (logSeverityLevel below).
ort.env.logLevel = "fatal";

const warned = new Set<string>();

export function sessionOptions(cfg: SessionConfig, providers: string[]): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: providers,
    graphOptimizationLevel: "all",
    executionMode: "sequential",
    intraOpNumThreads: cfg.threads ?? Math.max(1, os.availableParallelism()),
    interOpNumThreads: 1,
    // The arena grows by powers of two and keeps what it took: for BERT-Base training that is 5.1 GB peak
    // against 2.7 GB with plain malloc, at the same speed (malloc settings: util/malloc.ts).
    enableCpuMemArena: false,
    // With the memory pattern on, training BERT-Base B8 T128 with the RandomUniformLike dropout peaked at
    // 3.8 GB against 2.66 GB without it, at the same speed (the small preset was faster without it).
    enableMemPattern: false,
    logSeverityLevel: providers[0] === "cpu" ? 2 : 4, // a provider that fails to start is reported once, by us
  };
}

/**
 * Creates a session on the requested device. A provider that cannot start (not built in, no GPU, driver
 * missing) falls back to the next one and finally to CPU, with one message.
 */
export async function createSession(model: Uint8Array, cfg: SessionConfig = {}): Promise<{ session: ort.InferenceSession; provider: string }> {
  const device = cfg.device ?? "cpu";
  const chain = providersFor(device);
  const errors: string[] = [];
  for (let i = 0; i < chain.length; i++) {
    const provider = chain[i];
    try {
      const options = sessionOptions(cfg, provider === "cpu" ? ["cpu"] : [provider, "cpu"]);
      if (cfg.profile) Object.assign(options, { enableProfiling: true, profileFilePrefix: cfg.profile });
      if (cfg.externalData) options.externalData = cfg.externalData;
      if (cfg.externalFolder) options.extra = { session: { model_external_initializers_file_folder_path: cfg.externalFolder } };
      if (cfg.saveOptimized && provider === "cpu") {
        options.optimizedModelFilePath = cfg.saveOptimized;
        options.extra = { session: { ...(options.extra as { session?: object } | undefined)?.session, save_model_format: "ORT" } };
        options.logSeverityLevel = 3; // not the warning that such a file may hold kernels for this CPU only: the cache's key names the CPU
      }
      const session = await ort.InferenceSession.create(model, options);
      if (i > 0 || (device === "auto" && provider === "cpu")) {
        const msg = `${device}: ${errors.join("; ") || "no accelerator"}; running on ${provider}`;
        if (!warned.has(msg)) {
          warned.add(msg);
          (cfg.onFallback ?? ((m: string) => process.stderr.write(`bert-studio: ${m}\n`)))(msg);
        }
      }
      return { session, provider };
    } catch (e) {
      // ORT prefixes its source location and the failed check; keep the sentence a user can act on.
      const first = (e as Error).message.split("\n")[0];
      let reason = first.includes(" was false. ") ? first.slice(first.lastIndexOf(" was false. ") + 12) : first.replace(/^\/\S+:\d+ /, "");
      if (provider === "cuda" && reason.includes("Failed to load shared library")) {
        reason = "its libraries are not installed; onnxruntime-node downloads them when installed with ONNXRUNTIME_NODE_INSTALL=cuda12";
      }
      errors.push(`${provider} could not start (${reason})`);
      if (provider === "cpu") throw e;
    }
  }
  throw new Error(`no execution provider could start: ${errors.join("; ")}`);
}

/** The buffers that sessions made by createOptimizedSession read their weights from, kept as long as they are. */
const backing = new WeakMap<ort.InferenceSession, Uint8Array>();

/**
 * A CPU session from a model that createSession's `saveOptimized` wrote in ORT's format: no optimization
 * pass, and the weights used where they lie in `model` (which the session keeps alive) instead of copied.
 * BERT-Base (2-core EPYC): 0.4 to 0.8 s, against 0.9 to 1.3 s for the same model as an optimized .onnx
 * file (whose initializers ORT parses and copies) and 1.3 to 1.7 s for the weights, graph and optimization.
 */
export async function createOptimizedSession(model: Uint8Array, cfg: SessionConfig = {}): Promise<ort.InferenceSession> {
  const options: ort.InferenceSession.SessionOptions = {
    ...sessionOptions(cfg, ["cpu"]),
    graphOptimizationLevel: "disabled",
    extra: { session: { load_model_format: "ORT", use_ort_model_bytes_directly: "1", use_ort_model_bytes_for_initializers: "1" } },
  };
  const session = await ort.InferenceSession.create(model, options);
  backing.set(session, model);
  return session;
}
