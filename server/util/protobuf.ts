// Protocol buffers wire format: varints, fixed 32/64-bit values, length-delimited fields.

/** Byte fields at least this long are kept by reference until finish(), not copied into the buffer. */
const BY_REFERENCE = 1 << 16;

/**
 * Growable byte sink with protobuf primitives (wire format only; messages are written by hand). Large byte
 * fields (a model's initializers) are copied once, by finish(): copying them into the buffer, the buffer
 * into its doubled successors and each nested message into its parent made encoding BERT-Base's eval graph
 * (440 MB) take 0.5 to 2.7 s, about as long as ONNX Runtime took to load it.
 */
export class ProtoWriter {
  private buf = new Uint8Array(1 << 12);
  private len = 0;
  /** What came before `buf`, in order: flushed buffers and large byte fields, not yet copied. */
  private parts: Uint8Array[] = [];
  private partsLength = 0;

  /** Bytes written so far. */
  get length(): number {
    return this.partsLength + this.len;
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  /** Appends `chunks` by reference, after what the buffer holds. */
  private append(chunks: Uint8Array[]): void {
    if (this.len > 0) {
      this.parts.push(this.buf.subarray(0, this.len));
      this.partsLength += this.len;
      this.buf = new Uint8Array(1 << 12);
      this.len = 0;
    }
    for (const c of chunks) {
      this.parts.push(c);
      this.partsLength += c.length;
    }
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

  double(field: number, v: number): void {
    this.tag(field, 1);
    this.reserve(8);
    new DataView(this.buf.buffer).setFloat64(this.len, v, true);
    this.len += 8;
  }

  /** A length-delimited field; `data` of BY_REFERENCE bytes or more must stay unchanged until finish(). */
  bytes(field: number, data: Uint8Array): void {
    this.tag(field, 2);
    this.varint(data.length);
    if (data.length >= BY_REFERENCE) return this.append([data]);
    this.reserve(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
  }

  string(field: number, s: string): void {
    this.bytes(field, Buffer.from(s, "utf8"));
  }

  message(field: number, write: (w: ProtoWriter) => void): void {
    const inner = new ProtoWriter();
    write(inner);
    if (inner.parts.length === 0) return this.bytes(field, inner.buf.subarray(0, inner.len));
    this.tag(field, 2);
    this.varint(inner.length);
    this.append([...inner.parts, inner.buf.subarray(0, inner.len)]);
  }

  finish(): Uint8Array {
    if (this.parts.length === 0) return this.buf.subarray(0, this.len);
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of [...this.parts, this.buf.subarray(0, this.len)]) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

/** A reader of the wire format: walks one message's fields, handing each to the caller (no schema). */
export class ProtoReader {
  private at = 0;

  constructor(private readonly buf: Uint8Array) {}

  private varint(): number {
    let x = 0;
    let scale = 1;
    for (;;) {
      if (this.at >= this.buf.length) throw new Error("protobuf: truncated varint");
      const b = this.buf[this.at++];
      x += (b & 0x7f) * scale;
      if (b < 0x80) return x;
      scale *= 128;
    }
  }

  /**
   * Calls `visit(field, value)` for each field in order: a length-delimited field's value is its bytes (a
   * view, not a copy), any other field's value is its number (varints above 2^53 lose precision; fixed
   * 32/64-bit fields are skipped with their value as undefined).
   */
  fields(visit: (field: number, value: Uint8Array | number | undefined) => void): void {
    while (this.at < this.buf.length) {
      const key = this.varint();
      const field = Math.floor(key / 8);
      switch (key & 7) {
        case 0:
          visit(field, this.varint());
          break;
        case 1:
          this.at += 8;
          visit(field, undefined);
          break;
        case 2: {
          const n = this.varint();
          if (this.at + n > this.buf.length) throw new Error("protobuf: truncated field");
          visit(field, this.buf.subarray(this.at, this.at + n));
          this.at += n;
          break;
        }
        case 5:
          this.at += 4;
          visit(field, undefined);
          break;
        default:
          throw new Error(`protobuf: wire type ${key & 7} not supported`);
      }
    }
  }
}
