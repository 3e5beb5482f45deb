// A safetensors file is accepted only as Hugging Face's reference reader would accept it, so that a file
// we load means the same to every reader; large files are read in chunks (one read() stops at 2 GiB).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { parseSafetensors, readSafetensors, SafetensorsError, serializeSafetensors, toFloat32, writeSafetensors, type TensorInput } from "../../server/model/safetensors.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "st-strict-"));
const HF_MODEL = path.resolve(process.cwd(), "test/fixtures/hf-generated/pretraining/model.safetensors");

/** A file from header text as written (so that keys can repeat) and `dataBytes` bytes of data. */
function file(headerText: string | Uint8Array, dataBytes: number): Uint8Array {
  const json = Buffer.from(headerText);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([head, json, Buffer.alloc(dataBytes)]);
}
const f32 = (begin: number, end: number) => `{"dtype":"F32","shape":[${(end - begin) / 4}],"data_offsets":[${begin},${end}]}`;

const REFUSED: [string, Uint8Array, RegExp][] = [
  ["a tensor named twice", file(`{"a":${f32(0, 4)},"a":${f32(4, 8)}}`, 8), /holds key "a" twice/],
  ["a tensor with two dtypes", file(`{"a":{"dtype":"F32","dtype":"U8","shape":[1],"data_offsets":[0,4]}}`, 4), /holds key "a" → "dtype" twice/],
  ["bytes between two tensors", file(`{"a":${f32(0, 4)},"b":${f32(8, 12)}}`, 12), /data bytes 4\.\.8 belong to no tensor \(before tensor b\)/],
  ["bytes after the last tensor", file(`{"a":${f32(0, 4)}}`, 12), /the 8 bytes after it belong to no tensor/],
  ["data but no tensor", file(`{"__metadata__":{"format":"pt"}}`, 8), /the 8 bytes after it belong to no tensor/],
  ["two tensors on the same bytes", file(`{"a":${f32(0, 4)},"b":${f32(0, 4)}}`, 4), /tensors a and b overlap/],
  ["a header that does not start with {", file(` {"a":${f32(0, 4)}}`, 4), /does not start with "\{"/],
  ["a header that is not UTF-8", file(Buffer.concat([Buffer.from('{"\xff":'), Buffer.from([0xff]), Buffer.from(`":${f32(0, 4)}}`)]), 4), /not valid UTF-8/],
  ["a dtype named constructor", file(`{"a":{"dtype":"constructor","shape":[1],"data_offsets":[0,4]}}`, 4), /tensor a: unknown dtype "constructor"/],
  ["a dtype named hasOwnProperty", file(`{"a":{"dtype":"hasOwnProperty","shape":[1],"data_offsets":[0,4]}}`, 4), /tensor a: unknown dtype "hasOwnProperty"/],
];

for (const [what, bytes, message] of REFUSED) {
  test(`a file with ${what} is refused, naming the file and the problem`, async () => {
    assert.throws(() => parseSafetensors(bytes, "bad.safetensors"), (e: Error) => e instanceof SafetensorsError && message.test(e.message) && e.message.includes("bad.safetensors"));
    const f = path.join(tmp, "bad.safetensors");
    writeFileSync(f, bytes);
    await assert.rejects(readSafetensors(f), (e: Error) => e instanceof SafetensorsError && message.test(e.message) && e.message.includes(f));
  });
}

const TENSORS: [string, TensorInput][] = [
  ["odd", { dtype: "F32", shape: [3, 7], data: Float32Array.from({ length: 21 }, (_, i) => i / 3) }],
  ["empty", { dtype: "F32", shape: [0, 5], data: new Float32Array(0) }],
  ["half", { dtype: "F16", shape: [5], data: Uint8Array.of(0, 60, 0, 64, 0, 188, 0, 0, 0, 124) }],
  ["bytes", { dtype: "U8", shape: [13], data: Uint8Array.from({ length: 13 }, (_, i) => 200 + i) }],
];

test("a file read in chunks smaller than its tensors gives the same tensors as one read", async () => {
  const f = path.join(tmp, "chunks.safetensors");
  await writeSafetensors(f, TENSORS);
  const whole = parseSafetensors(readFileSync(f), f);
  for (const chunk of [1, 7, 64]) {
    const { tensors } = await readSafetensors(f, chunk);
    assert.deepEqual([...tensors.keys()].sort(), [...whole.tensors.keys()].sort());
    for (const [name, t] of whole.tensors) {
      const got = tensors.get(name)!;
      assert.deepEqual([got.dtype, got.shape], [t.dtype, t.shape], name);
      assert.deepEqual(Buffer.from(got.data), Buffer.from(t.data), `${name} read in chunks of ${chunk} bytes`);
    }
    assert.deepEqual([...toFloat32(tensors.get("half")!)], [1, 2, -1, 0, Infinity]);
  }
});

test("what the writer writes passes every rule, and so does a file Hugging Face wrote", async () => {
  const back = parseSafetensors(Buffer.concat(serializeSafetensors(TENSORS)), "round trip");
  assert.deepEqual([...toFloat32(back.tensors.get("odd")!)], [...(TENSORS[0][1].data as Float32Array)]);
  const hf = await readSafetensors(HF_MODEL);
  const f = path.join(tmp, "again.safetensors");
  await writeSafetensors(f, hf.tensors);
  const again = await readSafetensors(f);
  assert.equal(again.tensors.size, hf.tensors.size);
  for (const [name, t] of hf.tensors) assert.deepEqual(Buffer.from(again.tensors.get(name)!.data), Buffer.from(t.data), name);
  assert.throws(() => serializeSafetensors([TENSORS[0], TENSORS[0]]), /tensor odd is given twice/);
});
