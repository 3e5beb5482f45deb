// The tokenized corpus, cached on disk under a key made of the corpus files' contents, the tokenizer and
// the code that turns text into tokens: a second run on the same text skips tokenization. One file per
// key: a JSON header, then the document and sentence offsets (Uint32) and the token ids (16 or 32 bits),
// read back as views of one buffer. The least recently used entries go when the cache outgrows its cap.
import { createHash } from "node:crypto";
import { createReadStream, promises as fs, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { cacheCapBytes, cacheRoot, evictLeastRecent } from "../util/cache.js";
import { writeFileAtomic } from "../util/fs.js";
import { documents, textFiles, type CorpusOptions } from "./corpus.js";
import { TokenCorpus, TokenCorpusBuilder } from "./token-corpus.js";
import type { BertTokenizer } from "./tokenizer.js";

/** `$BERT_STUDIO_CACHE/tokenized`, else `$XDG_CACHE_HOME/bert-studio/tokenized`, else `~/.cache/bert-studio/tokenized`. */
export function cacheDir(): string {
  return path.join(cacheRoot(), "tokenized");
}

/**
 * The modules (in server/training) whose code decides the token stream: which files are read and how
 * they become documents and sentences (corpus.ts), how sentences become ids (tokenizer.ts), how they are
 * stored (token-corpus.ts, this file). Their sources are part of the key, so that a change to sentence
 * splitting is not hidden by a warm cache, without a version number to remember to bump; an edited
 * comment costs one re-tokenization.
 */
const TOKEN_STREAM_MODULES = ["corpus.ts", "tokenizer.ts", "token-corpus.ts", "token-cache.ts"];

/** SHA-256 of every server/text/*.ts source, defined by scripts/build.mjs in the bundles (which have no sources). */
declare const BERT_STUDIO_SOURCE_SHA256: Record<string, string> | undefined;

/**
 * What the code that makes the token stream is: its modules' hashes and the `tokenizers` library's
 * version; undefined when the sources cannot be found, and then nothing is cached rather than risk
 * answering from an older version's entry.
 */
function tokenStreamVersion(): string | undefined {
  const built = typeof BERT_STUDIO_SOURCE_SHA256 === "object" ? BERT_STUDIO_SOURCE_SHA256 : undefined;
  // path.dirname(__filename), not __dirname: under tsx a module that an ES module imports gets the
  // right __filename but a data: URL for __dirname.
  const source = (m: string) => createHash("sha256").update(readFileSync(path.join(path.dirname(__filename), m))).digest("hex");
  let modules: string[];
  try {
    modules = TOKEN_STREAM_MODULES.map((m) => `${m}:${built ? built[m] : source(m)}`);
  } catch {
    return undefined;
  }
  let tokenizers = "unknown";
  try {
    tokenizers = (createRequire(__filename)("tokenizers/package.json") as { version: string }).version;
  } catch {
    // an unusual install: the modules' hashes still make the key
  }
  return [...modules, `tokenizers:${tokenizers}`].join(" ");
}

/** Key: the code's version, the tokenizer (vocabulary, casing), the corpus options and every file's path and content. */
async function cacheKey(root: string, tok: BertTokenizer, opts: CorpusOptions, version: string): Promise<string> {
  const h = createHash("sha256");
  h.update(JSON.stringify({ code: version, lowercase: tok.lowercase, include: opts.include, exclude: opts.exclude, max: opts.maxFileBytes }));
  h.update(tok.vocab.join("\n"));
  for await (const file of textFiles(root, { ...opts, warn: () => undefined })) {
    h.update(`\0${path.relative(root, file)}\0`);
    try {
      for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
    } catch (e) {
      if (typeof (e as NodeJS.ErrnoException).code !== "string") throw e;
      h.update(`\0unreadable ${(e as NodeJS.ErrnoException).code}`); // gone since the walk: documents() skips it too
    }
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
  const version = useCache ? tokenStreamVersion() : undefined;
  const file = version ? path.join(cacheDir(), `${await cacheKey(root, tok, opts, version)}.bin`) : undefined;
  if (file) {
    const hit = await load(file).catch(() => undefined);
    if (hit) {
      const now = new Date();
      await fs.utimes(file, now, now).catch(() => undefined); // its recency, for eviction
      return { ...hit, cached: true };
    }
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
  if (file) {
    try {
      await save(file, docs, bytes);
      await evictLeastRecent(path.dirname(file), ".bin", file, cacheCapBytes());
    } catch {
      // a cache that cannot be written or trimmed is only slower
    }
  }
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
