// MLM + NSP examples (create_pretraining_data rules) and the corpus reader, on real text.
import "./isolated-cache.js";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { documents, gitignoreMatcher, splitSentences, textFiles } from "../../server/text/corpus.js";
import { collate, createInstances, DEFAULT_PRETRAINING, maskTokens, shards, type SpecialIds } from "../../server/pretraining/pretraining-data.js";
import { BatchStream } from "../../server/pretraining/pretrain.js";
import { TokenCorpus } from "../../server/text/token-corpus.js";
import { tokenizeCorpus } from "../../server/text/token-cache.js";
import { BertTokenizer } from "../../server/text/tokenizer.js";
import { Rng } from "../../server/util/rng.js";

const DATA = path.resolve(process.cwd(), "data");
const opts = { ...DEFAULT_PRETRAINING, maxSeqLength: 64, maxPredictionsPerSeq: 10 };

async function corpus() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "corpus-"));
  const { readFileSync } = await import("node:fs");
  writeFileSync(path.join(dir, "wiki.valid.tokens"), readFileSync(path.join(DATA, "wikitext-2-slice/wiki.train.tokens"), "utf8").slice(0, 200_000));
  const tok = await BertTokenizer.fromVocabFile(path.join(DATA, "bert-base-uncased-vocab.txt"));
  const { docs } = await tokenizeCorpus(dir, tok);
  const special: SpecialIds = { cls: tok.clsId, sep: tok.sepId, mask: tok.maskId, pad: tok.padId, vocabSize: tok.vocabSize, isContinuation: tok.continuationMask() };
  return { docs, tok, special };
}

test("instances: [CLS] A [SEP] B [SEP] within max_seq_length, NSP half random", async () => {
  const { docs, special } = await corpus();
  assert.ok(docs.length > 5, `${docs.length} documents`);
  const instances = createInstances(docs, opts, special, new Rng(1));
  assert.ok(instances.length > 100);
  let random = 0;
  for (const inst of instances) {
    assert.ok(inst.ids.length <= 64);
    assert.equal(inst.ids[0], special.cls);
    assert.equal(inst.ids[inst.bStart - 1], special.sep);
    assert.equal(inst.ids[inst.ids.length - 1], special.sep);
    assert.ok(inst.bStart >= 3 && inst.bStart < inst.ids.length - 1, "both segments non-empty");
    random += inst.isRandomNext;
  }
  const share = random / instances.length;
  assert.ok(share > 0.4 && share < 0.65, `random-next share ${share}`);
  assert.deepEqual(createInstances(docs, opts, special, new Rng(1)).map((i) => [...i.ids]), instances.map((i) => [...i.ids]), "seeded: reproducible");
});

test("the corpus is three flat arrays; documents and sentences are views", () => {
  const c = TokenCorpus.fromDocuments([[[1, 2], [], [3]], [], [[4, 5, 6]]], 30522);
  assert.equal(c.length, 2); // the empty document and the empty sentence are dropped
  assert.ok(c.ids instanceof Uint16Array);
  assert.deepEqual(c.toDocuments(), [[[1, 2], [3]], [[4, 5, 6]]]);
  assert.equal(c.tokens(), 6);
  const tail = c.slice(1, 2);
  assert.deepEqual(tail.toDocuments(), [[[4, 5, 6]]]);
  assert.deepEqual([...tail.sentence(0, 0)], [4, 5, 6]);
  assert.ok(TokenCorpus.fromDocuments([[[70000]]], 80000).ids instanceof Int32Array);
});

test("batches go through the corpus shard by shard; a stream restored from its position and RNG continues alike", async () => {
  const { docs, special } = await corpus();
  const ranges = shards(docs, 5000);
  assert.ok(ranges.length >= 5, `${ranges.length} shards`);
  assert.deepEqual([ranges[0][0], ranges[ranges.length - 1][1]], [0, docs.length]);
  ranges.slice(1).forEach(([from], i) => assert.equal(from, ranges[i][1]));
  ranges.slice(0, -1).forEach(([from, to]) => assert.ok(docs.tokens(from, to) >= 5000 && docs.tokens(from, to - 1) < 5000));
  const perEpoch = ranges.reduce((n, r, i) => n + BatchStream.shardInstances(docs, opts, special, 3, 0, i, r).length, 0);
  const stream = (position: { epoch: number; shard: number; next: number }, rng: Rng) => new BatchStream(docs, opts, special, 16, 3, position, rng, 5000);
  const batches = Math.ceil(perEpoch / 16) + 3; // into the second epoch
  const ids: number[][] = [];
  let saved: { position: { epoch: number; shard: number; next: number }; rng: number[] } | undefined;
  const rngA = new Rng(9);
  const a = stream({ epoch: 0, shard: 0, next: 0 }, rngA);
  for (let i = 0; i < batches; i++) {
    if (i === 7) saved = { position: { ...a.position }, rng: rngA.getState() };
    ids.push(Array.from(a.next().input_ids.data as BigInt64Array, Number));
  }
  assert.equal(a.position.epoch, 1, "the stream went on into the next epoch");
  const rngB = new Rng(0);
  rngB.setState(saved!.rng);
  const b = stream(saved!.position, rngB);
  for (let i = 7; i < batches; i++) assert.deepEqual(Array.from(b.next().input_ids.data as BigInt64Array, Number), ids[i], `batch ${i}`);
});

