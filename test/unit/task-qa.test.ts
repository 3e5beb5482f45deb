// SQuAD windows and answer mapping on the real dev articles: with short windows most contexts span
// several; every answer maps to tokens of the windows that hold it, and logits that point at those
// tokens give back the answer text from whichever window holds it (EM 100 for an oracle).
import assert from "node:assert/strict";
import * as path from "node:path";
import { test } from "node:test";
import { squadScores } from "../../server/tasks/metrics.js";
import { answerPositions, bestAnswer, qaWindows } from "../../server/tasks/qa.js";
import { codePoints, readSquad } from "../../server/tasks/readers.js";
import { BertTokenizer } from "../../server/text/tokenizer.js";

const DATA = path.resolve(process.cwd(), "data");

test("windows with doc stride cover every context; oracle logits recover every answer from its window", async () => {
  const tok = await BertTokenizer.fromVocabFile(path.join(DATA, "bert-base-uncased-vocab.txt"));
  const examples = await readSquad(path.join(DATA, "finetune/squad-train.json"));
  const opts = { maxLength: 128, docStride: 32, maxQueryLength: 64 };
  const contexts = new Map<string, { ids: number[]; offsets: [number, number][] }>();
  const predictions = new Map<string, string>();
  let multiWindow = 0, fromLaterWindow = 0;
  for (const ex of examples) {
    let c = contexts.get(ex.context);
    if (!c) {
      const e = await tok.encode(ex.context, null, { addSpecialTokens: false });
      c = { ids: e.ids, offsets: e.offsets };
      contexts.set(ex.context, c);
    }
    const q = (await tok.encode(ex.question, null, { addSpecialTokens: false })).ids;
    const windows = qaWindows(q, c, { cls: tok.clsId, sep: tok.sepId }, opts);
    // Every context token is in some window, and consecutive windows overlap by the stride.
    const covered = new Set(windows.flatMap((w) => w.contextOffsets.filter(Boolean).map((o) => o!.join())));
    assert.equal(covered.size, new Set(c.offsets.map((o) => o.join())).size);
    assert.ok(windows.every((w) => w.ids.length <= opts.maxLength));
    if (windows.length > 1) multiWindow++;
    const a = ex.answers[0];
    const [startChar, endChar] = [a.start, a.start + codePoints(a.text).length];
    const scored = windows.map((w) => {
      const [s, e] = answerPositions(w, startChar, endChar);
      const start = new Float32Array(w.ids.length).fill(-5);
      const end = new Float32Array(w.ids.length).fill(-5);
      if (s > 0) {
        assert.ok(w.contextOffsets[s]![0] <= startChar && w.contextOffsets[e]![1] >= endChar && s <= e);
        start[s] = 10;
        end[e] = 10;
      }
      return { window: w, start, end, holds: s > 0 };
    });
    assert.ok(scored.some((s) => s.holds), `question ${ex.id}: no window holds the answer`);
    if (!scored[0].holds) fromLaterWindow++;
    const best = bestAnswer(codePoints(ex.context), scored, { nBest: 20, maxAnswerLength: 1000 });
    predictions.set(ex.id, best.text);
  }
  assert.ok(multiWindow > 500 && fromLaterWindow > 100, `${multiWindow} multi-window contexts, ${fromLaterWindow} answers only in a later window`);
  // An answer that is part of a word token ("8" of "18", "wards" of "backwards": 17 of these 1,500,
  // some where answer_start points into another word) widens to the whole token; everything else is exact.
  const s = squadScores(examples.map((e) => ({ id: e.id, answers: [e.answers[0].text] })), predictions);
  assert.ok(s.exact_match > 98.5, JSON.stringify(s));
});

test("n-best search skips spans outside the context, reversed and too long", () => {
  const context = codePoints("abc def ghi");
  const window = {
    ids: [101, 1, 102, 7, 8, 9, 102],
    typeIds: [0, 0, 0, 1, 1, 1, 1],
    contextOffsets: [null, null, null, [0, 3], [4, 7], [8, 11], null] as ([number, number] | null)[],
  };
  const start = Float32Array.from([9, 9, 0, 1, 2, 0, 9]);
  const end = Float32Array.from([9, 0, 0, 3, 0, 1, 9]);
  // Best valid: start 4 ("def", 2) with end 5 ("ghi", 1) = 3 beats start 3 + end 3 = 4? No: 1 + 3 = 4 wins.
  assert.deepEqual(bestAnswer(context, [{ window, start, end }], { nBest: 20, maxAnswerLength: 30 }), { text: "abc", start: 0, end: 3, score: 4 });
  // End before start is never chosen; length 1 limit keeps single tokens.
  const s2 = Float32Array.from([0, 0, 0, 0, 0, 5, 0]);
  const e2 = Float32Array.from([0, 0, 0, 5, 0, 1, 0]);
  assert.equal(bestAnswer(context, [{ window, start: s2, end: e2 }], { nBest: 20, maxAnswerLength: 1 }).text, "ghi");
});
