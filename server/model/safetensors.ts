// The safetensors format (huggingface/safetensors): u64 little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets}}, then the tensor bytes. A file is accepted only as the reference
// reader (HF's Rust crate) accepts it: the header starts with "{", holds no key twice, and the tensors'
// byte ranges, sorted, tile the data exactly (no gap, no overlap, no trailing byte), each of the size of
// its shape and dtype. Hostile or truncated files get a SafetensorsError naming the problem, and a header
// over 100 MB is refused before it is read; the data is read only once the header has been checked.
import { promises as fs } from "node:fs";
import { writeFileAtomic } from "../util/fs.js";

export class SafetensorsError extends Error {}

export type Dtype = "F32" | "F16" | "BF16" | "F64" | "I64" | "I32" | "I16" | "I8" | "U64" | "U32" | "U16" | "U8" | "BOOL" | "F8_E5M2" | "F8_E4M3";

/** Bytes per element. A Map, so that a dtype named "constructor" or "toString" is unknown, not a function. */
const DTYPE_SIZE = new Map<string, number>([
  ["F64", 8], ["F32", 4], ["F16", 2], ["BF16", 2], ["F8_E5M2", 1], ["F8_E4M3", 1],
  ["I64", 8], ["I32", 4], ["I16", 2], ["I8", 1], ["U64", 8], ["U32", 4], ["U16", 2], ["U8", 1], ["BOOL", 1],
]);

function dtypeSize(dtype: Dtype): number {
  return DTYPE_SIZE.get(dtype)!;
}

export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/**
 * Node's read() takes at most 2 GiB - 1 bytes (reading a 2 GiB file in one call aborted the process on a
 * native assertion), so tensors are read in chunks of 1 GiB; each into its own buffer, since one Buffer
 * holds at most 4 GiB and the optimizer state of a model over 537M parameters is more.
 */
const READ_CHUNK_BYTES = 1 << 30;

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

/** A tensor as the header describes it: where its bytes are in the data (after the header). */
interface TensorEntry {
  name: string;
  dtype: Dtype;
  shape: number[];
  begin: number;
  end: number;
}

function headerLength(buf: Uint8Array, total: number, source: string): number {
  if (buf.length < 8) throw new SafetensorsError(`${source}: file is ${buf.length} bytes, too short for a safetensors header`);
  const n = new DataView(buf.buffer, buf.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) throw new SafetensorsError(`${source}: header length ${n} is over the 100 MB limit`);
  if (n > BigInt(total - 8)) throw new SafetensorsError(`${source}: header length ${n} is longer than the file (${total} bytes)`);
  return Number(n);
}

