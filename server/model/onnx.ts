// Minimal protobuf writer for the ONNX ModelProto (onnx/onnx.proto, proto2 field numbers).
// Only what the graph builder emits: nodes, attributes, tensors, value infos, opset imports.

export const enum DataType {
  FLOAT = 1,
  UINT8 = 2,
  INT32 = 6,
  INT64 = 7,
  BOOL = 9,
}

export type AttrValue = number | string | number[] | Float32Array | TensorProto | { float: number } | { floats: number[] };

export interface TensorProto {
  name?: string;
  dataType: DataType;
  dims: number[];
  raw: Uint8Array;
}

export interface NodeProto {
  opType: string;
  domain?: string;
  name?: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
}

export interface ValueInfoProto {
  name: string;
  dataType: DataType;
  shape: (number | string)[];
}

export interface GraphProto {
  name: string;
  nodes: NodeProto[];
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
  initializers: TensorProto[];
}

export interface ModelProto {
  graph: GraphProto;
  opsets: { domain: string; version: number }[];
  producer?: string;
}

/** Growable byte sink with protobuf primitives. */
class Writer {
  private buf = new Uint8Array(1 << 12);
  private len = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  varint(v: number | bigint): void {
    let x = BigInt.asUintN(64, BigInt(v));
    this.reserve(10);
    while (x >= 0x80n) {
      this.buf[this.len++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    this.buf[this.len++] = Number(x);
  }

  tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  int(field: number, v: number): void {
    this.tag(field, 0);
    this.varint(v);
  }

  float(field: number, v: number): void {
    this.tag(field, 5);
    this.reserve(4);
    new DataView(this.buf.buffer).setFloat32(this.len, v, true);
    this.len += 4;
  }

  bytes(field: number, data: Uint8Array): void {
    this.tag(field, 2);
    this.varint(data.length);
    this.reserve(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
  }

  string(field: number, s: string): void {
    this.bytes(field, Buffer.from(s, "utf8"));
  }

  message(field: number, write: (w: Writer) => void): void {
    const inner = new Writer();
    write(inner);
    this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

function writeTensor(w: Writer, t: TensorProto): void {
  for (const d of t.dims) w.int(1, d);
  w.int(2, t.dataType);
  if (t.name) w.string(8, t.name);
  w.bytes(9, t.raw);
}

const enum AttrType {
  FLOAT = 1,
  INT = 2,
  STRING = 3,
  TENSOR = 4,
  FLOATS = 6,
  INTS = 7,
}

function writeAttr(w: Writer, name: string, v: AttrValue): void {
  w.string(1, name);
  if (typeof v === "number") {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: use { float } for non-integer ${v}`);
    w.int(20, AttrType.INT);
    w.int(3, v);
  } else if (typeof v === "string") {
    w.int(20, AttrType.STRING);
    w.string(4, v);
  } else if (Array.isArray(v)) {
    w.int(20, AttrType.INTS);
    for (const i of v) w.int(8, i);
  } else if (v instanceof Float32Array || "floats" in v) {
    w.int(20, AttrType.FLOATS);
    for (const f of v instanceof Float32Array ? v : v.floats) w.float(7, f);
  } else if ("float" in v) {
    w.int(20, AttrType.FLOAT);
    w.float(2, v.float);
  } else {
    w.int(20, AttrType.TENSOR);
    w.message(5, (t) => writeTensor(t, v));
  }
}

function writeValueInfo(w: Writer, v: ValueInfoProto): void {
  w.string(1, v.name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, v.dataType);
      tensor.message(2, (shape) => {
        for (const d of v.shape) {
          shape.message(1, (dim) => (typeof d === "number" ? dim.int(1, d) : dim.string(2, d)));
        }
      });
    }),
  );
}

function writeNode(w: Writer, n: NodeProto): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.opType);
  for (const [k, v] of Object.entries(n.attrs)) w.message(5, (a) => writeAttr(a, k, v));
  if (n.domain) w.string(7, n.domain);
}

export function encodeModel(m: ModelProto): Uint8Array {
  const w = new Writer();
  w.int(1, 9); // ir_version 9 goes with opset 20
  w.string(2, m.producer ?? "bert-studio");
  w.message(7, (g) => {
    for (const n of m.graph.nodes) g.message(1, (x) => writeNode(x, n));
    g.string(2, m.graph.name);
    for (const t of m.graph.initializers) g.message(5, (x) => writeTensor(x, t));
    for (const v of m.graph.inputs) g.message(11, (x) => writeValueInfo(x, v));
    for (const v of m.graph.outputs) g.message(12, (x) => writeValueInfo(x, v));
  });
  for (const o of m.opsets) {
    w.message(8, (x) => {
      if (o.domain) x.string(1, o.domain);
      x.int(2, o.version);
    });
  }
  return w.finish();
}
