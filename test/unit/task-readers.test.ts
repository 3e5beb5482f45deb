// Readers on the real files of data/finetune (slices of the public sets, see data/README.md), task detection, and a fuzz of malformed rows: every bad
// row is a message naming file and line, never a crash; good rows around it still come through.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { parseCsvRecord, readChoiceExamples, readSquad, readTaggedSentences, readTextExamples, DataError } from "../../server/tasks/readers.js";
import { detectTask, TASK_SPECS } from "../../server/tasks/tasks.js";

const DATA = path.resolve(process.cwd(), "data");
const tmp = mkdtempSync(path.join(os.tmpdir(), "readers-"));
function file(name: string, text: string): string {
  const f = path.join(tmp, name);
  writeFileSync(f, text);
  return f;
}
async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

test("SST-2 TSV with header, MNLI and Toutiao `_!_` lines, SWAG CSV, SQuAD JSON, Chinese NER", async () => {
  const sst = await all(readTextExamples(path.join(DATA, "finetune/sst2-train.tsv"), { pair: false }));
  assert.equal(sst.length, 4000);
  assert.deepEqual(sst[0], { text: "hide new secretions from the parental units ", pair: undefined, label: "0", line: 2 });
  const mnli = await all(readTextExamples(path.join(DATA, "finetune/mnli-train.txt"), { pair: true }));
  assert.equal(mnli.length, 198);
  assert.equal(mnli[1].pair, "Growth was stifled in part by unprofitable heavy industry.");
  assert.equal(mnli[1].label, "1");
  const toutiao = await all(readTextExamples(path.join(DATA, "finetune/toutiao-train.txt"), { pair: false }));
  assert.equal(toutiao[0].text, "张艺兴黄金瞳片场，导演能给个合适的帽子不？");
  assert.equal(new Set(toutiao.map((t) => t.label)).size, 15);
  const swag = await all(readChoiceExamples(path.join(DATA, "finetune/swag-train.csv")));
  assert.equal(swag.length, 91);
  assert.equal(swag[0].endings.length, 4);
  assert.equal(swag[0].label, 2);
  assert.equal(swag[0].endings[0], "pats her shoulder, then saunters toward someone."); // quoted field with a comma
  const squad = await readSquad(path.join(DATA, "finetune/squad-train.json"));
  assert.equal(squad.length, 870);
  assert.ok(squad.every((q) => q.answers.length > 0));
  const ner = await all(readTaggedSentences(path.join(DATA, "finetune/chinese-ner-train.txt")));
  assert.equal(ner.length, 800);
  assert.ok(ner.every((s) => s.tokens.length === s.tags.length && s.tokens.every((t) => [...t].length === 1)));
});

test("the task is detected from the file", async () => {
  assert.equal((await detectTask(path.join(DATA, "finetune/sst2-train.tsv"))).task, "classify");
  assert.equal((await detectTask(path.join(DATA, "finetune/mnli-train.txt"))).task, "pair");
  assert.equal((await detectTask(path.join(DATA, "finetune/toutiao-train.txt"))).task, "classify");
  assert.equal((await detectTask(path.join(DATA, "finetune/swag-train.csv"))).task, "choice");
  assert.equal((await detectTask(path.join(DATA, "finetune/squad-train.json"))).task, "qa");
  assert.equal((await detectTask(path.join(DATA, "finetune/chinese-ner-train.txt"))).task, "ner");
  assert.equal((await detectTask(file("conll.txt", "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n"))).task, "ner");
  assert.equal((await detectTask(file("p.jsonl", '{"premise": "a", "hypothesis": "b", "label": 1}\n'))).task, "pair");
  await assert.rejects(detectTask(file("empty.txt", "\n\n")), DataError);
});

test("CSV records: quotes, doubled quotes, commas and newlines inside fields", () => {
  assert.deepEqual(parseCsvRecord('a,"b, c","say ""hi""",'), ["a", "b, c", 'say "hi"', ""]);
  assert.equal(parseCsvRecord('a,"open'), undefined);
});

