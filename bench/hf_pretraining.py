"""Peer benchmark: Hugging Face BertForPreTraining + torch AdamW, the same step as `bert-studio bench train`.

Random tokens, MLM (15% of positions labelled) + NSP, forward + backward + clip_grad_norm_ + AdamW step.
Prints one JSON line like ours: tokens_per_s, step_s, peak_rss_mb. Needs torch and transformers:
    python3 -m venv .venv && .venv/bin/pip install torch transformers
    .venv/bin/python bench/hf_pretraining.py --preset small --batch 32 --seq 128 --steps 5
"""
import argparse, json, resource, time

import torch
from transformers import BertConfig, BertForPreTraining

PRESETS = {
    "tiny": dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2, intermediate_size=512),
    "small": dict(num_hidden_layers=4, hidden_size=256, num_attention_heads=4, intermediate_size=1024),
    "base": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072),
}

p = argparse.ArgumentParser()
p.add_argument("--preset", default="small", choices=PRESETS)
p.add_argument("--batch", type=int, default=32)
p.add_argument("--seq", type=int, default=128)
p.add_argument("--steps", type=int, default=5)
p.add_argument("--warmup", type=int, default=1)
a = p.parse_args()

torch.manual_seed(0)
cfg = BertConfig(vocab_size=30522, max_position_embeddings=max(512, a.seq), **PRESETS[a.preset])
model = BertForPreTraining(cfg).train()
decay = [p for n, p in model.named_parameters() if not ("bias" in n or "LayerNorm.weight" in n)]
no_decay = [p for n, p in model.named_parameters() if "bias" in n or "LayerNorm.weight" in n]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-4)

def batch():
    ids = torch.randint(5, cfg.vocab_size, (a.batch, a.seq))
    labels = torch.full_like(ids, -100)
    n = max(1, round(0.15 * a.seq))
    for b in range(a.batch):
        pos = torch.randperm(a.seq - 1)[:n] + 1
        labels[b, pos] = ids[b, pos]
    types = (torch.arange(a.seq) > a.seq // 2).long().expand(a.batch, -1)
    return dict(input_ids=ids, token_type_ids=types, attention_mask=torch.ones_like(ids), labels=labels,
                next_sentence_label=torch.randint(0, 2, (a.batch,)))

batches = [batch(), batch()]
def step(i):
    out = model(**batches[i % 2])
    out.loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)

for i in range(a.warmup):
    step(i)
t = time.perf_counter()
for i in range(a.steps):
    step(i)
dt = (time.perf_counter() - t) / a.steps
print(json.dumps({"peer": f"transformers {__import__('transformers').__version__} torch {torch.__version__}",
                  "batch": a.batch, "seq": a.seq, "steps": a.steps, "tokens_per_s": a.batch * a.seq / dt, "step_s": dt,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
