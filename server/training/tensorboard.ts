// TensorBoard event files: TFRecord framing (length, masked CRC-32C, data, masked CRC-32C) around
// `Event` protobufs carrying scalar summaries. `tensorboard --logdir RUN` reads them.
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ProtoWriter } from "../util/protobuf.js";

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32C (Castagnoli), as TFRecord uses. */
export function crc32c(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function maskedCrc(data: Uint8Array): number {
  const c = crc32c(data);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

export function tfrecord(data: Uint8Array): Buffer {
  const head = Buffer.alloc(12);
  head.writeBigUInt64LE(BigInt(data.length), 0);
  head.writeUInt32LE(maskedCrc(head.subarray(0, 8)), 8);
  const tail = Buffer.alloc(4);
  tail.writeUInt32LE(maskedCrc(data), 0);
  return Buffer.concat([head, data, tail]);
}

/**
 * Event { wall_time = 1; step = 2; file_version = 3 | summary = 5 { value = 1 { tag = 1; simple_value = 2 } }
 * | session_log = 7 { status = 1 } }
 */
function event(step: number, body: (w: ProtoWriter) => void): Uint8Array {
  const w = new ProtoWriter();
  w.double(1, Date.now() / 1000);
  w.int(2, step);
  body(w);
  return w.finish();
}

/** SessionLog.SessionStatus.START */
const SESSION_START = 1;

export class EventWriter {
  private constructor(readonly file: string) {}

  /**
   * A new event file in `dir`; its name is never one that exists (a writer opened in the same second by
   * the same process gets the next suffix), so no earlier file is truncated. With `resumeStep`, a
   * SessionLog START at the next step makes TensorBoard drop the events after `resumeStep` that earlier
   * files hold (logged by a process stopped between checkpoints), as it does for restarted TF runs.
   */
  static async create(dir: string, resumeStep?: number): Promise<EventWriter> {
    const base = path.join(dir, `events.out.tfevents.${Math.floor(Date.now() / 1000)}.${os.hostname()}.${process.pid}`);
    const records = [tfrecord(event(0, (w) => w.string(3, "brain.Event:2")))];
    if (resumeStep !== undefined) records.push(tfrecord(event(resumeStep + 1, (w) => w.message(7, (l) => l.int(1, SESSION_START)))));
    for (let n = 0; ; n++) {
      const file = n === 0 ? base : `${base}.${n}`;
      try {
        await fs.writeFile(file, Buffer.concat(records), { flag: "wx" });
        return new EventWriter(file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      }
    }
  }

  async scalars(step: number, values: Record<string, number>): Promise<void> {
    const records: Buffer[] = [];
    for (const [tag, value] of Object.entries(values)) {
      if (!Number.isFinite(value)) continue;
      const summary = (v: ProtoWriter) => {
        v.string(1, tag);
        v.float(2, value);
      };
      records.push(tfrecord(event(step, (w) => w.message(5, (s) => s.message(1, summary)))));
    }
    await fs.appendFile(this.file, Buffer.concat(records));
  }
}
