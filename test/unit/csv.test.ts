// CSV files as users write them: quoted fields with commas, doubled quotes and line breaks, and the
// stray quote that used to swallow the rest of the file (and took minutes doing it).
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { readChoiceExamples, readTextExamples } from "../../server/tasks/readers.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "csv-"));
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
