// The tokenized corpus, cached on disk under a key made of the corpus files' contents and the tokenizer:
// a second run on the same text skips tokenization. One file per key: a JSON header, then the document
// and sentence offsets and the token ids, all Int32, read back as views (no per-token objects).
import { createHash } from "node:crypto";
import { createReadStream, promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { writeFileAtomic } from "../util/fs.js";
import { documents, textFiles, type CorpusOptions } from "./corpus.js";
import type { Document } from "./pretraining-data.js";
import type { BertTokenizer } from "./tokenizer.js";

export function cacheDir(): string {
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache"), "bert-studio", "tokenized");
}

/** Key: the tokenizer (vocabulary, casing), the corpus options and every file's path and content. */
async function cacheKey(root: string, tok: BertTokenizer, opts: CorpusOptions): Promise<string> {
  const h = createHash("sha256");
  h.update(JSON.stringify({ v: 1, lowercase: tok.lowercase, include: opts.include, exclude: opts.exclude, max: opts.maxFileBytes }));
  h.update(tok.vocab.join("\n"));
  for await (const file of textFiles(root, { ...opts, warn: () => undefined })) {
    h.update(`\0${path.relative(root, file)}\0`);
    for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  }
  return h.digest("hex").slice(0, 32);
}

export interface TokenizedCorpus {
  docs: Document[];
  /** UTF-8 bytes of text read. */
  bytes: number;
  cached: boolean;
}

export async function tokenizeCorpus(root: string, tok: BertTokenizer, opts: CorpusOptions = {}, useCache = true): Promise<TokenizedCorpus> {
  const file = useCache ? path.join(cacheDir(), `${await cacheKey(root, tok, opts)}.bin`) : undefined;
  if (file) {
    const hit = await load(file).catch(() => undefined);
    if (hit) return { ...hit, cached: true };
  }
  const docs: Document[] = [];
  let bytes = 0;
  // Sentences go to the Rust tokenizer in batches of a few thousand (it encodes a batch in parallel).
  let pending: string[][] = [];
  let pendingSentences = 0;
  const flush = async () => {
    const ids = await tok.tokenizeBatch(pending.flat());
    let i = 0;
    for (const doc of pending) {
      const d = ids.slice(i, i + doc.length).filter((s) => s.length > 0);
      i += doc.length;
      if (d.length) docs.push(d);
    }
    pending = [];
    pendingSentences = 0;
  };
  for await (const doc of documents(root, opts)) {
    bytes += doc.reduce((n, s) => n + Buffer.byteLength(s) + 1, 0);
    pending.push(doc);
    pendingSentences += doc.length;
    if (pendingSentences >= 4096) await flush();
  }
  await flush();
  if (file) await save(file, docs, bytes).catch(() => undefined); // a cache that cannot be written is only slower
  return { docs, bytes, cached: false };
}

async function save(file: string, docs: Document[], bytes: number): Promise<void> {
  const sentences = docs.reduce((n, d) => n + d.length, 0);
  const tokens = docs.reduce((n, d) => n + d.reduce((m, s) => m + s.length, 0), 0);
  const docOffsets = new Int32Array(docs.length + 1);
  const sentenceOffsets = new Int32Array(sentences + 1);
  const ids = new Int32Array(tokens);
  let si = 0;
  let ti = 0;
  docs.forEach((d, di) => {
    docOffsets[di] = si;
    for (const s of d) {
      sentenceOffsets[si++] = ti;
      ids.set(s, ti);
      ti += s.length;
    }
  });
  docOffsets[docs.length] = si;
  sentenceOffsets[sentences] = ti;
  const header = Buffer.from(JSON.stringify({ docs: docs.length, sentences, tokens, bytes }).padEnd(252));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(header.length);
  await fs.mkdir(path.dirname(file), { recursive: true });
  const view = (a: Int32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  await writeFileAtomic(file, [len, header, view(docOffsets), view(sentenceOffsets), view(ids)]);
}

async function load(file: string): Promise<{ docs: Document[]; bytes: number }> {
  const buf = await fs.readFile(file);
  const n = buf.readUInt32LE(0);
  const h = JSON.parse(buf.subarray(4, 4 + n).toString()) as { docs: number; sentences: number; tokens: number; bytes: number };
  const start = 4 + n;
  const ints = new Int32Array(buf.buffer.slice(buf.byteOffset + start, buf.byteOffset + buf.length));
  if (ints.length !== h.docs + 1 + h.sentences + 1 + h.tokens) throw new Error(`${file}: truncated cache`);
  const docOffsets = ints.subarray(0, h.docs + 1);
  const sentenceOffsets = ints.subarray(h.docs + 1, h.docs + 1 + h.sentences + 1);
  const ids = ints.subarray(h.docs + 1 + h.sentences + 1);
  const docs: Document[] = [];
  for (let d = 0; d < h.docs; d++) {
    const doc: Int32Array[] = [];
    for (let s = docOffsets[d]; s < docOffsets[d + 1]; s++) doc.push(ids.subarray(sentenceOffsets[s], sentenceOffsets[s + 1]));
    docs.push(doc);
  }
  return { docs, bytes: h.bytes };
}
