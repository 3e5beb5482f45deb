// The tokenized corpus, cached on disk under a key made of the corpus files' contents and the tokenizer:
// a second run on the same text skips tokenization. One file per key: a JSON header, then the document
// and sentence offsets (Uint32) and the token ids (16 or 32 bits), read back as views of one buffer.
import { createHash } from "node:crypto";
import { createReadStream, promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { writeFileAtomic } from "../util/fs.js";
import { documents, textFiles, type CorpusOptions } from "./corpus.js";
import { TokenCorpus, TokenCorpusBuilder } from "./token-corpus.js";
import type { BertTokenizer } from "./tokenizer.js";

export function cacheDir(): string {
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache"), "bert-studio", "tokenized");
}

/** Key: the tokenizer (vocabulary, casing), the corpus options and every file's path and content. */
async function cacheKey(root: string, tok: BertTokenizer, opts: CorpusOptions): Promise<string> {
  const h = createHash("sha256");
  h.update(JSON.stringify({ v: 2, lowercase: tok.lowercase, include: opts.include, exclude: opts.exclude, max: opts.maxFileBytes }));
  h.update(tok.vocab.join("\n"));
  for await (const file of textFiles(root, { ...opts, warn: () => undefined })) {
    h.update(`\0${path.relative(root, file)}\0`);
    for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  }
  return h.digest("hex").slice(0, 32);
}

export interface TokenizedCorpus {
  docs: TokenCorpus;
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
  const builder = new TokenCorpusBuilder(tok.vocabSize);
  let bytes = 0;
  // Sentences go to the Rust tokenizer in batches of a few thousand (it encodes a batch in parallel).
  let pending: string[][] = [];
  let pendingSentences = 0;
  const flush = async () => {
    const ids = await tok.tokenizeBatch(pending.flat());
    let i = 0;
    for (const doc of pending) {
      builder.add(ids.slice(i, i + doc.length));
      i += doc.length;
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
  const docs = builder.finish();
  if (file) await save(file, docs, bytes).catch(() => undefined); // a cache that cannot be written is only slower
  return { docs, bytes, cached: false };
}

async function save(file: string, docs: TokenCorpus, bytes: number): Promise<void> {
  const json = JSON.stringify({ docs: docs.length, sentences: docs.sentenceOffsets.length - 1, tokens: docs.ids.length, idBytes: docs.ids.BYTES_PER_ELEMENT, bytes });
  const header = Buffer.from(json.padEnd(Math.ceil(Math.max(json.length, 252) / 4) * 4)); // 4 + header: aligned arrays
  const len = Buffer.alloc(4);
  len.writeUInt32LE(header.length);
  await fs.mkdir(path.dirname(file), { recursive: true });
  const view = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  await writeFileAtomic(file, [len, header, view(docs.docOffsets), view(docs.sentenceOffsets), view(docs.ids)]);
}

async function load(file: string): Promise<{ docs: TokenCorpus; bytes: number }> {
  let buf = await fs.readFile(file);
  if (buf.byteOffset % 4 !== 0) buf = Buffer.from(buf); // typed views need aligned offsets
  const n = buf.readUInt32LE(0);
  const h = JSON.parse(buf.subarray(4, 4 + n).toString()) as { docs: number; sentences: number; tokens: number; idBytes: number; bytes: number };
  const at = buf.byteOffset + 4 + n;
  if (buf.length !== 4 + n + 4 * (h.docs + 1 + h.sentences + 1) + h.idBytes * h.tokens) throw new Error(`${file}: truncated cache`);
  const docOffsets = new Uint32Array(buf.buffer, at, h.docs + 1);
  const sentenceOffsets = new Uint32Array(buf.buffer, at + 4 * (h.docs + 1), h.sentences + 1);
  const idsAt = at + 4 * (h.docs + 1 + h.sentences + 1);
  const ids = h.idBytes === 2 ? new Uint16Array(buf.buffer, idsAt, h.tokens) : new Int32Array(buf.buffer, idsAt, h.tokens);
  return { docs: TokenCorpus.fromArrays(ids, sentenceOffsets, docOffsets), bytes: h.bytes };
}
