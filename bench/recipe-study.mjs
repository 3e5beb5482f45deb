// The pretraining recipe study (docs/RECIPES.md): each variant of the recipe pretrains a fresh model on the
// same corpus for the same number of minutes, then `bert-studio evaluate` scores it on held-out text by the
// all-[MASK] protocol (server/pretraining/mlm-eval.ts). One variant changes one or a few levers of the
// base; every variant runs alone (the machine's cores are the budget), one after another.
//
//   node bench/recipe-study.mjs --corpus DIR --held-out FILE [--minutes 3 | --steps N] [--extra "FLAGS"] [--out DIR]
//       [--only "a,b"] [--list]
//
// --minutes gives each variant the same wall time (the comparison that matters, when the machine is quiet);
// --steps the same number of optimizer steps, for levers that leave the step's cost alone (dropout, learning
// rate, warmup, beta2, NSP, mask rate, initialisation): the figures then do not depend on what else runs.
// Re-running a variant whose result is in OUT/results.jsonl skips it (delete the line to re-run it). The
// table at the end is what docs/RECIPES.md quotes. WikiText-2 (../shared/data/wikitext-2): --corpus a folder
// holding only wiki.train.tokens, --held-out wiki.valid.tokens.
import { spawnSync } from "node:child_process";
import { appendFileSync, existsSync, readFileSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    corpus: { type: "string" },
    "held-out": { type: "string" },
    minutes: { type: "string" },
    steps: { type: "string" },
    out: { type: "string", default: "runs/recipe-study" },
    only: { type: "string" },
    vocab: { type: "string", default: "8000" },
    list: { type: "boolean" },
    extra: { type: "string", default: "" },
  },
});

/**
 * Each variant's flags, added to `pretrain CORPUS --train-vocab V` and the budget. "bert" is BERT's recipe as
 * the engine ran it before this study (dropout 0.1, 15% masked, random position start, initializer_range
 * 0.02, NSP on, lr 1e-3 with 6% warmup and linear decay, batch 32 of 128 tokens); the other names say what
 * they change. Flags the engine now defaults to are spelled out, so that a name means the same recipe
 * whatever the defaults are.
 */
const BERT = ["--dropout", "0.1", "--mask-rate", "0.15", "--init-std", "0.02", "--position-init", "normal"];
const NEW = ["--dropout", "0", "--mask-rate", "0.3", "--init-std", "0.05", "--position-init", "sinusoidal"];
const VARIANTS = {
  bert: BERT,
  "dropout 0": ["--dropout", "0", "--mask-rate", "0.15", "--init-std", "0.02", "--position-init", "normal"],
  "dropout 0 + lr 3e-3": ["--dropout", "0", "--mask-rate", "0.15", "--init-std", "0.02", "--position-init", "normal", "--lr", "3e-3"],
  "dropout 0 + lr 5e-4": ["--dropout", "0", "--mask-rate", "0.15", "--init-std", "0.02", "--position-init", "normal", "--lr", "5e-4"],
  "dropout 0 + sinusoidal": ["--dropout", "0", "--mask-rate", "0.15", "--init-std", "0.02", "--position-init", "sinusoidal"],
  "dropout 0 + init 0.05": ["--dropout", "0", "--mask-rate", "0.15", "--init-std", "0.05", "--position-init", "normal"],
  "dropout 0 + init 0.1": ["--dropout", "0", "--mask-rate", "0.15", "--init-std", "0.1", "--position-init", "normal"],
  "dropout 0 + init 0.05 + no NSP": ["--dropout", "0", "--mask-rate", "0.15", "--init-std", "0.05", "--position-init", "normal", "--no-nsp"],
  "dropout 0 + init 0.05 + mask 30%": ["--dropout", "0", "--mask-rate", "0.3", "--init-std", "0.05", "--position-init", "normal"],
  "dropout 0 + init 0.05 + mask 40%": ["--dropout", "0", "--mask-rate", "0.4", "--init-std", "0.05", "--position-init", "normal"],
  "dropout 0 + init 0.05 + mask 30% + no NSP": ["--dropout", "0", "--mask-rate", "0.3", "--init-std", "0.05", "--position-init", "normal", "--no-nsp"],
  "new (dropout 0 + init 0.05 + mask 30% + sinusoidal)": NEW,
  "new + no NSP": [...NEW, "--no-nsp"],
  "new + no NSP + lr 2e-3": [...NEW, "--no-nsp", "--lr", "2e-3"],
  "new + beta2 0.98": [...NEW, "--beta2", "0.98"],
  "new + lr 2e-3": [...NEW, "--lr", "2e-3"],
  "new + batch 16": [...NEW, "--batch", "16"],
  "new + batch 64 + lr 2e-3": [...NEW, "--batch", "64", "--lr", "2e-3"],
  "new + seq 64": [...NEW, "--seq", "64"],
  "new + L4 H128": [...NEW, "--layers", "4"],
  "new + L4 H256 (small)": [...NEW, "--preset", "small"],
};

