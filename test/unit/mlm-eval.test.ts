// Masked-LM evaluation of a pretrained model on any text (bert-studio evaluate --text), the same code as
// the trainer's held-out figures: all-[MASK] protocol, fixed pairs and masks, top-1/top-5, perplexity, NSP.
import "./isolated-cache.js";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { evaluateOnText } from "../../server/pretraining/mlm-eval.js";
import { pretrain } from "../../server/pretraining/pretrain.js";
import { maskTokens, pretrainingOptions, specialIds } from "../../server/pretraining/pretraining-data.js";
import { BertTokenizer } from "../../server/text/tokenizer.js";
import { Rng } from "../../server/util/rng.js";
import { DATA, tinyRun, VOCAB, workspace } from "./pretrain-workspace.js";

let trained: { dir: string; run: string; text: string } | undefined;
/** A tiny run (6 steps) and a held-out text it never saw (WikiText, further into the slice). */
async function trainedRun(): Promise<{ dir: string; run: string; text: string }> {
  if (trained) return trained;
  const dir = workspace("mlm-eval-");
  await pretrain(tinyRun(dir, { nsp: true }));
  const text = path.join(dir, "held-out.tokens");
  writeFileSync(text, readFileSync(path.join(DATA, "wikitext-2-slice/wiki.train.tokens"), "utf8").slice(1_000_000, 1_100_000));
  return (trained = { dir, run: path.join(dir, "run"), text });
}

test("all-mask: every predicted token becomes [MASK]; training keeps BERT's 80/10/10", async () => {
  const tok = await BertTokenizer.fromVocabFile(VOCAB);
  const special = specialIds(tok);
  const ids = Int32Array.from([special.cls, ...Array.from({ length: 400 }, (_, i) => 1000 + i), special.sep]);
  const opts = { ...pretrainingOptions(512), maxPredictionsPerSeq: 60 };
  const all = maskTokens(ids, { ...opts, replacement: "all-mask" }, special, new Rng(3));
  assert.equal(all.positions.length, 60);
  assert.ok(all.positions.every((p) => all.ids[p] === special.mask));
  const bert = maskTokens(ids, opts, special, new Rng(3));
  const masked = bert.positions.filter((p) => bert.ids[p] === special.mask).length;
  assert.ok(masked > 36 && masked < 60, `${masked} of 60 [MASK] under 80/10/10`);
});

test("evaluate on text: figures from one fixed protocol, the same for the same seed; the trainer reports the same figures", async () => {
  const { run, text } = await trainedRun();
  const a = await evaluateOnText(run, text, { device: "cpu", seq: 64, batch: 8, maxSequences: 64 });
  assert.equal(a.protocol, "all-mask");
  assert.equal(a.sequences, 64);
  assert.ok(a.masked_tokens > 64 * 5, `${a.masked_tokens} masked tokens`);
  assert.ok(a.mlm_acc >= 0 && a.mlm_top5 >= a.mlm_acc && a.mlm_top5 <= 1);
  assert.ok(Math.abs(a.mlm_perplexity - Math.exp(a.mlm_loss)) < 1e-9 * a.mlm_perplexity);
  assert.ok(a.nsp_acc! >= 0 && a.nsp_acc! <= 1);
  assert.ok(Math.abs(a.loss! - (a.mlm_loss + a.nsp_loss!)) < 1e-9);
  const again = await evaluateOnText(run, text, { device: "cpu", seq: 64, batch: 8, maxSequences: 64 });
  assert.deepEqual(again, a, "deterministic");
  const other = await evaluateOnText(run, text, { device: "cpu", seq: 64, batch: 8, maxSequences: 64, seed: 7 });
  assert.notEqual(other.mlm_loss, a.mlm_loss, "another seed draws other pairs and masks");
  const row = readFileSync(path.join(run, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l)).at(-1);
  for (const k of ["eval_mlm_acc", "eval_mlm_top5", "eval_mlm_perplexity", "eval_nsp_acc"]) assert.ok(Number.isFinite(row[k]), k);
  assert.ok(row.eval_mlm_top5 >= row.eval_mlm_acc);
});

test("the CLI: evaluate --text prints the figures; bad input is one clear message", async () => {
  const { dir, run, text } = await trainedRun();
  const cli = (...args: string[]) => spawnSync(process.execPath, ["bin/bert-studio.js", "evaluate", ...args], { encoding: "utf8" });
  const r = cli("--model", run, "--text", text, "--seq", "64", "--max-sequences", "32", "--json");
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.protocol, "all-mask");
  assert.ok(out.mlm_top5 >= out.mlm_acc && out.masked_tokens > 0);
  const both = cli("--model", run, "--text", text, "--data", text);
  assert.equal(both.status, 2);
  assert.match(both.stderr, /--data FILE .* or --text FILE\|DIR .* not both/);
  assert.equal(cli("--model", run, "--text", path.join(dir, "missing")).status, 1);
  const empty = path.join(dir, "empty");
  mkdirSync(empty);
  const none = cli("--model", run, "--text", empty);
  assert.equal(none.status, 1);
  assert.match(none.stderr, /no text found to evaluate on/);
  const tooLong = cli("--model", run, "--text", text, "--seq", "4096");
  assert.equal(tooLong.status, 1);
  assert.match(tooLong.stderr, /--seq 4096 is longer than the model's 512 positions/);
});
