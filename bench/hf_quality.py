"""Quality side by side: trains HF BertForPreTraining (BertForMaskedLM with --mlm-only) on the batches
`bench/dump-batches.ts` wrote (the same batches `bert-studio pretrain` trains on), with the same config,
optimizer and schedule, then scores it and our run folder on the same held-out batches: masked-token top-1
over all-[MASK] single segments, the protocol of server/pretraining/mlm-eval.ts.
    .venv/bin/python bench/hf_quality.py BATCHES.safetensors OUR_RUN --init INIT --lr 1e-3 --warmup 18 \
        [--beta2 0.98] [--mlm-only] [--seed S]
"""
import argparse, json, time
import torch
from safetensors.torch import load_file
from transformers import BertConfig, BertForMaskedLM, BertForPreTraining, get_scheduler

PRESETS = {"tiny": dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2, intermediate_size=512),
           "small": dict(num_hidden_layers=4, hidden_size=256, num_attention_heads=4, intermediate_size=1024)}
p = argparse.ArgumentParser()
p.add_argument("batches"); p.add_argument("ours")
p.add_argument("--preset", default="tiny"); p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--init", default=None, help="start from these weights (dump-batches.ts --init) instead of a fresh init")
p.add_argument("--log-every", type=int, default=50)
p.add_argument("--score-only", action="store_true", help="only score OUR_RUN (no HF training)")
p.add_argument("--beta2", type=float, default=0.999)
p.add_argument("--mlm-only", action="store_true", help="BertForMaskedLM: no NSP head or loss (pretrain --no-nsp)")
p.add_argument("--dropout", type=float, default=None, help="without --init: hidden and attention dropout")
p.add_argument("--warmup", type=int, default=None); p.add_argument("--schedule", default="linear"); p.add_argument("--seed", type=int, default=42)
a = p.parse_args()
t = load_file(a.batches)
seq = t["train.input_ids"].shape[1]; batch = 32
Model = BertForMaskedLM if a.mlm_only else BertForPreTraining
KEYS = ("input_ids", "token_type_ids", "attention_mask", "labels") + (() if a.mlm_only else ("next_sentence_label",))
steps = t["train.input_ids"].shape[0] // batch
warmup = a.warmup if a.warmup is not None else round(steps * 0.06)

def batches(prefix):
    n = t[f"{prefix}.input_ids"].shape[0] // batch
    for i in range(n):
        s = slice(i * batch, (i + 1) * batch)
        yield {k: t[f"{prefix}.{k}"][s] for k in KEYS}

@torch.no_grad()
def score(model):
    """Masked-token top-1 and loss on the eval segments, scored by a BertForMaskedLM view of the model."""
    model.eval(); mc = mn = 0; loss = 0.0; k = 0
    for b in batches("eval"):
        out = model(input_ids=b["input_ids"], token_type_ids=b["token_type_ids"], attention_mask=b["attention_mask"])
        logits = out.logits if hasattr(out, "logits") else out.prediction_logits
        sel = b["labels"] != -100
        loss += torch.nn.functional.cross_entropy(logits[sel], b["labels"][sel]).item(); k += 1
        mc += (logits.argmax(-1)[sel] == b["labels"][sel]).sum().item(); mn += sel.sum().item()
    return {"mlm_acc": mc / mn, "mlm_loss": loss / k, "masked_tokens": mn}

if a.score_only:
    print(json.dumps({"ours": score(BertForMaskedLM.from_pretrained(a.ours))}))
    raise SystemExit
torch.manual_seed(a.seed)
drop = {} if a.dropout is None else dict(hidden_dropout_prob=a.dropout, attention_probs_dropout_prob=a.dropout)
cfg = BertConfig(vocab_size=30522, **PRESETS[a.preset], **drop)
hf = (Model.from_pretrained(a.init) if a.init else Model(cfg)).train()
decay = [q for n, q in hf.named_parameters() if not ("bias" in n or "LayerNorm.weight" in n)]
no_decay = [q for n, q in hf.named_parameters() if "bias" in n or "LayerNorm.weight" in n]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=a.lr, betas=(0.9, a.beta2))
sched = get_scheduler(a.schedule, opt, num_warmup_steps=warmup, num_training_steps=steps)
t0 = time.time(); window = []
for i, b in enumerate(batches("train")):
    loss = hf(**b).loss
    loss.backward(); torch.nn.utils.clip_grad_norm_(hf.parameters(), 1.0); opt.step(); sched.step(); opt.zero_grad()
    window.append(loss.item())
    if (i + 1) % a.log_every == 0:
        print(f"HF step {i + 1}/{steps} loss {sum(window) / len(window):.4f} (mean of the last {len(window)})", flush=True); window = []
hf_time = time.time() - t0
ours = BertForMaskedLM.from_pretrained(a.ours)  # HF's masked-LM view of our folder (either head)
print(json.dumps({"steps": steps, "batch": batch, "seq": seq, "preset": a.preset,
                  "hf": {**score(hf), "train_s": round(hf_time, 1)}, "ours": score(ours)}))
