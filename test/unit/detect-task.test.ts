// Fine-tuning with the task detected ("auto") starts only on a labelled table: prose (Markdown, a .txt of
// sentences, HTML) and one-column files are refused at once, with what the file would need to be, while
// every layout the readers take is still detected as its task.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { DataError } from "../../server/tasks/readers.js";
import { detectTask } from "../../server/tasks/tasks.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "detect-task-"));
function file(name: string, text: string): string {
  const f = path.join(tmp, name);
  writeFileSync(f, text);
  return f;
}

const refused = (f: string, why: RegExp) =>
  assert.rejects(detectTask(f), (e: Error) => e instanceof DataError && why.test(e.message) && /needs a labelled table \(TSV\/CSV with text and label columns, JSON lines, CoNLL, SQuAD JSON, SWAG CSV\)/.test(e.message));

test("prose and one-column files are refused with the reason, before anything trains", async () => {
  const markdown = "# Notes\n\nBERT is a model, trained on text, that fills masks.\nIt was published in 2018, by Google.\n\n\tindented code, with commas\n";
  await refused(file("notes.md", markdown), /notes\.md is prose \(no label column\)/);
  await refused(file("wiki.txt", " = Valkyria Chronicles III = \n\nSenjō no Valkyria 3 : Unrecorded Chronicles , commonly referred to as Valkyria Chronicles III , is a tactical role @-@ playing video game .\n"), /is prose/);
  await refused(file("page.html", "<!DOCTYPE html>\n<html><body><p>Hello, world</p></body></html>\n"), /is prose/);
  await refused(file("guide.rst", "Guide\n=====\n\nSome text, with a comma.\n"), /is prose/);
  await refused(file("sentences.tsv", "sentence\nthe film was good\nthe plot was dull\n"), /its first lines have one column \(no label column\)/);
  await refused(file("one.csv", "text\nhello\n\"quoted, with a comma\"\n"), /one column/);
});

test("labelled tables are still detected, whatever their extension", async () => {
  assert.equal((await detectTask(file("labels.txt", "a good film\t1\na dull plot\t0\n"))).task, "classify");
  assert.equal((await detectTask(file("notes.md", "sentence\tlabel\ngood\t1\n"))).task, "classify");
  assert.equal((await detectTask(file("news.txt", "故宫如何修文物？_!_1\n深圳房价_!_5\n"))).task, "classify");
  assert.equal((await detectTask(file("mnli.txt", "a man sleeps_!_a person rests_!_0\n"))).task, "pair");
  assert.equal((await detectTask(file("tags.txt", "EU B-ORG\nrejects O\n"))).task, "ner");
  assert.equal((await detectTask(file("rows.txt", '{"text": "x", "label": 1}\n'))).task, "classify");
  assert.equal((await detectTask(file("reviews.csv", 'review,stars\n"great, really",5\nbad,1\n'))).task, "classify");
  assert.equal((await detectTask(file("data", "text,label\ngood,1\n"))).task, "classify");
});
