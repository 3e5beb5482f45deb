// WordPiece vocabulary training against HF tokenizers' BertWordPieceTokenizer on the bundled WikiText-2 slice.
import assert from "node:assert/strict";
import { createReadStream, readFileSync } from "node:fs";
import * as path from "node:path";
import * as readline from "node:readline";
import { test } from "node:test";
import { BertTokenizer } from "../../server/text/tokenizer.js";
import { trainWordPiece, WordCounter } from "../../server/text/vocab-trainer.js";

test("agrees with BertWordPieceTokenizer training (size 2000, min frequency 2)", async () => {
  const wc = new WordCounter(true);
  const file = path.resolve(process.cwd(), "data/wikitext-2-slice/wiki.train.tokens");
  for await (const line of readline.createInterface({ input: createReadStream(file, { encoding: "utf8" }) })) wc.add(line);
  const ours = trainWordPiece(wc.counts, { vocabSize: 2000, minFrequency: 2, limitAlphabet: 1000 });
  const hf = readFileSync(path.resolve(process.cwd(), "test/fixtures/wordpiece-wikitext2-slice-2000.txt"), "utf8").split("\n").filter(Boolean);
  assert.equal(ours.length, 2000);
  assert.deepEqual(ours.slice(0, 5), ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]);
  const shared = ours.filter((t) => hf.includes(t)).length;
  // HF numbers "##" symbols in hash-map order, so pairs tied on count can merge in another order: allow ties.
  assert.ok(shared >= 0.995 * hf.length, `${shared} of ${hf.length} tokens in common`);
  const tok = BertTokenizer.fromVocab(ours);
  const e = await tok.encode("The tower is 324 metres tall.");
  assert.ok(!e.tokens.includes("[UNK]"), e.tokens.join(" "));
});

test("a tiny corpus stops merging at min frequency", () => {
  const counts = new Map([["low", 5], ["lower", 2], ["newest", 6], ["widest", 3]]);
  const vocab = trainWordPiece(counts, { vocabSize: 100, minFrequency: 2 });
  assert.ok(vocab.includes("##est") && vocab.includes("low"));
  assert.ok(vocab.length < 100);
  assert.equal(new Set(vocab).size, vocab.length, "no duplicates");
});
