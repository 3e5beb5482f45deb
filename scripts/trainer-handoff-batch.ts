// For scripts/test-trainer-handoff.sh: the batch a pretraining run trains on at its next step (the run's
// corpus, held-out split, stream position and masking RNG, as `pretrain --resume` draws it), written as
// Hugging Face's BertForMaskedLM takes it (input_ids, token_type_ids, attention_mask, and labels: the
// original token at each predicted position, -100 elsewhere). With it the check compares one step of the
// exported train.py's optimizer with the run's own next step on the same batch.
//   npx tsx scripts/trainer-handoff-batch.ts RUN OUT.safetensors
import { promises as fs } from "node:fs";
import { MB } from "../common/settings.js";
import { writeSafetensors } from "../server/model/safetensors.js";
import { BatchStream, splitHeldOut, trainingData, type PretrainRecipe } from "../server/pretraining/pretrain.js";
import { specialIds } from "../server/pretraining/pretraining-data.js";
import { tokenizeCorpus } from "../server/text/token-cache.js";
import { BertTokenizer } from "../server/text/tokenizer.js";
import { Rng } from "../server/util/rng.js";

async function main(): Promise<void> {
  const [run, out] = process.argv.slice(2);
  if (!run || !out) throw new Error("usage: trainer-handoff-batch.ts RUN OUT.safetensors");
  const state = JSON.parse(await fs.readFile(`${run}/trainer_state.json`, "utf8")) as { seed: number; epoch: number; shard: number; next: number; rng: number[]; recipe?: PretrainRecipe };
  const r = state.recipe;
  if (!r || r.nsp || r.accumulationSteps !== 1) throw new Error(`${run}: a masked-LM run that records its recipe, without gradient accumulation, is needed`);
  const tok = await BertTokenizer.fromDir(run);
  const { docs } = await tokenizeCorpus(r.corpus, tok, { include: r.include, exclude: r.exclude, maxFileBytes: r.maxFileMb * MB });
  const rng = new Rng(0);
  rng.setState(state.rng);
  const position = { epoch: state.epoch, shard: state.shard, next: state.next };
  const feeds = new BatchStream(splitHeldOut(docs, r.heldOut).train, trainingData(r), specialIds(tok), r.batch, state.seed, position, rng).next();
  const [B, T] = feeds.input_ids.dims;
  const labels = new BigInt64Array(B * T).fill(-100n);
  const positions = feeds.masked_positions.data as BigInt64Array;
  const targets = feeds.masked_lm_labels.data as BigInt64Array;
  positions.forEach((p, i) => {
    if (targets[i] >= 0n) labels[Number(p)] = targets[i];
  });
  const i64 = (data: BigInt64Array) => ({ dtype: "I64" as const, shape: [B, T], data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
  await writeSafetensors(out, [
    ["input_ids", i64(feeds.input_ids.data as BigInt64Array)],
    ["token_type_ids", i64(feeds.token_type_ids.data as BigInt64Array)],
    ["attention_mask", i64(feeds.attention_mask.data as BigInt64Array)],
    ["labels", i64(labels)],
  ]);
}

main().catch((e: Error) => {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
});
