// Command-line argument helpers shared by the CLI's commands: one error type, typed option readers.
import { DEVICE_NAMES, settingDefault, type Device } from "../../common/settings.js";

export class UsageError extends Error {}

export function device(value: string | undefined): Device {
  const d = (value ?? settingDefault("device")) as Device;
  if (!(DEVICE_NAMES as readonly string[]).includes(d)) throw new UsageError(`--device must be one of ${DEVICE_NAMES.join(", ")}, got ${value}`);
  return d;
}

/** A default as help text writes it: 1e-3, 5e-5, 128. */
export function shown(n: number): string {
  return n !== 0 && Math.abs(n) < 0.01 ? n.toExponential() : String(n);
}

export function nonNegativeInt(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name} must be a non-negative integer, got ${v}`);
  return n;
}

export function positiveInt(name: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--${name} must be a positive integer, got ${v}`);
  return n;
}


export function positiveNumber(name: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!(n > 0)) throw new UsageError(`--${name} must be a positive number, got ${v}`);
  return n;
}

/**
 * Ctrl-C while training: the first stops after the current step with a checkpoint; a second exits at once,
 * but not in the middle of writing a checkpoint (it waits for that set of files to be complete). A Ctrl-C
 * in a terminal reaches this process twice (from the terminal, and forwarded by bin/bert-studio.js, its
 * parent), within a millisecond: signals within 100 ms of the first count as one.
 */
export function stopOnInterrupt(controller: AbortController, say: (m: string) => void): void {
  let first = 0;
  process.on("SIGINT", () => {
    if (!controller.signal.aborted) {
      first = Date.now();
      say("\nstopping after this step; a checkpoint will be saved (Ctrl-C again to exit without it)");
      controller.abort();
      return;
    }
    if (Date.now() - first < 100) return;
    say("\nexiting; the last complete checkpoint is kept");
    void import("../training/run-folder.js").then(({ checkpointsWritten }) => checkpointsWritten()).then(() => process.exit(130));
  });
}