test("masking: 15% of tokens, at most max_predictions, 80% [MASK] / 10% random / 10% kept", async () => {
  const { docs, special } = await corpus();
  const instances = createInstances(docs, opts, special, new Rng(2));
  const rng = new Rng(3);
  let masked = 0, kept = 0, randomized = 0;
  for (const inst of instances) {
    const m = maskTokens(inst.ids, opts, special, rng);
    assert.equal(m.positions.length, Math.min(10, Math.max(1, Math.round(inst.ids.length * 0.15))));
    assert.deepEqual([...m.positions].sort((a, b) => a - b), m.positions);
    m.positions.forEach((p, j) => {
      assert.notEqual(inst.ids[p], special.cls);
      assert.notEqual(inst.ids[p], special.sep);
      assert.equal(m.labels[j], inst.ids[p]);
      if (m.ids[p] === special.mask) masked++;
      else if (m.ids[p] === inst.ids[p]) kept++;
      else randomized++;
    });
  }
  const n = masked + kept + randomized;
  assert.ok(Math.abs(masked / n - 0.8) < 0.02, `[MASK] share ${masked / n}`);
  assert.ok(Math.abs(kept / n - 0.1) < 0.02, `kept share ${kept / n}`);
  assert.ok(Math.abs(randomized / n - 0.1) < 0.02, `random share ${randomized / n}`);
  // fresh masks for the same instance on the next draw (dynamic masking)
  const a = maskTokens(instances[0].ids, opts, special, rng).positions.join();
  const b = maskTokens(instances[0].ids, opts, special, rng).positions.join();
  const c = maskTokens(instances[0].ids, opts, special, rng).positions.join();
  assert.ok(a !== b || b !== c);
});

test("whole-word masking masks every piece of a chosen word", async () => {
  const { tok, special } = await corpus();
  const e = await tok.encode("unbelievably tokenization hyperparameters supercalifragilistic");
  const ids = Int32Array.from(e.ids);
  for (let seed = 0; seed < 20; seed++) {
    const m = maskTokens(ids, { ...opts, wholeWordMask: true, maxPredictionsPerSeq: 20, maskedLmProb: 0.3 }, special, new Rng(seed));
    const words = new Set(m.positions.map((p) => e.wordIds[p]));
    for (const w of words) {
      const pieces = e.wordIds.flatMap((x, i) => (x === w ? [i] : []));
      for (const p of pieces) assert.ok(m.positions.includes(p), `word ${w} masked whole`);
    }
  }
});

test("collate: padded batch, flat masked positions, -100 padding labels", async () => {
  const { docs, special } = await corpus();
  const instances = createInstances(docs, opts, special, new Rng(4)).slice(0, 4);
  const feeds = collate(instances, opts, special, new Rng(5));
  assert.deepEqual([...feeds.input_ids.dims], [4, 64]);
  assert.deepEqual([...feeds.masked_positions.dims], [40]);
  const pos = feeds.masked_positions.data as BigInt64Array;
  const labels = feeds.masked_lm_labels.data as BigInt64Array;
  for (let j = 0; j < 40; j++) {
    const row = Math.floor(j / 10);
    assert.ok(pos[j] >= BigInt(row * 64) && pos[j] < BigInt((row + 1) * 64));
    if (labels[j] !== -100n) assert.equal((feeds.input_ids.data as BigInt64Array)[Number(pos[j])] === BigInt(special.cls), false);
  }
});

