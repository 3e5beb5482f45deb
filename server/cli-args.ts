// Command-line argument helpers shared by the CLI's commands: one error type, typed option readers.
import { DEVICES, type Device } from "./model/session.js";

export class UsageError extends Error {}

export function device(value: string | undefined): Device {
  const d = (value ?? "cpu") as Device;
  if (!DEVICES.includes(d)) throw new UsageError(`--device must be one of ${DEVICES.join(", ")}, got ${value}`);
  return d;
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
