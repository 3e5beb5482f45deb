// `npm start`: train a WordPiece vocabulary and pretrain a tiny BERT on the bundled WikiText-2 slice for a
// few minutes, then fill masks.
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";

const run = "runs/demo";
const cli = (...args) => {
  const r = spawnSync(process.execPath, ["bin/bert-studio.js", ...args], { stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
rmSync(run, { recursive: true, force: true }); // the demo's own folder, started afresh each time
cli("pretrain", "data/wikitext-2-slice", "--out", run, "--train-vocab", "8000",
    "--preset", "tiny", "--steps", "1000", "--batch", "32", "--seq", "64", "--lr", "1e-3", "--eval-every", "100");
cli("fill-mask", "--model", run, "the [MASK] of the united states .", "he was born in [MASK] .", "the film was released in [MASK] 2009 .");
console.log(`\ncurves: ${run}/metrics.jsonl (one JSON line per 10 steps); the run folder is an HF checkpoint folder.`);