test("corpus: text files by extension and content, .gitignore, skipped folders, binaries, size limit", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ws-"));
  mkdirSync(path.join(dir, "docs"));
  mkdirSync(path.join(dir, "node_modules/pkg"), { recursive: true });
  mkdirSync(path.join(dir, "ignored"));
  writeFileSync(path.join(dir, ".gitignore"), "ignored/\n*.log\n");
  writeFileSync(path.join(dir, "docs/a.md"), "# Title\nFirst sentence. Second one!\n");
  writeFileSync(path.join(dir, "notes"), "plain text without extension.\n");
  writeFileSync(path.join(dir, "node_modules/pkg/readme.md"), "not corpus\n");
  writeFileSync(path.join(dir, "ignored/b.txt"), "ignored\n");
  writeFileSync(path.join(dir, "x.log"), "ignored log\n");
  writeFileSync(path.join(dir, "code.ts"), "// code is not corpus\n");
  writeFileSync(path.join(dir, "blob.txt"), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 1, 2]));
  writeFileSync(path.join(dir, "latin1.txt"), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0x63, 0x61, 0x66, 0xe9, 0x20, 0x61, 0x61, 0x61, 0x61, 0x61]));
  writeFileSync(path.join(dir, "big.txt"), "x".repeat(2048));
  const warnings: string[] = [];
  const files: string[] = [];
  for await (const f of textFiles(dir, { maxFileBytes: 1024, warn: (m) => warnings.push(m) })) files.push(path.relative(dir, f));
  assert.deepEqual(files, ["notes", "docs/a.md"]);
  assert.ok(warnings.some((w) => w.includes("big.txt") && w.includes("file limit")));
  assert.ok(warnings.some((w) => w.includes("blob.txt") && w.includes("not UTF-8")));
  assert.ok(warnings.some((w) => w.includes("latin1.txt") && w.includes("not UTF-8")));
  const only: string[] = [];
  for await (const f of textFiles(dir, { include: ["docs/**"], exclude: ["*.log"] })) only.push(path.relative(dir, f));
  assert.deepEqual(only, ["docs/a.md"]);
  const without: string[] = [];
  for await (const f of textFiles(dir, { exclude: ["notes"], maxFileBytes: 1024 })) without.push(path.relative(dir, f));
  assert.deepEqual(without, ["docs/a.md"]);
  const docs: string[][] = [];
  for await (const d of documents(dir, { maxFileBytes: 1024 })) docs.push(d);
  assert.deepEqual(docs, [["plain text without extension."], ["First sentence.", "Second one!"]]);
});

test("the tokenized corpus is cached by content and tokenizer", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "cache-"));
  process.env.XDG_CACHE_HOME = mkdtempSync(path.join(os.tmpdir(), "xdg-")); // a fresh cache for this test
  writeFileSync(path.join(dir, "a.txt"), "One sentence here. Another one there!\n\nA second paragraph.\n");
  const tok = await BertTokenizer.fromVocabFile(path.join(DATA, "bert-base-uncased-vocab.txt"));
  const first = await tokenizeCorpus(dir, tok);
  const second = await tokenizeCorpus(dir, tok);
  assert.ok(second.cached);
  assert.deepEqual(second.docs.toDocuments(), first.docs.toDocuments());
  assert.ok(first.docs.ids instanceof Uint16Array, "a 30,522-token vocabulary is stored in 16 bits");
  writeFileSync(path.join(dir, "a.txt"), "Changed text.\n");
  const third = await tokenizeCorpus(dir, tok);
  assert.ok(!third.cached, "a changed file is tokenized again");
  assert.equal(third.docs.length, 1);
});

test("sentence splitting: Latin and CJK punctuation", () => {
  assert.deepEqual(splitSentences("It rained. Then it stopped! Did it? Yes"), ["It rained.", "Then it stopped!", "Did it?", "Yes"]);
  assert.deepEqual(splitSentences("气和玉烛。睿化著鸿明！好吗？"), ["气和玉烛。", "睿化著鸿明！", "好吗？"]);
  assert.deepEqual(splitSentences("3.14 is pi. E.g. this one. \"Quoted.\" Next"), ["3.14 is pi.", "E.g. this one.", "\"Quoted.\"", "Next"]);
  assert.deepEqual(splitSentences("The lobster is blue . It turns red ."), ["The lobster is blue .", "It turns red ."]);
});

test("gitignore patterns", () => {
  const ig = gitignoreMatcher("build/\n*.tmp\n/root-only.txt\n!keep.tmp\ndocs/**/draft.md\n");
  assert.ok(ig("build", true) && !ig("build", false));
  assert.ok(ig("a/b/c.tmp", false) && !ig("keep.tmp", false));
  assert.ok(ig("root-only.txt", false) && !ig("sub/root-only.txt", false));
  assert.ok(ig("docs/x/y/draft.md", false));
  assert.equal(ig("other.md", false), undefined); // no rule: a parent folder's .gitignore decides
});

test("nested .gitignore files: rules relative to their folder, deeper files win", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nested-"));
  mkdirSync(path.join(dir, "a/b"), { recursive: true });
  writeFileSync(path.join(dir, ".gitignore"), "*.draft.md\n");
  writeFileSync(path.join(dir, "a/.gitignore"), "/secret.txt\nb/generated/\n!keep.draft.md\n");
  mkdirSync(path.join(dir, "a/b/generated"));
  for (const f of ["top.md", "x.draft.md", "a/secret.txt", "a/keep.draft.md", "a/other.draft.md", "a/b/secret.txt", "a/b/generated/g.txt"]) writeFileSync(path.join(dir, f), `text of ${f}.\n`);
  const files: string[] = [];
  for await (const f of textFiles(dir)) files.push(path.relative(dir, f));
  assert.deepEqual(files, ["top.md", "a/keep.draft.md", "a/b/secret.txt"]);
});
