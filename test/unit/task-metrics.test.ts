// Task metrics against hand-checked cases: accuracy and macro-F1, SQuAD v1.1 EM/F1 and its answer
// normalisation, entity scores by seqeval's strict BIO rules, and tag normalisation (IOB1, BIOES).
import assert from "node:assert/strict";
import { test } from "node:test";
import { accuracy, entityScores, macroF1, normalizeAnswer, squadScores } from "../../server/tasks/metrics.js";
import { entities, normalizeTags, tagLabels } from "../../server/tasks/ner.js";

const close = (a: number, b: number, eps = 1e-9) => assert.ok(Math.abs(a - b) < eps, `${a} != ${b}`);

test("accuracy and macro-F1 (sklearn's average='macro' over classes in gold or predictions)", () => {
  const gold = ["a", "a", "b", "b", "c"];
  const pred = ["a", "b", "b", "b", "a"];
  close(accuracy(gold, pred), 3 / 5);
  // a: tp1 fp1 fn1 -> 0.5; b: tp2 fp1 fn0 -> 0.8; c: tp0 -> 0
  close(macroF1(gold, pred), (0.5 + 0.8 + 0) / 3);
  close(macroF1(["x"], ["y"]), 0);
  close(accuracy([], []), 0);
});

test("SQuAD answer normalisation: case, punctuation, articles, white space", () => {
  assert.equal(normalizeAnswer("The  Quick, brown fox!"), "quick brown fox");
  assert.equal(normalizeAnswer("an apple a day"), "apple day");
  assert.equal(normalizeAnswer("Theory of Anthems"), "theory of anthems");
  assert.equal(normalizeAnswer("  Denver\tBroncos. "), "denver broncos");
  assert.equal(normalizeAnswer("café—the end"), "café— end"); // the em dash is not ASCII punctuation, but a word boundary
  assert.equal(normalizeAnswer("éthe thé"), "éthe thé"); // Python's \b is Unicode-aware: é is a word character
});

test("SQuAD exact match and F1: best over gold answers, averaged, missing predictions score 0", () => {
  const gold = [
    { id: "q1", answers: ["Denver Broncos", "The Denver Broncos"] },
    { id: "q2", answers: ["Denver Broncos"] },
    { id: "q3", answers: ["1858"] },
  ];
  const preds = new Map([
    ["q1", "denver broncos."],
    ["q2", "the broncos of Denver"], // tokens broncos, of, denver vs denver, broncos: P 2/3, R 1 -> F1 0.8
  ]);
  const s = squadScores(gold, preds);
  close(s.exact_match, (100 * 1) / 3);
  close(s.f1, (100 * (1 + 0.8 + 0)) / 3);
});

test("entities by seqeval's strict IOB2 rules", () => {
  assert.deepEqual(entities(["B-PER", "I-PER", "O", "B-LOC"]), [
    { type: "PER", start: 0, end: 2 },
    { type: "LOC", start: 3, end: 4 },
  ]);
  assert.deepEqual(entities(["O", "I-LOC", "I-LOC"]), []); // no B: no entity in strict mode
  assert.deepEqual(entities(["B-PER", "I-LOC", "B-PER", "B-PER"]), [
    { type: "PER", start: 0, end: 1 },
    { type: "PER", start: 2, end: 3 },
    { type: "PER", start: 3, end: 4 },
  ]);
});

test("entity precision, recall and F1 per type and micro-averaged", () => {
  const gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]];
  const pred = [["B-PER", "I-PER", "O", "I-LOC"], ["B-ORG", "B-ORG"]];
  const s = entityScores(gold, pred);
  // PER: 1/1 right; LOC: missed (I-LOC alone is no entity); ORG: 1 of 2 predicted right, 1 gold.
  close(s.perType.PER.f1, 1);
  assert.deepEqual(s.perType.LOC, { precision: 0, recall: 0, f1: 0, support: 1 });
  close(s.perType.ORG.precision, 0.5);
  close(s.perType.ORG.recall, 1);
  close(s.micro.precision, 2 / 3);
  close(s.micro.recall, 2 / 3);
  close(s.micro.f1, 2 / 3);
});

test("tags from IOB1 and BIOES become BIO; mismatched I- tags are counted", () => {
  assert.deepEqual(normalizeTags(["I-PER", "I-PER", "B-PER", "O", "I-LOC"]), { tags: ["B-PER", "I-PER", "B-PER", "O", "B-LOC"], repaired: 2 });
  assert.deepEqual(normalizeTags(["S-PER", "B-LOC", "I-LOC", "E-LOC", "O"]).tags, ["B-PER", "B-LOC", "I-LOC", "I-LOC", "O"]);
  assert.deepEqual(normalizeTags(["B-PER", "I-LOC"]), { tags: ["B-PER", "B-LOC"], repaired: 1 });
  assert.deepEqual(tagLabels(["O", "B-PER", "I-LOC", "B-LOC"]), ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]);
});