if (values.list) {
  for (const [name, flags] of Object.entries(VARIANTS)) console.log(`${name.padEnd(34)} ${flags.join(" ")}`);
  process.exit(0);
}
if (!values.corpus || !values["held-out"]) {
  console.error("usage: node bench/recipe-study.mjs --corpus DIR --held-out FILE [--minutes 3] [--out DIR] [--only a,b] [--list]");
  process.exit(2);
}
if (values.minutes && values.steps) throw new Error("give --minutes or --steps, not both");
const budget = values.steps ? { steps: Number(values.steps) } : { minutes: Number(values.minutes ?? 3) };
const budgetFlags = budget.steps ? ["--steps", String(budget.steps)] : ["--minutes", String(budget.minutes)];
const sameBudget = (r) => (budget.steps ? r.steps_budget === budget.steps : r.minutes === budget.minutes);
const only = values.only?.split(",").map((s) => s.trim());
for (const name of only ?? []) if (!(name in VARIANTS)) throw new Error(`no variant "${name}" (see --list)`);
const results = path.join(values.out, "results.jsonl");
const done = new Map(existsSync(results) ? readFileSync(results, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)).filter(sameBudget).map((r) => [r.variant, r]) : []);
const cli = (args) => spawnSync(process.execPath, ["bin/bert-studio.js", ...args], { encoding: "utf8", maxBuffer: 1 << 28 });
const cpu = os.cpus()[0]?.model ?? "unknown CPU";
console.error(`${cpu}, ${os.cpus().length} logical cores; ${budget.steps ? `${budget.steps} steps` : `${budget.minutes} minute(s)`} per variant`);

/** First logged step whose training MLM loss is 0.5 nats under the unigram plateau's (the loss at the first evaluation). */
function plateauEscape(rows) {
  const firstEval = rows.find((r) => r.eval_mlm_loss !== undefined);
  if (!firstEval) return null;
  const plateau = Math.min(...rows.filter((r) => r.step <= firstEval.step).map((r) => r.mlm_loss));
  const hit = rows.find((r) => r.step > firstEval.step && r.mlm_loss < plateau - 0.5);
  return hit?.step ?? null;
}

for (const [variant, flags] of Object.entries(VARIANTS)) {
  if (only && !only.includes(variant)) continue;
  if (done.has(variant)) continue;
  const run = path.join(values.out, variant.replace(/[^a-z0-9]+/gi, "-"));
  rmSync(run, { recursive: true, force: true });
  const t0 = Date.now();
  const p = cli(["pretrain", values.corpus, "--out", run, "--train-vocab", values.vocab, ...budgetFlags, ...flags, ...values.extra.split(" ").filter(Boolean)]);
  const wall = (Date.now() - t0) / 1000;
  if (p.status !== 0) {
    console.error(`${variant}: pretrain failed\n${p.stderr}`);
    continue;
  }
  const e = cli(["evaluate", "--model", run, "--text", values["held-out"], "--seq", "128", "--max-sequences", "1024", "--json"]);
  if (e.status !== 0) {
    console.error(`${variant}: evaluate failed\n${e.stderr}`);
    continue;
  }
  const score = JSON.parse(e.stdout);
  const rows = readFileSync(path.join(run, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const last = rows.at(-1);
  const tps = rows.map((r) => r.tokens_per_s).sort((a, b) => a - b)[Math.floor(rows.length / 2)];
  const r = {
    variant,
    flags: [...flags, ...values.extra.split(" ").filter(Boolean)].join(" "),
    minutes: budget.minutes ?? null,
    steps_budget: budget.steps ?? null,
    wall_s: wall,
    steps: last.step,
    tokens_per_s: tps,
    plateau_escape_step: plateauEscape(rows),
    top1: score.mlm_acc,
    top5: score.mlm_top5,
    perplexity: score.mlm_perplexity,
    nsp_acc: score.nsp_acc ?? null,
    cpu,
  };
  appendFileSync(results, JSON.stringify(r) + "\n");
  done.set(variant, r);
  console.error(`${variant}: top-1 ${(r.top1 * 100).toFixed(1)}%, ${r.steps} steps, wall ${wall.toFixed(0)} s`);
}

const pct = (x) => (x === null || x === undefined ? "–" : `${(x * 100).toFixed(1)}%`);
console.log(`| variant | flags | steps | tokens/s | plateau escape (step) | top-1 | top-5 | perplexity | NSP | wall |`);
console.log(`|---|---|---|---|---|---|---|---|---|---|`);
for (const r of [...done.values()].sort((a, b) => b.top1 - a.top1)) {
  console.log(`| ${r.variant} | \`${r.flags}\` | ${r.steps} | ${Math.round(r.tokens_per_s)} | ${r.plateau_escape_step ?? "not in the run"} | ${pct(r.top1)} | ${pct(r.top5)} | ${r.perplexity.toFixed(0)} | ${pct(r.nsp_acc)} | ${r.wall_s.toFixed(0)} s |`);
}
