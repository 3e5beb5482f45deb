// The protobuf writer keeps large byte fields (a model's weights) by reference until it finishes, so that
// they are copied once; the bytes are those of copying every field in place, and the reader walks them back.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ProtoReader, ProtoWriter } from "../../server/util/protobuf.js";

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
const varint = (x: number) => {
  const out: number[] = [];
  for (; x >= 0x80; x = Math.floor(x / 128)) out.push((x & 0x7f) | 0x80);
  return [...out, x];
};
/** A length-delimited field spelled out byte by byte. */
const field = (n: number, body: Uint8Array | number[]) => Uint8Array.from([...varint((n << 3) | 2), ...varint(body.length), ...body]);
const concat = (...xs: Uint8Array[]) => Uint8Array.from(xs.flatMap((x) => [...x]));

test("nested messages with large and small byte fields encode as the wire format says", () => {
  const big = bytes(200_000, 1);
  const big2 = bytes(70_000, 2);
  const small = bytes(10, 3);
  const w = new ProtoWriter();
  w.int(1, 300);
  w.message(7, (g) => {
    g.bytes(9, big);
    g.message(5, (t) => {
      t.bytes(2, small);
      t.bytes(3, big2);
    });
    g.string(4, "Gemm");
  });
  const inner = concat(field(2, small), field(3, big2));
  const graph = concat(field(9, big), field(5, inner), field(4, [..."Gemm"].map((c) => c.charCodeAt(0))));
  const want = concat(Uint8Array.from([(1 << 3) | 0, ...varint(300)]), field(7, graph));
  assert.deepEqual(w.finish(), want);

  const seen: [number, number][] = [];
  new ProtoReader(want).fields((f, v) => seen.push([f, v instanceof Uint8Array ? v.length : (v as number)]));
  assert.deepEqual(seen, [[1, 300], [7, graph.length]]);
});
