// Minimal protobuf writer for the ONNX ModelProto (onnx/onnx.proto, proto2 field numbers).
// Only what the graph builder emits: nodes, attributes, tensors, value infos, opset imports.

import { ProtoReader, ProtoWriter as Writer } from "../util/protobuf.js";

export const enum DataType {
  FLOAT = 1,
  UINT8 = 2,
  INT8 = 3,
  INT32 = 6,
  INT64 = 7,
  BOOL = 9,
}

export type AttrValue = number | string | number[] | Float32Array | TensorProto | { float: number } | { floats: number[] };

export interface TensorProto {
  name?: string;
  dataType: DataType;
  dims: number[];
  /** The bytes, little-endian; empty when `external` says where they are. */
  raw: Uint8Array;
  /** The bytes in an external data file (ONNX's external data: `location`, byte `offset` and `length`). */
  external?: { location: string; offset: number; length: number };
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

function writeTensor(w: Writer, t: TensorProto): void {
  for (const d of t.dims) w.int(1, d);
  w.int(2, t.dataType);
  if (t.name) w.string(8, t.name);
  if (!t.external) return w.bytes(9, t.raw);
  const { location, offset, length } = t.external;
  for (const [key, value] of [["location", location], ["offset", String(offset)], ["length", String(length)]]) {
    w.message(13, (e) => {
      e.string(1, key);
      e.string(2, value);
    });
  }
  w.int(14, 1); // data_location: EXTERNAL
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

/**
 * How many nodes of each op type the main graph of a serialised model has, named `domain.op` outside the
 * default domain (com.microsoft.Attention): what ONNX Runtime's optimizer made of a graph, read from the
 * file SessionOptions.optimizedModelFilePath writes.
 */
export function opTypeCounts(model: Uint8Array): Map<string, number> {
  const counts = new Map<string, number>();
  const text = (v: Uint8Array | number | undefined) => (v instanceof Uint8Array ? Buffer.from(v).toString("utf8") : "");
  new ProtoReader(model).fields((field, graph) => {
    if (field !== 7 || !(graph instanceof Uint8Array)) return;
    new ProtoReader(graph).fields((f, node) => {
      if (f !== 1 || !(node instanceof Uint8Array)) return;
      let op = "";
      let domain = "";
      new ProtoReader(node).fields((nf, v) => {
        if (nf === 4) op = text(v);
        else if (nf === 7) domain = text(v);
      });
      const name = domain && domain !== "ai.onnx" ? `${domain}.${op}` : op;
      counts.set(name, (counts.get(name) ?? 0) + 1);
    });
  });
  return counts;
}