test("columns by name or index, with or without a header, JSON lines", async () => {
  const named = await all(readTextExamples(file("n.csv", 'id,review,stars\n1,"great, really",5\n2,bad,1\n'), { pair: false, columns: { text: "review", label: "stars" } }));
  assert.deepEqual(named.map((r) => [r.text, r.label]), [["great, really", "5"], ["bad", "1"]]);
  const indexed = await all(readTextExamples(file("i.tsv", "pos\tgood film\nneg\tdull\n"), { pair: false, columns: { text: "1", label: "0" } }));
  assert.deepEqual(indexed.map((r) => [r.text, r.label]), [["good film", "pos"], ["dull", "neg"]]);
  const jsonl = await all(readTextExamples(file("j.jsonl", '{"text": "x", "label": 1}\n{"text": "y", "label": "b"}\n'), { pair: false }));
  assert.deepEqual(jsonl.map((r) => r.label), ["1", "b"]);
  await assert.rejects(all(readTextExamples(file("h.csv", "id,body\n1,x\n"), { pair: false, columns: { text: "body", label: "stars" } })), /no label column "stars" in the header \(id, body\)/);
});

test("fuzz: malformed rows are messages naming file and line; the rest is read", async () => {
  const messages: string[] = [];
  const onBadRow = (m: string) => messages.push(m);
  const tsv = file("bad.tsv", "sentence\tlabel\ngood one\t1\nno label column\n\t0\ntoo\tmany\tcolumns\nfine\t0\n");
  const rows = await all(readTextExamples(tsv, { pair: false, onBadRow }));
  assert.deepEqual(rows.map((r) => r.text), ["good one", "fine"]);
  assert.ok(messages.some((m) => m.includes("bad.tsv:3: expected 2 columns, found 1")), messages.join("\n"));
  assert.ok(messages.some((m) => m.includes("bad.tsv:4: empty text")));
  assert.ok(messages.some((m) => m.includes("bad.tsv:5: expected 2 columns, found 3")));

  messages.length = 0;
  const pairs = await all(readTextExamples(file("bad.txt", "a_!_b_!_1\na_!__!_0\nonly_!_2\n"), { pair: true, onBadRow }));
  assert.equal(pairs.length, 1);
  assert.equal(messages.length, 2);

  messages.length = 0;
  const jsonl = await all(readTextExamples(file("bad.jsonl", '{"text": "ok", "label": 1}\n{not json\n[1, 2]\n{"text": "", "label": 0}\n'), { pair: false, onBadRow }));
  assert.equal(jsonl.length, 1);
  assert.deepEqual(messages.map((m) => m.split(": ")[0].split(":").pop()), ["2", "3", "4"]);

  messages.length = 0;
  const swag = await all(readChoiceExamples(file("bad.csv", "sent1,sent2,ending0,ending1,label\na,b,c,d,1\na,b,c,d,7\na,b,,d,0\na,b,c\n\"a,b,c,d,0\n"), { onBadRow }));
  assert.equal(swag.length, 1);
  assert.ok(messages.some((m) => m.includes("bad.csv:3: label \"7\" is not an ending number 0..1")));
  assert.ok(messages.some((m) => m.includes("bad.csv:4: an empty ending")));
  assert.ok(messages.some((m) => m.includes("bad.csv:5: expected 5 columns, found 3")));
  assert.ok(messages.some((m) => m.includes("bad.csv:6: a quoted field is never closed")));

  messages.length = 0;
  const squad = await readSquad(
    file("bad.json", JSON.stringify({ data: [{ title: "T", paragraphs: [{ context: "Paris is in France.", qas: [
      { id: "ok", question: "Where?", answers: [{ text: "France", answer_start: 12 }] },
      { id: "outside", question: "Where?", answers: [{ text: "France", answer_start: 90 }] },
      { id: "shifted", question: "Where?", answers: [{ text: "France", answer_start: 11 }] },
      { id: "empty", question: " ", answers: [{ text: "Paris", answer_start: 0 }] },
    ] }, { qas: [] }] }, "not an article"] })),
    { onBadRow },
  );
  assert.deepEqual(squad.map((q) => q.id), ["ok"]);
  assert.ok(messages.some((m) => m.includes("question outside: answer_start 90") && m.includes("outside the context (19 characters)")));
  assert.ok(messages.some((m) => m.includes("question shifted: the context at answer_start 11 is \" Franc\"")));
  assert.ok(messages.some((m) => m.includes("question empty: empty question")));
  await assert.rejects(readSquad(file("notjson.json", "{")), /not a SQuAD JSON file/);

  messages.length = 0;
  const conll = await all(readTaggedSentences(file("bad.conll", "EU B-ORG\nrejects O\n\nlonely\nword O\n\nGerman X-MISC\n\nPeter B-PER\nBlackburn I-PER\n"), { onBadRow }));
  assert.deepEqual(conll.map((s) => s.tokens), [["EU", "rejects"], ["Peter", "Blackburn"]]);
  assert.ok(messages.some((m) => m.includes("bad.conll:4: expected a token and a tag")));
  assert.ok(messages.some((m) => m.includes('bad.conll:7: tag "X-MISC" is not O or B-/I-/E-/S-TYPE')));

  await assert.rejects(all(readTextExamples(path.join(tmp, "missing.tsv"), { pair: false })), /missing.tsv: cannot read \(ENOENT\)/);
});

