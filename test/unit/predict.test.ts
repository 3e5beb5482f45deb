// BERT: Predict on a text in the editor: a classifier says its label with every label's probability, a
// tagger finds the entity and its UTF-16 offsets slice the editor's text to it after an emoji and an
// accented word, a QA model answers inside the context; a language model or a multiple-choice model says
// what to do instead. The models are tiny and fine-tuned here for a few dozen steps on made-up files.
import "./isolated-cache.js";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import type { FinetuneTask } from "../../common/protocol.js";
import { loadTaskModel, predictText, utf16Offsets } from "../../server/inference/predict.js";
import { finetune } from "../../server/tasks/finetune.js";
import { randomModelFolder } from "./random-model.js";
import { BertTokenizer, SPECIAL_TOKENS } from "../../server/text/tokenizer.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "predict-"));
const WORDS = "a the film was good bad great awful we flew to paris london in cafe they live is big where what city country france which".split(" ");
const LETTERS = [..."abcdefghijklmnopqrstuvwxyz"];

/** A language model (BertForMaskedLM, random weights) with a vocabulary of the words above, letters and pieces. */
async function languageModel(): Promise<string> {
  const tok = BertTokenizer.fromVocab([...SPECIAL_TOKENS, ...WORDS, ...LETTERS, ...LETTERS.map((l) => `##${l}`), ".", "?", ","]);
  return randomModelFolder(path.join(tmp, "lm"), tok, { head: "masked_lm", seed: 5, maxPositionEmbeddings: 64, hiddenDropoutProb: 0, attentionProbsDropoutProb: 0 });
}
const lm = languageModel();

async function fineTuned(task: FinetuneTask, name: string, data: string, steps: number): Promise<string> {
  const train = path.join(tmp, name);
  writeFileSync(train, data);
  const out = path.join(tmp, `run-${task}`);
  await finetune({ task, train, model: await lm, out, epochs: 1, steps, batch: 8, maxLength: 32, lr: 3e-3, schedule: "constant", seed: 3, resume: false, device: "cpu", evalSplit: 0 });
  return out;
}

test("a classifier answers its most likely label first, with every label's probability summing to 1", async () => {
  const rows = ["sentence\tlabel", "a good film\tpositive", "the film was great\tpositive", "a bad film\tnegative", "the film was awful\tnegative", "good\tpositive", "bad\tnegative"];
  const model = await loadTaskModel(await fineTuned("classify", "sst.tsv", rows.join("\n") + "\n", 30));
  try {
    for (const [text, want] of [["the film was good", "positive"], ["an awful film", "negative"]]) {
      const r = await predictText(model, { text });
      assert.equal(r.task, "classify");
      assert.equal(r.label, want, text);
      assert.deepEqual(r.probabilities!.map((p) => p.label).sort(), ["negative", "positive"]);
      assert.equal(r.probabilities![0].label, r.label);
      assert.ok(r.probabilities![0].score > 0.5 && r.probabilities![0].score >= r.probabilities![1].score);
      assert.ok(Math.abs(r.probabilities!.reduce((s, p) => s + p.score, 0) - 1) < 1e-9);
    }
  } finally {
    await model.release();
  }
});

test("a tagger's entity offsets are UTF-16: after an emoji and an accented word they slice the text to the entity", async () => {
  const tagged = (s: string) => s.split(" ").map((w) => `${w} ${w === "paris" || w === "london" ? "B-LOC" : "O"}`).join("\n");
  const sentences = ["we flew to paris .", "they live in london , we live in paris", "paris is big .", "the cafe in london is big", "we flew to london", "a film , the cafe ."];
  const model = await loadTaskModel(await fineTuned("ner", "ner.txt", sentences.map(tagged).join("\n\n") + "\n", 30));
  try {
    const text = "😀 We flew to Paris, the café in London.";
    const r = await predictText(model, { text });
    assert.equal(r.task, "ner");
    assert.deepEqual(r.entities!.map((e) => [e.type, e.text]), [["LOC", "Paris"], ["LOC", "London"]]);
    for (const e of r.entities!) assert.equal(text.slice(e.start, e.end), e.text);
    assert.equal(r.entities![0].start, text.indexOf("Paris")); // 14 code units; 13 code points
    assert.equal(r.entities![1].start, text.indexOf("London"));
  } finally {
    await model.release();
  }
});

test("a QA model answers with a span of the context, in UTF-16 offsets past an emoji, and needs a question", async () => {
  const context = "😀 paris is a city in france .";
  const question = "which country is paris in ?";
  const start = [...context].indexOf("f"); // SQuAD's answer_start counts code points
  const squad = { data: [{ title: "t", paragraphs: [{ context, qas: Array.from({ length: 16 }, (_, i) => ({ id: `q${i}`, question, answers: [{ text: "france", answer_start: start }] })) }] }] };
  const model = await loadTaskModel(await fineTuned("qa", "squad.json", JSON.stringify(squad), 40));
  try {
    const r = await predictText(model, { text: context, question });
    assert.equal(r.task, "qa");
    assert.equal(r.answer?.text, "france");
    assert.equal(context.slice(r.answer!.start, r.answer!.end), "france");
    assert.equal(r.answer!.start, context.indexOf("france"));
    assert.ok(Number.isFinite(r.answer!.score));
    const none = await predictText(model, { text: "  ", question }); // a context without a word has no span to answer with
    assert.deepEqual(none.answer, { text: "", start: 0, end: 0, score: 0 });
    await assert.rejects(predictText(model, { text: context }), /answers questions: it needs a question \(the text is the context\)/);
  } finally {
    await model.release();
  }
});

test("a multiple-choice model says it predicts from a SWAG file, not from one text", async () => {
  const header = ",video-id,fold-ind,startphrase,sent1,sent2,gold-source,ending0,ending1,ending2,ending3,label";
  const rows = Array.from({ length: 8 }, (_, i) => `${i},v,0,we flew. we,we flew.,we,gold,flew to paris.,live in london.,is big.,was good.,${i % 4}`);
  const model = await loadTaskModel(await fineTuned("choice", "swag.csv", [header, ...rows].join("\n") + "\n", 1));
  try {
    await assert.rejects(predictText(model, { text: "we flew to paris" }), /is a multiple-choice model: it predicts from a SWAG-layout CSV file/);
  } finally {
    await model.release();
  }
});

test("a language model is not a fine-tuned one: the error says what to do", async () => {
  const dir = await lm;
  await assert.rejects(loadTaskModel(dir), (e: Error) => e.message === `${dir} is a language model (BertForMaskedLM), not a fine-tuned one: fine-tune it on a labelled file first, or select a fine-tuned model`);
});

test("UTF-16 offsets of code points: astral characters take two code units, accents one", () => {
  assert.deepEqual(utf16Offsets("a😀é\u{20000}b"), [0, 1, 3, 4, 6, 7]);
  assert.deepEqual(utf16Offsets(""), [0]);
});
