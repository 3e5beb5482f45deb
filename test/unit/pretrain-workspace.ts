// A small pretraining setup the tests share: a corpus folder of 120 kB of the bundled WikiText slice, and
// the options of a tiny run on it (bert-base-uncased vocabulary, batch 4 of 32 tokens, 6 steps).
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { PretrainOptions } from "../../server/pretraining/pretrain.js";

export const DATA = path.resolve(process.cwd(), "data");
export const VOCAB = path.join(DATA, "bert-base-uncased-vocab.txt");

/** A fresh folder holding `corpus/wiki.tokens`; runs go to `run` beside it. */
export function workspace(prefix = "pretrain-"): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  mkdirSync(path.join(dir, "corpus"));
  writeFileSync(path.join(dir, "corpus/wiki.tokens"), readFileSync(path.join(DATA, "wikitext-2-slice/wiki.train.tokens"), "utf8").slice(0, 120_000));
  return dir;
}

export function tinyRun(dir: string, extra: Partial<PretrainOptions> = {}): PretrainOptions {
  return {
    corpus: path.join(dir, "corpus"),
    out: path.join(dir, "run"),
    vocab: VOCAB,
    preset: "tiny",
    steps: 6,
    batch: 4,
    seq: 32,
    lr: 1e-3,
    schedule: "linear",
    warmupSteps: 1,
    seed: 7,
    evalEvery: 3,
    checkpointEvery: 3,
    logEvery: 3,
    resume: false,
    device: "cpu",
    cased: false,
    heldOut: 0.1,
    ...extra,
  };
}
