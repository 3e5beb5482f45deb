// Continued pretraining (pretrain --from MODEL): the model's encoder, vocabulary and size are kept, heads it
// lacks start fresh and are reported, and bad input is one clear message.
import "./isolated-cache.js";
import assert from "node:assert/strict";
import { cpSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { readSafetensors, toFloat32, writeSafetensors } from "../../server/model/safetensors.js";
import { pretrain } from "../../server/pretraining/pretrain.js";
import { tinyRun, workspace } from "./pretrain-workspace.js";

test("--from a run: the same vocabulary and size, training starts from its weights", async () => {
  const dir = workspace("continue-");
  const a = path.join(dir, "run");
  await pretrain(tinyRun(dir));
  const b = path.join(dir, "continued");
  const messages: string[] = [];
  // A learning rate of 1e-12: after two steps the weights are the starting ones, to float precision.
  await pretrain(tinyRun(dir, { out: b, from: a, vocab: undefined, preset: "small", steps: 2, lr: 1e-12, onMessage: (m) => messages.push(m) }));
  assert.ok(messages.some((m) => /^continuing from .*: \d+ tensors loaded; its vocabulary \(30522\) and size are kept$/.test(m)), messages.join("\n"));
  assert.deepEqual(readFileSync(path.join(b, "vocab.txt")), readFileSync(path.join(a, "vocab.txt")));
  const cfg = (d: string) => JSON.parse(readFileSync(path.join(d, "config.json"), "utf8"));
  assert.equal(cfg(b).hidden_size, cfg(a).hidden_size, "the model's size, not --preset small's");
  assert.equal(cfg(b).num_hidden_layers, cfg(a).num_hidden_layers);
  const [wa, wb] = [(await readSafetensors(path.join(a, "model.safetensors"))).tensors, (await readSafetensors(path.join(b, "model.safetensors"))).tensors];
  for (const [name, t] of wa) {
    const x = toFloat32(t), y = toFloat32(wb.get(name)!);
    let worst = 0;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
    assert.ok(worst < 1e-6, `${name} moved by ${worst}`);
  }
});

test("--from a bare BertModel: the MLM head starts fresh and is named; --nsp adds a fresh NSP head", async () => {
  const dir = workspace("continue-");
  const a = path.join(dir, "run");
  await pretrain(tinyRun(dir, { steps: 3 }));
  const bare = path.join(dir, "bare");
  mkdirSync(bare);
  for (const f of ["config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json"]) cpSync(path.join(a, f), path.join(bare, f));
  const { tensors } = await readSafetensors(path.join(a, "model.safetensors"));
  await writeSafetensors(path.join(bare, "model.safetensors"), [...tensors].filter(([n]) => n.startsWith("bert.") && !n.startsWith("bert.pooler.")));
  const messages: string[] = [];
  const r = await pretrain(tinyRun(dir, { out: path.join(dir, "from-bare"), from: bare, vocab: undefined, steps: 3, onMessage: (m) => messages.push(m) }));
  assert.equal(r.step, 3);
  const line = messages.find((m) => m.startsWith("continuing from"))!;
  assert.match(line, /new: .*cls\.predictions\.transform\.dense\.weight/);
  assert.doesNotMatch(line, /bert\.encoder|seq_relationship/);
  assert.ok(messages.some((m) => /masked LM only, on contiguous text: the model has no NSP head/.test(m)), messages.join("\n"));
  assert.deepEqual(JSON.parse(readFileSync(path.join(dir, "from-bare", "config.json"), "utf8")).architectures, ["BertForMaskedLM"]);
  const withNsp: string[] = [];
  await pretrain(tinyRun(dir, { out: path.join(dir, "from-bare-nsp"), from: bare, vocab: undefined, steps: 3, nsp: true, onMessage: (m) => withNsp.push(m) }));
  assert.match(withNsp.find((m) => m.startsWith("continuing from"))!, /new: .*bert\.pooler\.dense\.weight.*cls\.seq_relationship\.weight/);
});

test("--from: a vocabulary of its own, or a folder without a tokenizer, is one clear error", async () => {
  const dir = workspace("continue-");
  await pretrain(tinyRun(dir, { steps: 3 }));
  const a = path.join(dir, "run");
  await assert.rejects(pretrain(tinyRun(dir, { out: path.join(dir, "x1"), from: a })), /--from keeps the model's own vocabulary/);
  const broken = path.join(dir, "no-tokenizer");
  cpSync(a, broken, { recursive: true });
  for (const f of ["vocab.txt", "tokenizer.json"]) rmSync(path.join(broken, f));
  await assert.rejects(pretrain(tinyRun(dir, { out: path.join(dir, "x2"), from: broken, vocab: undefined })), /cannot continue from .*no-tokenizer: .*no tokenizer\.json or vocab\.txt/);
});