test("labels unknown to the model and mismatched BIO are reported when encoding, not fatal", async () => {
  const { BertTokenizer } = await import("../../server/text/tokenizer.js");
  const tok = await BertTokenizer.fromVocabFile(path.join(DATA, "bert-base-uncased-vocab.txt"));
  const messages: string[] = [];
  const examples = await TASK_SPECS.classify.read(file("eval.tsv", "sentence\tlabel\nfine\tpositive\nodd\tsurprised\n"), { labelled: true });
  const features = await TASK_SPECS.classify.encode(examples, tok, { maxLength: 16, labels: ["negative", "positive"], onBadRow: (m) => messages.push(m) });
  assert.deepEqual(features.map((f) => f.label), [1, -100]);
  assert.match(messages[0], /line 3: label "surprised" is not one the model was trained on \(negative, positive\); not scored/);

  messages.length = 0;
  const ner = await TASK_SPECS.ner.read(file("m.conll", "Peter I-PER\nlives O\nin O\nBerlin I-LOC\n"), { labelled: true, onBadRow: (m) => messages.push(m) });
  assert.deepEqual((ner[0] as { tags: string[] }).tags, ["B-PER", "O", "O", "B-LOC"]);
  assert.match(messages[0], /2 I- tags that start an entity read as B-/);
});

// CSV files as users write them: quoted fields with commas, doubled quotes and line breaks, and the
// stray quote that used to swallow the rest of the file (and took minutes doing it).
// Before the one-pass reader, 16,000 rows with one stray quote took 56 s (quadratic); 100,000 took
// minutes and kept 9 rows. The bound is generous: the reader takes about a second.
test("a 100,000-row CSV with one stray quote is read whole: the quote's line is reported, every other row comes through", { timeout: 20_000 }, async () => {
  const lines = ["sentence,label"];
  for (let i = 1; i <= 100_000; i++) lines.push(i === 50 ? `"forgot to close this,1` : `row ${i},${i % 2}`);
  const messages: string[] = [];
  const rows = await all(readTextExamples(file("stray.csv", lines.join("\n") + "\n"), { pair: false, onBadRow: (m) => messages.push(m) }));
  assert.equal(rows.length, 99_999);
  assert.deepEqual(rows[49], { text: "row 51", pair: undefined, label: "1", line: 52 });
  assert.equal(rows.at(-1)?.line, 100_001);
  assert.equal(messages.length, 1);
  assert.match(messages[0], /stray\.csv:51: a quoted field is never closed \(its quote is at column 1\)/);
});

test("quoted fields keep their commas, doubled quotes and line breaks; each row is numbered by the line it starts on", async () => {
  const text = 'sentence,label\n"one, two",a\n"she said ""hi""",b\n"first line\nsecond line",a\nplain,b\n\n"",a\n';
  const messages: string[] = [];
  const rows = await all(readTextExamples(file("quoted.csv", text), { pair: false, onBadRow: (m) => messages.push(m) }));
  assert.deepEqual(
    rows.map((r) => [r.text, r.label, r.line]),
    [["one, two", "a", 2], ['she said "hi"', "b", 3], ["first line\nsecond line", "a", 4], ["plain", "b", 6]],
  );
  assert.deepEqual(messages, [`${path.join(tmp, "quoted.csv")}:8: empty text`]);
});

test("a quote left open after a multi-line field names the quote's line and the row's first line", async () => {
  const text = "sent1,sent2,ending0,ending1,label\n" + 'a,"spans\ntwo lines",c,"oops,0\n' + "x,y,z,w,1\n";
  const messages: string[] = [];
  const rows = await all(readChoiceExamples(file("swag.csv", text), { onBadRow: (m) => messages.push(m) }));
  assert.deepEqual(rows.map((r) => [r.context, r.line]), [["x", 4]]);
  assert.equal(messages.length, 1);
  assert.match(messages[0], /swag\.csv:3: a quoted field is never closed \(its quote is at column 14; the row starts on line 2\)/);
});
