// `npm start`: train a WordPiece vocabulary and pretrain a tiny BERT on the bundled WikiText-2 slice for 4.5
// minutes with the engine's default recipe (docs/RECIPES.md), print its held-out masked-token accuracy, fill a
// few masks, and say what to run next.
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";

const run = "runs/demo";
const MINUTES = "4.5";
const cli = (...args) => {
  const r = spawnSync(process.execPath, ["bin/bert-studio.js", ...args], { stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
const started = Date.now();
rmSync(run, { recursive: true, force: true }); // the demo's own folder, started afresh each time
cli("pretrain", "data/wikitext-2-slice", "--out", run, "--train-vocab", "8000", "--preset", "tiny", "--minutes", MINUTES);
const rows = readFileSync(`${run}/metrics.jsonl`, "utf8").trim().split("\n").map((l) => JSON.parse(l));
const last = rows.findLast((r) => r.eval_mlm_acc !== undefined);
const pct = (x) => `${(x * 100).toFixed(1)}%`;
console.log(
  `\nheld-out masked tokens (documents the run did not train on; every predicted token a [MASK]):` +
    ` top-1 ${pct(last.eval_mlm_acc)}, top-5 ${pct(last.eval_mlm_top5)}, perplexity ${last.eval_mlm_perplexity.toFixed(0)} after ${last.step} steps\n`,
);
cli("fill-mask", "--model", run, "--top-k", "3",
    "the album was released in [MASK] 2010 .",
    "the team won the [MASK] .",
    "he was born in [MASK] .",
    "the river flows into the [MASK] .");
const [architecture] = JSON.parse(readFileSync(`${run}/config.json`, "utf8")).architectures;
console.log(`\n${((Date.now() - started) / 60000).toFixed(1)} minutes. The run folder ${run} is a Hugging Face checkpoint (${architecture}); curves in ${run}/metrics.jsonl.
Next:
  npx bert-studio fill-mask --model ${run} "your sentence with a [MASK] ."
  npx bert-studio evaluate --model ${run} --text FILE_OR_FOLDER        (masked-token accuracy on any text)
  npx bert-studio finetune classify --model ${run} --train data/finetune/sst2-train.tsv --eval data/finetune/sst2-dev.tsv --out runs/demo-sst2
  npx bert-studio pretrain YOUR_FOLDER --from ${run} --out runs/mine --minutes 10   (continue on your own text)`);
