import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { parseSafetensors, readSafetensors, SafetensorsError, serializeSafetensors, toFloat32, writeSafetensors } from "../../server/model/safetensors.js";

const FIXTURE = path.resolve(process.cwd(), "test/fixtures/hf/pretraining/model.safetensors");

test("reads an HF save_pretrained checkpoint", async () => {
  const { tensors, metadata } = await readSafetensors(FIXTURE);
  assert.equal(metadata.format, "pt");
  const emb = tensors.get("bert.embeddings.word_embeddings.weight")!;
  assert.deepEqual(emb.shape, [1000, 32]);
  assert.equal(emb.dtype, "F32");
  assert.equal(toFloat32(emb).length, 32000);
  assert.ok(!tensors.has("cls.predictions.decoder.weight"), "tied decoder weight is not stored");
});

test("write then read gives the same tensors, byte for byte", async () => {
  const { tensors } = await readSafetensors(FIXTURE);
  const dir = mkdtempSync(path.join(os.tmpdir(), "st-"));
  const file = path.join(dir, "model.safetensors");
  await writeSafetensors(file, tensors);
  const back = (await readSafetensors(file)).tensors;
  assert.equal(back.size, tensors.size);
  for (const [name, t] of tensors) assert.deepEqual(Buffer.from(back.get(name)!.data), Buffer.from(t.data), name);
});

function withHeader(header: unknown, dataBytes = 0, declaredLength?: number): Uint8Array {
  const json = Buffer.from(JSON.stringify(header));
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(declaredLength ?? json.length));
  return Buffer.concat([head, json, Buffer.alloc(dataBytes)]);
}

const HOSTILE: [string, Uint8Array, RegExp][] = [
  ["shorter than 8 bytes", Buffer.from([1, 2, 3]), /too short/],
  ["header longer than the file", withHeader({}, 0, 1000), /longer than the file/],
  ["header over 100 MB", withHeader({}, 0, 200 * 1024 * 1024), /100 MB/],
  ["invalid JSON", Buffer.concat([Buffer.from([5, 0, 0, 0, 0, 0, 0, 0]), Buffer.from("{nope")]), /not valid JSON/],
  ["offsets out of range", withHeader({ a: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, 8), /out of range/],
  ["begin after end", withHeader({ a: { dtype: "F32", shape: [0], data_offsets: [8, 4] } }, 8), /begin after end/],
  ["size does not match the shape", withHeader({ a: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, 8), /expected 12/],
  ["unknown dtype", withHeader({ a: { dtype: "Q7", shape: [1], data_offsets: [0, 1] } }, 8), /unknown dtype/],
  ["negative shape", withHeader({ a: { dtype: "U8", shape: [-1], data_offsets: [0, 1] } }, 8), /invalid shape/],
  [
    "overlapping tensors",
    withHeader({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [2], data_offsets: [4, 12] } }, 16),
    /overlap/,
  ],
  ["non-string metadata", withHeader({ __metadata__: { a: 1 } }), /__metadata__/],
];

for (const [name, buf, message] of HOSTILE) {
  test(`hostile safetensors: ${name} is a clear error`, () => {
    assert.throws(() => parseSafetensors(buf, "bad.safetensors"), (e: Error) => e instanceof SafetensorsError && message.test(e.message) && e.message.includes("bad.safetensors"));
  });
}

test("a hostile header length is refused before the file is read", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "st-"));
  const file = path.join(dir, "huge.safetensors");
  writeFileSync(file, withHeader({}, 0, 2 ** 40));
  await assert.rejects(readSafetensors(file), /100 MB/);
});

test("serializes with an 8-byte aligned header", () => {
  const [head] = serializeSafetensors([["x", { dtype: "F32", shape: [3], data: Float32Array.of(1, 2, 3) }]]);
  assert.equal(Number(Buffer.from(head).readBigUInt64LE(0)) % 8, 0);
  const round = parseSafetensors(Buffer.concat(serializeSafetensors([["x", { dtype: "F32", shape: [3], data: Float32Array.of(1, 2, 3) }]])));
  assert.deepEqual([...toFloat32(round.tensors.get("x")!)], [1, 2, 3]);
});
