// The safetensors format (huggingface/safetensors): u64 little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets}}, then the tensor bytes. Hostile or truncated files get a
// SafetensorsError naming the problem, and a header over 100 MB is refused before it is read.
import { promises as fs } from "node:fs";
import { writeFileAtomic } from "../util/fs.js";

export class SafetensorsError extends Error {}

export type Dtype = "F32" | "F16" | "BF16" | "F64" | "I64" | "I32" | "I8" | "U8" | "BOOL";

const DTYPE_SIZE: Record<Dtype, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, I8: 1, U8: 1, BOOL: 1 };

export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface NamedTensor {
  dtype: Dtype;
  shape: number[];
  /** Raw little-endian bytes. */
  data: Uint8Array;
}

export interface Safetensors {
  tensors: Map<string, NamedTensor>;
  metadata: Record<string, string>;
}

function headerLength(buf: Uint8Array, total: number, source: string): number {
  if (buf.length < 8) throw new SafetensorsError(`${source}: file is ${buf.length} bytes, too short for a safetensors header`);
  const n = new DataView(buf.buffer, buf.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) throw new SafetensorsError(`${source}: header length ${n} is over the 100 MB limit`);
  if (n > BigInt(total - 8)) throw new SafetensorsError(`${source}: header length ${n} is longer than the file (${total} bytes)`);
  return Number(n);
}

export function parseSafetensors(buf: Uint8Array, source = "<buffer>"): Safetensors {
  const n = headerLength(buf, buf.length, source);
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(buf.buffer, buf.byteOffset + 8, n).toString("utf8"));
  } catch (e) {
    throw new SafetensorsError(`${source}: header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) throw new SafetensorsError(`${source}: header is not a JSON object`);
  const dataStart = 8 + n;
  const dataLength = buf.length - dataStart;
  const tensors = new Map<string, NamedTensor>();
  let metadata: Record<string, string> = {};
  const spans: [number, number, string][] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof entry !== "object" || entry === null || Object.values(entry).some((v) => typeof v !== "string")) {
        throw new SafetensorsError(`${source}: __metadata__ must map strings to strings`);
      }
      metadata = entry as Record<string, string>;
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const bad = (what: string) => new SafetensorsError(`${source}: tensor ${name}: ${what}`);
    if (typeof e !== "object" || e === null) throw bad("entry is not an object");
    if (typeof e.dtype !== "string" || !(e.dtype in DTYPE_SIZE)) throw bad(`unknown dtype ${JSON.stringify(e.dtype)}`);
    const dtype = e.dtype as Dtype;
    if (!Array.isArray(e.shape) || e.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw bad(`invalid shape ${JSON.stringify(e.shape)}`);
    const shape = e.shape as number[];
    const offsets = e.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || offsets.some((o) => !Number.isSafeInteger(o) || o < 0)) {
      throw bad(`invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) throw bad(`data_offsets [${begin}, ${end}] begin after end`);
    if (end > dataLength) throw bad(`data_offsets [${begin}, ${end}] out of range (data is ${dataLength} bytes)`);
    const expected = shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[dtype];
    if (end - begin !== expected) throw bad(`${end - begin} bytes for shape [${shape}] of ${dtype} (expected ${expected})`);
    spans.push([begin, end, name]);
    tensors.set(name, { dtype, shape, data: buf.subarray(dataStart + begin, dataStart + end) });
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i][0] < spans[i - 1][1]) throw new SafetensorsError(`${source}: tensors ${spans[i - 1][2]} and ${spans[i][2]} overlap`);
  }
  return { tensors, metadata };
}

export async function readSafetensors(file: string): Promise<Safetensors> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, "r");
  } catch (e) {
    throw new SafetensorsError(`${file}: cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const { size } = await handle.stat();
    const head = Buffer.alloc(Math.min(8, size));
    await handle.read(head, 0, head.length, 0);
    headerLength(head, size, file); // refuse hostile header lengths before reading the whole file
    const buf = Buffer.allocUnsafe(size);
    const { bytesRead } = await handle.read(buf, 0, size, 0);
    if (bytesRead !== size) throw new SafetensorsError(`${file}: read ${bytesRead} of ${size} bytes`);
    return parseSafetensors(buf, file);
  } finally {
    await handle.close();
  }
}

/** float32 view (zero-copy when aligned) of a floating-point tensor. */
export function toFloat32(t: NamedTensor): Float32Array {
  const { data } = t;
  const n = data.length / DTYPE_SIZE[t.dtype];
  switch (t.dtype) {
    case "F32":
      if (data.byteOffset % 4 === 0) return new Float32Array(data.buffer, data.byteOffset, n);
      return new Float32Array(data.slice().buffer);
    case "F64": {
      const dv = new DataView(data.buffer, data.byteOffset, data.length);
      return Float32Array.from({ length: n }, (_, i) => dv.getFloat64(i * 8, true));
    }
    case "BF16": {
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = (data[2 * i] | (data[2 * i + 1] << 8)) << 16;
      return out;
    }
    case "F16": {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(data[2 * i] | (data[2 * i + 1] << 8));
      return out;
    }
    default:
      throw new SafetensorsError(`tensor of dtype ${t.dtype} is not floating point`);
  }
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

export type TensorInput = { dtype: Dtype; shape: number[]; data: Uint8Array | Float32Array };

/** Header + byte chunks of a safetensors file; tensors sorted by name, header padded to 8 bytes. */
export function serializeSafetensors(entries: Iterable<[string, TensorInput]>, metadata: Record<string, string> = { format: "pt" }): Uint8Array[] {
  const sorted = [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = { __metadata__: metadata };
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of sorted) {
    const bytes = t.data instanceof Float32Array ? new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) : t.data;
    const expected = t.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[t.dtype];
    if (bytes.length !== expected) throw new SafetensorsError(`tensor ${name}: ${bytes.length} bytes for shape [${t.shape}] of ${t.dtype}`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const head = Buffer.alloc(8 + Buffer.byteLength(json));
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)), 0);
  head.write(json, 8, "utf8");
  return [head, ...chunks];
}

export async function writeSafetensors(file: string, entries: Iterable<[string, TensorInput]>, metadata?: Record<string, string>): Promise<void> {
  await writeFileAtomic(file, serializeSafetensors(entries, metadata));
}
