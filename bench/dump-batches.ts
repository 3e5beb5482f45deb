// Writes the exact training batches `bert-studio pretrain` would use (same corpus split, seed, instances
// and masks), and evaluation batches from another corpus by the evaluation protocol (server/pretraining/
// mlm-eval.ts: all-[MASK] single segments), as safetensors with HF-style labels, so that
// bench/hf_quality.py can train HF's BertForPreTraining (or BertForMaskedLM) on the same data and score
// both models alike.
//   npx tsx bench/dump-batches.ts CORPUS EVAL_CORPUS VOCAB OUT.safetensors --steps N --batch B --seq T [--seed S]
//     [--eval-batches K] [--mask-rate R] [--no-nsp] [--init DIR --preset tiny|small [--position-init sinusoidal] [--dropout P] [--init-std S]]
// With --init, DIR receives the initial weights `pretrain --seed S --preset P` starts from (an HF folder), so
// both trainings can start from the same point. CORPUS is the text the run trained on, read as it did
// (the vocabulary is the run's vocab.txt).
import { parseArgs } from "node:util";
import type * as ort from "onnxruntime-node";
import { bertConfig, PRESETS, writeConfig } from "../server/model/config.js";
import { architectureOf } from "../server/model/heads.js";
import { initParams, ParamStore, paramShapes, saveParams } from "../server/model/params.js";
import { writeSafetensors } from "../server/model/safetensors.js";
import { BatchStream, sinusoidalPositions, splitHeldOut } from "../server/pretraining/pretrain.js";
import { evalSet } from "../server/pretraining/mlm-eval.js";
import { collate, pretrainingOptions, specialIds } from "../server/pretraining/pretraining-data.js";
import { tokenizeCorpus } from "../server/text/token-cache.js";
import { BertTokenizer } from "../server/text/tokenizer.js";
import { Rng } from "../server/util/rng.js";

async function main() {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { steps: { type: "string" }, batch: { type: "string" }, seq: { type: "string" }, seed: { type: "string" }, "eval-batches": { type: "string" }, init: { type: "string" }, preset: { type: "string" }, "mask-rate": { type: "string" }, "no-nsp": { type: "boolean" }, "position-init": { type: "string" }, dropout: { type: "string" }, "init-std": { type: "string" } } });
  const [corpus, evalCorpus, vocab, out] = positionals;
  const steps = Number(values.steps ?? 300), batch = Number(values.batch ?? 32), seq = Number(values.seq ?? 128), seed = Number(values.seed ?? 42);
  const tok = await BertTokenizer.fromVocabFile(vocab);
  const special = specialIds(tok);
  const head = values["no-nsp"] ? "masked_lm" : "pretraining";
  const data = { ...pretrainingOptions(seq, values["mask-rate"] ? Number(values["mask-rate"]) : undefined), nextSentence: head === "pretraining" };
  const { train } = splitHeldOut((await tokenizeCorpus(corpus, tok)).docs, 0.05);
  const stream = new BatchStream(train, data, special, batch, seed, { epoch: 0, shard: 0, next: 0 }, new Rng(seed));
  const trainBatches = Array.from({ length: steps }, () => stream.next());
  const evalDocs = (await tokenizeCorpus(evalCorpus, tok)).docs;
  const k = Number(values["eval-batches"] ?? 20);
  const protocol = { ...pretrainingOptions(seq), replacement: "all-mask" as const };
  const { segments } = evalSet(evalDocs, protocol, special, 123, k * batch, { pairs: false });
  const rng = new Rng(124);
  const evalBatches = Array.from({ length: Math.floor(segments.length / batch) }, (_, i) => collate(segments.slice(i * batch, (i + 1) * batch), protocol, special, rng));
  const tensors: [string, { dtype: "I64"; shape: number[]; data: Uint8Array }][] = [];
  for (const [prefix, list] of [["train", trainBatches], ["eval", evalBatches]] as const) {
    tensors.push(...stack(prefix, list, batch, seq));
  }
  await writeSafetensors(out, tensors, { format: "pt", seq: String(seq), batch: String(batch) });
  if (values.init) {
    const { mkdir } = await import("node:fs/promises");
    await mkdir(values.init, { recursive: true });
    const dropout = values.dropout === undefined ? {} : { hiddenDropoutProb: Number(values.dropout), attentionProbsDropoutProb: Number(values.dropout) };
    const init = values["init-std"] === undefined ? {} : { initializerRange: Number(values["init-std"]) };
    const cfg = bertConfig({ ...PRESETS[(values.preset ?? "tiny") as keyof typeof PRESETS], ...dropout, ...init, vocabSize: tok.vocabSize, architectures: [architectureOf(head)] });
    const params = ParamStore.fromShapes(paramShapes(cfg, head));
    initParams(params, cfg, seed);
    if (values["position-init"] === "sinusoidal") sinusoidalPositions(params, cfg);
    await writeConfig(values.init, cfg);
    await saveParams(params, `${values.init}/model.safetensors`);
  }
  console.log(`${out}: ${steps} training and ${k} evaluation batches of ${batch}x${seq}`);
}

/** Stacks batches into [n*batch, seq] tensors; masked positions become HF labels (-100 elsewhere). */
function stack(prefix: string, list: Record<string, ort.Tensor>[], batch: number, seq: number) {
  const n = list.length * batch;
  const ids = new BigInt64Array(n * seq), types = new BigInt64Array(n * seq), mask = new BigInt64Array(n * seq);
  const labels = new BigInt64Array(n * seq).fill(-100n), nsp = new BigInt64Array(n);
  list.forEach((f, i) => {
    ids.set(f.input_ids.data as BigInt64Array, i * batch * seq);
    types.set(f.token_type_ids.data as BigInt64Array, i * batch * seq);
    mask.set(f.attention_mask.data as BigInt64Array, i * batch * seq);
    nsp.set(f.next_sentence_label.data as BigInt64Array, i * batch);
    const pos = f.masked_positions.data as BigInt64Array, lab = f.masked_lm_labels.data as BigInt64Array;
    for (let j = 0; j < pos.length; j++) if (lab[j] >= 0n) labels[i * batch * seq + Number(pos[j])] = lab[j];
  });
  const t = (name: string, a: BigInt64Array, shape: number[]) => [`${prefix}.${name}`, { dtype: "I64" as const, shape, data: new Uint8Array(a.buffer) }] as [string, { dtype: "I64"; shape: number[]; data: Uint8Array }];
  return [t("input_ids", ids, [n, seq]), t("token_type_ids", types, [n, seq]), t("attention_mask", mask, [n, seq]), t("labels", labels, [n, seq]), t("next_sentence_label", nsp, [n])];
}

main();
