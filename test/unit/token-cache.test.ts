// The tokenized-corpus cache: where it lives, what its key covers, and how it stays within its cap.
import "./isolated-cache.js";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, statSync, utimesSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import { cacheDir, tokenizeCorpus } from "../../server/text/token-cache.js";
import { BertTokenizer } from "../../server/text/tokenizer.js";

const tokenizer = BertTokenizer.fromVocabFile(path.resolve("data/bert-base-uncased-vocab.txt"));
const temp = (prefix: string) => mkdtempSync(path.join(os.tmpdir(), prefix));

/** A workspace of one file; corpora made with the same `words` count have entries of about one size. */
function corpus(name: string, words = 200): string {
  const dir = temp(`corpus-${name}-`);
  writeFileSync(path.join(dir, "notes.txt"), `${Array.from({ length: words }, (_, i) => `${name} word ${i}.`).join(" ")}\n`);
  return dir;
}

/** Whether tokenizing `dir` was answered by the cache. */
const cached = async (dir: string) => (await tokenizeCorpus(dir, await tokenizer)).cached;

const entries = () => readdirSync(cacheDir()).filter((f) => f.endsWith(".bin"));

/** A fresh, empty cache with a cap, for one test. */
function freshCache(capMb?: number): void {
  process.env.BERT_STUDIO_CACHE = temp("cache-");
  if (capMb === undefined) delete process.env.BERT_STUDIO_CACHE_MB;
  else process.env.BERT_STUDIO_CACHE_MB = String(capMb);
}

test("the cache lives in $BERT_STUDIO_CACHE, else in $XDG_CACHE_HOME/bert-studio", async () => {
  const own = temp("own-");
  process.env.BERT_STUDIO_CACHE = own;
  await tokenizeCorpus(corpus("where"), await tokenizer);
  assert.equal(readdirSync(path.join(own, "tokenized")).filter((f) => f.endsWith(".bin")).length, 1);

  delete process.env.BERT_STUDIO_CACHE;
  const xdg = temp("xdg-");
  const saved = process.env.XDG_CACHE_HOME;
  process.env.XDG_CACHE_HOME = xdg;
  try {
    await tokenizeCorpus(corpus("where"), await tokenizer);
    assert.equal(readdirSync(path.join(xdg, "bert-studio/tokenized")).filter((f) => f.endsWith(".bin")).length, 1);
  } finally {
    if (saved === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = saved;
  }
});

test("a build whose sentence splitting differs does not read the entries of this one", async () => {
  freshCache();
  const dir = corpus("version");
  assert.equal(await cached(dir), false);
  assert.equal(await cached(dir), true);
  // What scripts/build.mjs defines in a bundle: the hashes of the modules that make the token stream.
  const g = globalThis as { BERT_STUDIO_SOURCE_SHA256?: Record<string, string> };
  g.BERT_STUDIO_SOURCE_SHA256 = { "corpus.ts": "a corpus.ts that splits sentences otherwise" };
  try {
    assert.equal(await cached(dir), false, "another version of corpus.ts tokenizes again");
  } finally {
    delete g.BERT_STUDIO_SOURCE_SHA256;
  }
  assert.equal(await cached(dir), true, "this version's entry is still there");
});

test("over its cap the cache drops the least recently used corpus; a hit counts as a use", async () => {
  freshCache();
  const [a, b, c] = ["alpha", "bravo", "charlie"].map((n) => corpus(n));
  await cached(a);
  const entryMb = statSync(path.join(cacheDir(), entries()[0])).size / 1048576;
  freshCache(2.5 * entryMb); // room for two entries
  await cached(a);
  await sleep(20); // file times: one use clearly after the other
  await cached(b);
  await sleep(20);
  assert.equal(await cached(a), true); // a is now used more recently than b
  await sleep(20);
  assert.equal(await cached(c), false); // a third entry: b goes
  assert.equal(entries().length, 2);
  assert.equal(await cached(a), true);
  assert.equal(await cached(c), true);
  assert.equal(await cached(b), false);
});

test("the entry just written stays even when it alone is over the cap; stale partial writes go", async () => {
  freshCache(0);
  const [small, big] = [corpus("small", 10), corpus("big", 2000)];
  await cached(small);
  const stale = path.join(cacheDir(), "0123.bin.tmp-99999");
  writeFileSync(stale, "left by a killed process");
  utimesSync(stale, new Date(Date.now() - 2 * 3600_000), new Date(Date.now() - 2 * 3600_000));
  await sleep(20);
  assert.equal(await cached(big), false);
  assert.equal(entries().length, 1);
  assert.equal(await cached(big), true);
  assert.equal(existsSync(stale), false);
  assert.equal(await cached(small), false);
});
