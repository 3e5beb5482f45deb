"""SST-2 side by side: fine-tunes HF's BertForSequenceClassification from the same starting weights as
`bert-studio finetune classify ... --save-init INIT` (same data, hyper-parameters and steps), then scores it
and our fine-tuned run on the same held-out file with HF's own code.
    .venv/bin/python bench/hf_finetune.py TRAIN.tsv DEV.tsv INIT OUR_RUN --epochs 1 --batch 32 --lr 1e-4
"""
import argparse, csv, json, math, time
import torch
from transformers import BertForSequenceClassification, BertTokenizerFast, get_scheduler

p = argparse.ArgumentParser()
p.add_argument("train"); p.add_argument("dev"); p.add_argument("init"); p.add_argument("ours")
p.add_argument("--epochs", type=int, default=1); p.add_argument("--batch", type=int, default=32)
p.add_argument("--lr", type=float, default=5e-5); p.add_argument("--max-length", type=int, default=128)
p.add_argument("--warmup-ratio", type=float, default=0.1); p.add_argument("--seed", type=int, default=42)
a = p.parse_args()

def rows(f):
    """(line number, text, label) of a TSV with a header, as our reader numbers lines."""
    with open(f, newline="") as h:
        r = list(csv.reader(h, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [(i + 2, t, l) for i, (t, l) in enumerate(r[1:]) if t.strip()]

torch.manual_seed(a.seed)
tok = BertTokenizerFast.from_pretrained(a.init)
model = BertForSequenceClassification.from_pretrained(a.init)
label2id = model.config.label2id
train, dev = rows(a.train), rows(a.dev)
by_line = {n: (t, l) for n, t, l in train}
try:  # the order our trainer used (finetune --save-init writes it), so both see the same batches
    orders = json.load(open(f"{a.init}/example_order.json"))["epochs"]
except FileNotFoundError:
    orders = None

def batch(items):
    enc = tok([t for t, _ in items], truncation=True, max_length=a.max_length, padding=True, return_tensors="pt")
    enc["labels"] = torch.tensor([label2id[l] for _, l in items])
    return enc

steps = math.ceil(len(train) / a.batch) * a.epochs
decay = [q for n, q in model.named_parameters() if not ("bias" in n or "LayerNorm.weight" in n)]
no_decay = [q for n, q in model.named_parameters() if "bias" in n or "LayerNorm.weight" in n]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=a.lr)
sched = get_scheduler("linear", opt, num_warmup_steps=round(steps * a.warmup_ratio), num_training_steps=steps)
model.train(); t0 = time.time(); g = torch.Generator().manual_seed(a.seed)
for epoch in range(a.epochs):
    order = orders[epoch] if orders else [train[j][0] for j in torch.randperm(len(train), generator=g).tolist()]
    for i in range(0, len(order), a.batch):
        loss = model(**batch([by_line[n] for n in order[i:i + a.batch]])).loss
        loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step(); sched.step(); opt.zero_grad()
train_s = time.time() - t0

@torch.no_grad()
def accuracy(m):
    m.eval(); hit = 0
    for i in range(0, len(dev), 64):
        b = batch([(t, l) for _, t, l in dev[i:i + 64]]); hit += (m(**b).logits.argmax(-1) == b["labels"]).sum().item()
    return hit / len(dev)

ours = BertForSequenceClassification.from_pretrained(a.ours)
print(json.dumps({"same_order": orders is not None, "train": len(train), "dev": len(dev), "steps": steps, "batch": a.batch, "lr": a.lr,
                  "hf": {"accuracy": accuracy(model), "train_s": round(train_s, 1)}, "ours": {"accuracy": accuracy(ours)}}))
