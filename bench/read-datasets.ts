// The readers on the full public sets (the unit tests read slices of them from data/finetune): counts,
// skipped rows, the detected task and the time each file takes. Takes the folder the sets are in, laid out
// as the project's shared data (SOURCES.md there):
//   npx tsx bench/read-datasets.ts ../shared/data [--json]
import { existsSync } from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { readChoiceExamples, readSquad, readTaggedSentences, readTextExamples } from "../server/tasks/readers.js";
import { detectTask } from "../server/tasks/tasks.js";

async function count<T>(it: AsyncIterable<T>): Promise<number> {
  let n = 0;
  for await (const _ of it) n++;
  return n;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { json: { type: "boolean" } } });
  const root = positionals[0];
  if (!root) throw new Error("usage: npx tsx bench/read-datasets.ts DATA_DIR [--json]");
  const sets: [string, (file: string, onBadRow: (m: string) => void) => Promise<number>][] = [
    ["sst-2/train.tsv", (f, onBadRow) => count(readTextExamples(f, { pair: false, onBadRow }))],
    ["mnli-sample/train.txt", (f, onBadRow) => count(readTextExamples(f, { pair: true, onBadRow }))],
    ["toutiao/toutiao_test.txt", (f, onBadRow) => count(readTextExamples(f, { pair: false, onBadRow }))],
    ["swag-sample/train_sample.csv", (f, onBadRow) => count(readChoiceExamples(f, { onBadRow }))],
    ["squad-v1.1/dev-part-a.json", async (f, onBadRow) => (await readSquad(f, { onBadRow })).length],
    ["chinese-ner/example_dev.txt", (f, onBadRow) => count(readTaggedSentences(f, { onBadRow }))],
  ];
  const results = [];
  for (const [name, read] of sets) {
    const file = path.join(root, name);
    if (!existsSync(file)) {
      results.push({ file: name, missing: true });
      continue;
    }
    let bad = 0;
    const t = performance.now();
    const examples = await read(file, () => bad++);
    const ms = performance.now() - t;
    results.push({ file: name, examples, bad_rows: bad, task: (await detectTask(file)).task, ms: Math.round(ms) });
  }
  if (values.json) console.log(JSON.stringify(results));
  else for (const r of results) console.log(Object.entries(r).map(([k, v]) => `${k} ${v}`).join("  "));
}

main().catch((e: Error) => {
  console.error(e.message);
  process.exit(1);
});
