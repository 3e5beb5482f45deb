// Tokenizer parity with HF BertTokenizerFast: the HF fixtures (test/fixtures/hf) and a fixture made with the real
// bert-base-uncased vocabulary (scripts/make-tokenizer-fixture.py).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { BertTokenizer, SPECIAL_TOKENS, TokenizerError } from "../../server/text/tokenizer.js";

const FIXTURES = path.resolve(process.cwd(), "test/fixtures");
const UNCASED_VOCAB = path.resolve(process.cwd(), "data/bert-base-uncased-vocab.txt");

interface Case {
  text: string;
  text_pair?: string;
  max_length?: number;
  ids: number[];
  tokens?: string[];
  type_ids: number[];
  offsets?: [number, number][];
}

async function checkFixture(tok: BertTokenizer, fixture: { cases: Case[]; pairs: Case[] }) {
  for (const c of fixture.cases) {
    const e = await tok.encode(c.text);
    assert.deepEqual(e.ids, c.ids, `ids of ${JSON.stringify(c.text.slice(0, 60))}`);
    if (c.tokens) assert.deepEqual(e.tokens, c.tokens);
    assert.deepEqual(e.typeIds, c.type_ids);
    if (c.offsets) assert.deepEqual(e.offsets, c.offsets, `offsets of ${JSON.stringify(c.text.slice(0, 60))}`);
  }
  for (const c of fixture.pairs) {
    const e = await tok.encode(c.text, c.text_pair, { maxLength: c.max_length });
    assert.deepEqual(e.ids, c.ids, `pair ids of ${JSON.stringify(c.text.slice(0, 40))} (max ${c.max_length})`);
    assert.deepEqual(e.typeIds, c.type_ids);
  }
}

test("identical to BertTokenizerFast with the bert-base-uncased vocabulary (text, hard cases, truncated pairs)", async () => {
  const tok = await BertTokenizer.fromVocabFile(UNCASED_VOCAB);
  const fixture = JSON.parse(readFileSync(path.resolve(process.cwd(), "test/fixtures/tokenizer-bert-base-uncased.json"), "utf8"));
  assert.ok(fixture.cases.length > 150 && fixture.pairs.length === 60);
  await checkFixture(tok, fixture);
});

// The HF fixtures were generated with a vocabulary of only the five special tokens (every id is 0-4, every
// word [UNK]): with that vocabulary they still pin down normalisation, word boundaries, offsets and truncation.
for (const name of ["tokenizer-uncased.json", "tokenizer-chinese.json"]) {
  test(`identical to the HF fixture ${name}`, async () => {
    const fixture = JSON.parse(readFileSync(path.join(FIXTURES, "hf", name), "utf8"));
    const maxId = Math.max(...fixture.cases.flatMap((c: Case) => c.ids));
    assert.equal(maxId, 4, "the fixture's vocabulary is the five special tokens");
    await checkFixture(BertTokenizer.fromVocab([...SPECIAL_TOKENS]), fixture);
  });
}

test("Chinese text is split per character with the Chinese vocabulary", async () => {
  const tok = await BertTokenizer.fromVocabFile(path.join(FIXTURES, "vocab/bert-base-chinese-vocab.txt"));
  const e = await tok.encode("我爱北京天安门，Hello世界。");
  assert.deepEqual(e.tokens, ["[CLS]", "我", "爱", "北", "京", "天", "安", "门", "，", "hello", "世", "界", "。", "[SEP]"]);
});

test("save writes vocab.txt and tokenizer.json that load back to the same encodings", async () => {
  const tok = await BertTokenizer.fromVocabFile(UNCASED_VOCAB);
  const dir = mkdtempSync(path.join(os.tmpdir(), "tok-"));
  await tok.save(dir);
  const text = "The lobster's claws are asymmetrical, Ça va?";
  for (const back of [await BertTokenizer.fromDir(dir), await BertTokenizer.fromVocabFile(path.join(dir, "vocab.txt"))]) {
    assert.deepEqual((await back.encode(text, "a pair")).ids, (await tok.encode(text, "a pair")).ids);
  }
});

test("a vocabulary without the special tokens, or a missing file, is a clear error", async () => {
  assert.throws(() => BertTokenizer.fromVocab(["[PAD]", "a", "b"]), (e: Error) => e instanceof TokenizerError && /missing special token \[UNK\]/.test(e.message));
  await assert.rejects(BertTokenizer.fromVocabFile("/nonexistent/vocab.txt"), /cannot read vocabulary \(ENOENT\)/);
});
