// TensorBoard event files: TFRecord framing with masked CRC-32C and scalar summaries, decoded here.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { crc32c, EventWriter, maskedCrc } from "../../server/training/tensorboard.js";

/** Reads varint-keyed fields of a protobuf message: field number → raw values (numbers or byte slices). */
function fields(buf: Buffer): Map<number, (number | Buffer)[]> {
  const out = new Map<number, (number | Buffer)[]>();
  let i = 0;
  const varint = () => {
    let x = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[i++];
      x |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return x;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const [field, wire] = [key >> 3, key & 7];
    let v: number | Buffer;
    if (wire === 0) v = Number(varint());
    else if (wire === 1) {
      v = buf.readDoubleLE(i);
      i += 8;
    } else if (wire === 5) {
      v = buf.readFloatLE(i);
      i += 4;
    } else {
      const n = Number(varint());
      v = buf.subarray(i, i + n);
      i += n;
    }
    out.set(field, [...(out.get(field) ?? []), v]);
  }
  return out;
}

test("CRC-32C matches the standard check value", () => {
  assert.equal(crc32c(Buffer.from("123456789")), 0xe3069283);
  assert.equal(maskedCrc(Buffer.alloc(0)), 0xa282ead8);
});

test("event files decode to the scalars written, with valid record checksums", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "tb-"));
  const w = await EventWriter.create(dir);
  await w.scalars(10, { loss: 2.5, mlm_acc: 0.25 });
  await w.scalars(20, { loss: 2.0, nan_is_skipped: NaN });
  const [file] = readdirSync(dir);
  assert.match(file, /^events\.out\.tfevents\.\d+\./);
  const buf = readFileSync(path.join(dir, file));
  const events: Map<number, (number | Buffer)[]>[] = [];
  for (let i = 0; i < buf.length; ) {
    const len = Number(buf.readBigUInt64LE(i));
    assert.equal(buf.readUInt32LE(i + 8), maskedCrc(buf.subarray(i, i + 8)), "length checksum");
    const data = buf.subarray(i + 12, i + 12 + len);
    assert.equal(buf.readUInt32LE(i + 12 + len), maskedCrc(data), "data checksum");
    events.push(fields(data));
    i += 16 + len;
  }
  assert.equal((events[0].get(3)![0] as Buffer).toString(), "brain.Event:2");
  const scalars = events.slice(1).map((e) => {
    const value = fields(fields(e.get(5)![0] as Buffer).get(1)![0] as Buffer);
    return [e.get(2)![0], (value.get(1)![0] as Buffer).toString(), value.get(2)![0]];
  });
  assert.deepEqual(scalars, [
    [10, "loss", 2.5],
    [10, "mlm_acc", 0.25],
    [20, "loss", 2.0],
  ]);
});