/** The tensors (sorted by offset) and metadata of a header, checked against the `dataLength` bytes after it. */
function parseHeader(bytes: Uint8Array, dataLength: number, source: string): { entries: TensorEntry[]; metadata: Record<string, string> } {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new SafetensorsError(`${source}: header is not valid UTF-8`);
  }
  if (!text.startsWith("{")) throw new SafetensorsError(`${source}: header does not start with "{" (it starts with ${JSON.stringify(text.slice(0, 16))}); not a safetensors file`);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(`${source}: header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) throw new SafetensorsError(`${source}: header is not a JSON object`);
  const twice = duplicateKey(text);
  if (twice) throw new SafetensorsError(`${source}: header holds ${twice} twice (JSON readers would silently keep one of them)`);
  let metadata: Record<string, string> = {};
  const entries: TensorEntry[] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof entry !== "object" || entry === null || Array.isArray(entry) || Object.values(entry).some((v) => typeof v !== "string")) {
        throw new SafetensorsError(`${source}: __metadata__ must map strings to strings`);
      }
      metadata = entry as Record<string, string>;
      continue;
    }
    entries.push(parseEntry(name, entry, dataLength, source));
  }
  // The reference's rule: sorted by offset, each tensor begins where the one before ends, and the last
  // ends where the file does.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const [i, t] of entries.entries()) {
    if (t.begin < cursor) throw new SafetensorsError(`${source}: tensors ${entries[i - 1].name} and ${t.name} overlap`);
    if (t.begin > cursor) throw new SafetensorsError(`${source}: data bytes ${cursor}..${t.begin} belong to no tensor (before tensor ${t.name})`);
    cursor = t.end;
  }
  if (cursor !== dataLength) throw new SafetensorsError(`${source}: the data is ${dataLength} bytes but its tensors end at byte ${cursor}; the ${dataLength - cursor} bytes after it belong to no tensor`);
  return { entries, metadata };
}

function parseEntry(name: string, entry: unknown, dataLength: number, source: string): TensorEntry {
  const bad = (what: string) => new SafetensorsError(`${source}: tensor ${name}: ${what}`);
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw bad("entry is not an object");
  const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof e.dtype !== "string" || !DTYPE_SIZE.has(e.dtype)) throw bad(`unknown dtype ${JSON.stringify(e.dtype)} (known: ${[...DTYPE_SIZE.keys()].join(", ")})`);
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
  const expected = shape.reduce((a, b) => a * b, 1) * dtypeSize(dtype);
  if (end - begin !== expected) throw bad(`${end - begin} bytes for shape [${shape}] of ${dtype} (expected ${expected})`);
  return { name, dtype, shape, begin, end };
}

/**
 * The first key that some object of `json` (valid JSON) holds twice, with the keys leading to it, e.g.
 * `key "a.weight" → "dtype"`; undefined if none. JSON.parse keeps the last silently, so a header could
 * say one thing to us and another to a reader that keeps the first.
 */
function duplicateKey(json: string): string | undefined {
  // One frame per open object (its keys so far, and whether a key comes next) or array (null).
  const stack: ({ keys: Set<string>; key: string; expectKey: boolean } | null)[] = [];
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    const top = stack[stack.length - 1];
    if (c === "{") stack.push({ keys: new Set(), key: "", expectKey: true });
    else if (c === "[") stack.push(null);
    else if (c === "}" || c === "]") stack.pop();
    else if (c === "," && top) top.expectKey = true;
    else if (c === '"') {
      let j = i + 1;
      while (json[j] !== '"') j += json[j] === "\\" ? 2 : 1;
      if (top?.expectKey) {
        const key = JSON.parse(json.slice(i, j + 1)) as string;
        top.key = key;
        if (top.keys.has(key)) return `key ${stack.flatMap((f) => (f ? [JSON.stringify(f.key)] : [])).join(" → ")}`;
        top.keys.add(key);
        top.expectKey = false;
      }
      i = j;
    }
  }
  return undefined;
}

function tensorsOf(entries: TensorEntry[], bytes: (t: TensorEntry) => Uint8Array): Map<string, NamedTensor> {
  return new Map(entries.map((t) => [t.name, { dtype: t.dtype, shape: t.shape, data: bytes(t) }]));
}

export function parseSafetensors(buf: Uint8Array, source = "<buffer>"): Safetensors {
  const n = headerLength(buf, buf.length, source);
  const dataStart = 8 + n;
  const { entries, metadata } = parseHeader(buf.subarray(8, dataStart), buf.length - dataStart, source);
  return { tensors: tensorsOf(entries, (t) => buf.subarray(dataStart + t.begin, dataStart + t.end)), metadata };
}

/**
 * Where a tensor's bytes should go: a buffer of exactly its size (which becomes its `data`), or undefined
 * for a buffer of its own.
 */
export type Destination = (name: string, dtype: Dtype, shape: number[], bytes: number) => Uint8Array | undefined;

/**
 * Reads a safetensors file: the header first, checked whole before any tensor is read; then each tensor
 * into its own buffer (aligned, so float32 views need no copy), or where `into` says, in reads of at most
 * `chunkBytes`. Reading BERT-Base's weights straight into the parameters' buffer took 0.3 s where reading
 * them into fresh buffers and copying took 1.0 s (fresh pages fault twice).
 */
export function readSafetensors(file: string, chunkBytes = READ_CHUNK_BYTES, into?: Destination): Promise<Safetensors> {
  return withHeader(file, chunkBytes, async ({ entries, metadata, dataStart }, read) => {
    const data = new Map<TensorEntry, Uint8Array>();
    for (const t of entries) {
      const bytes = t.end - t.begin;
      const there = into?.(t.name, t.dtype, t.shape, bytes);
      if (there && there.length !== bytes) throw new Error(`readSafetensors: a destination of ${there.length} bytes for tensor ${t.name} of ${bytes}`);
      data.set(t, await read(there ?? Buffer.allocUnsafeSlow(bytes), dataStart + t.begin));
    }
    return { tensors: tensorsOf(entries, (t) => data.get(t)!), metadata };
  });
}

/** Where a tensor's bytes lie in its file: `offset` from the file's first byte, `length` bytes. */
export interface TensorLayout {
  dtype: Dtype;
  shape: number[];
  offset: number;
  length: number;
}

/** Each tensor's dtype, shape and place in a safetensors file, in the order of the data, from its header alone (checked as by readSafetensors). */
export function readSafetensorsLayout(file: string): Promise<Map<string, TensorLayout>> {
  return withHeader(file, READ_CHUNK_BYTES, async ({ entries, dataStart }) => new Map(entries.map((t) => [t.name, { dtype: t.dtype, shape: t.shape, offset: dataStart + t.begin, length: t.end - t.begin }])));
}

type Reader = (buf: Uint8Array, position: number) => Promise<Uint8Array>;

/** Opens `file`, reads and checks its header, and runs `body`, which may read more; the file is closed after. */
async function withHeader<T>(file: string, chunkBytes: number, body: (header: ReturnType<typeof parseHeader> & { dataStart: number }, read: Reader) => Promise<T>): Promise<T> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, "r");
  } catch (e) {
    throw new SafetensorsError(`${file}: cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const { size } = await handle.stat();
    const read: Reader = async (buf, position) => {
      for (let done = 0; done < buf.length; ) {
        const { bytesRead } = await handle.read(buf, done, Math.min(chunkBytes, buf.length - done), position + done);
        if (bytesRead === 0) throw new SafetensorsError(`${file}: the file ended at byte ${position + done} while reading (it was ${size} bytes; is it being written?)`);
        done += bytesRead;
      }
      return buf;
    };
    const n = headerLength(await read(Buffer.alloc(Math.min(8, size)), 0), size, file);
    const dataStart = 8 + n;
    return await body({ ...parseHeader(await read(Buffer.alloc(n), 8), size - dataStart, file), dataStart }, read);
  } finally {
    await handle.close();
  }
}

/** float32 view (zero-copy when aligned) of a floating-point tensor. */
export function toFloat32(t: NamedTensor): Float32Array {
  const { data } = t;
  const n = data.length / dtypeSize(t.dtype);
  switch (t.dtype) {
    case "F32":
      if (data.byteOffset % 4 === 0) return new Float32Array(data.buffer, data.byteOffset, n);
      // A copy: on a Buffer, slice() is a view of the same memory (a Buffer.concat pool), not a copy.
      return new Float32Array(new Uint8Array(data).buffer);
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
  for (let i = 1; i < sorted.length; i++) if (sorted[i][0] === sorted[i - 1][0]) throw new SafetensorsError(`tensor ${sorted[i][0]} is given twice`);
  const header: Record<string, unknown> = { __metadata__: metadata };
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of sorted) {
    const bytes = t.data instanceof Float32Array ? new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) : t.data;
    const expected = t.shape.reduce((a, b) => a * b, 1) * dtypeSize(t.dtype);
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
