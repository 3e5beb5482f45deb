"""Writes a parity fixture laid out like ../shared/fixtures/hf (pretraining/ or heads/<task>/) for a model of
any shape, seed and vocabulary size, computed by Hugging Face transformers, so `bert-studio parity` can be
checked on fixtures it was not developed against.
    .venv/bin/python bench/make_parity_fixture.py OUT --task pretraining --layers 3 --hidden 48 --heads 6 \
        --intermediate 96 --vocab 777 --batch 4 --seq 31 --seed 123
    npx bert-studio parity OUT --json
Tasks: pretraining (also writes train.json and three AdamW steps), sequence_classification,
token_classification, question_answering, multiple_choice.
"""
import argparse, json, os

import torch
from safetensors.torch import save_file
from transformers import (BertConfig, BertForMultipleChoice, BertForPreTraining, BertForQuestionAnswering,
                          BertForSequenceClassification, BertForTokenClassification, get_scheduler)

MODELS = {"pretraining": BertForPreTraining, "sequence_classification": BertForSequenceClassification,
          "token_classification": BertForTokenClassification, "question_answering": BertForQuestionAnswering,
          "multiple_choice": BertForMultipleChoice}
p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--task", default="pretraining", choices=MODELS)
for name, default in [("layers", 3), ("hidden", 48), ("heads", 6), ("intermediate", 96), ("vocab", 777),
                      ("batch", 4), ("seq", 31), ("seed", 123), ("labels", 4), ("choices", 3)]:
    p.add_argument(f"--{name}", type=int, default=default)
p.add_argument("--float64", action="store_true", help="compute the expected values in float64 (stored as float32)")
a = p.parse_args()
if a.task == "question_answering":
    a.labels = 2
torch.manual_seed(a.seed)
g = torch.Generator().manual_seed(a.seed)

cfg = BertConfig(vocab_size=a.vocab, hidden_size=a.hidden, num_hidden_layers=a.layers, num_attention_heads=a.heads,
                 intermediate_size=a.intermediate, max_position_embeddings=max(64, a.seq), hidden_dropout_prob=0.0,
                 attention_probs_dropout_prob=0.0, num_labels=a.labels, initializer_range=0.05)
model = MODELS[a.task](cfg).train()
# Non-zero biases and LayerNorm parameters, so every gradient path is exercised.
with torch.no_grad():
    for n, t in model.named_parameters():
        if n.endswith("bias") or "LayerNorm" in n:
            t.add_(torch.randn(t.shape, generator=g) * 0.05)

shape = (a.batch, a.choices, a.seq) if a.task == "multiple_choice" else (a.batch, a.seq)
ids = torch.randint(5, a.vocab, shape, generator=g)
ids[..., 0] = 2
types = torch.zeros(shape, dtype=torch.long)
types[..., a.seq // 2:] = 1
mask = torch.ones(shape, dtype=torch.long)
pad = a.seq // 3  # the last example is padded
mask[-1, ..., a.seq - pad:] = 0
ids[-1, ..., a.seq - pad:] = 0
types[-1, ..., a.seq - pad:] = 0
batch = {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}
if a.task == "pretraining":
    labels = torch.full(shape, -100)
    pick = torch.rand(shape, generator=g) < 0.15
    pick[:, 0] = False
    pick &= mask.bool()
    pick[:, 1] = True  # at least one masked position per row
    labels[pick] = torch.randint(0, a.vocab, shape, generator=g)[pick]
    batch["labels"] = labels
    batch["next_sentence_label"] = torch.randint(0, 2, (a.batch,), generator=g)
elif a.task == "sequence_classification":
    batch["labels"] = torch.randint(0, a.labels, (a.batch,), generator=g)
elif a.task == "token_classification":
    labels = torch.randint(0, a.labels, shape, generator=g)
    labels[mask == 0] = -100
    labels[:, 0] = -100
    batch["labels"] = labels
elif a.task == "question_answering":
    batch["start_positions"] = torch.randint(1, a.seq - pad, (a.batch,), generator=g)
    batch["end_positions"] = torch.clamp(batch["start_positions"] + 2, max=a.seq - pad - 1)
else:
    batch["labels"] = torch.randint(0, a.choices, (a.batch,), generator=g)

os.makedirs(a.out, exist_ok=True)
arch = type(model).__name__
model.config.architectures = [arch]
model.save_pretrained(a.out)
if a.float64:
    model.double()
with open(os.path.join(a.out, "batch.json"), "w") as f:
    json.dump({k: v.tolist() for k, v in batch.items()}, f)

out = model(**batch, output_hidden_states=True)
expected = {}
if a.task == "pretraining":
    expected["embedding_output"] = out.hidden_states[0]
    expected["last_hidden_state"] = out.hidden_states[-1]
    expected["pooler_output"] = model.bert.pooler(out.hidden_states[-1])
    expected["prediction_logits"] = out.prediction_logits
    expected["seq_relationship_logits"] = out.seq_relationship_logits
    ce = torch.nn.functional.cross_entropy
    expected["mlm_loss"] = ce(out.prediction_logits.reshape(-1, a.vocab), batch["labels"].reshape(-1), ignore_index=-100).reshape(1)
    expected["nsp_loss"] = ce(out.seq_relationship_logits, batch["next_sentence_label"]).reshape(1)
elif a.task == "question_answering":
    expected["start_logits"], expected["end_logits"] = out.start_logits, out.end_logits
else:
    expected["logits"] = out.logits
expected["loss"] = out.loss.reshape(1)
out.loss.backward()
for n, t in model.named_parameters():
    expected[f"grad.{n}"] = t.grad.clone()
model.zero_grad()

if a.task == "pretraining":
    train = {"lr": 0.005, "warmup_steps": 1, "total_steps": 3, "schedule": "linear", "betas": [0.9, 0.999], "eps": 1e-8,
             "weight_decay": 0.01, "no_decay": ["bias", "LayerNorm.weight"], "max_grad_norm": 1.0, "losses": [], "lrs": []}
    params = list(model.named_parameters())
    opt = torch.optim.AdamW([{"params": [t for n, t in params if not any(x in n for x in train["no_decay"])], "weight_decay": 0.01},
                             {"params": [t for n, t in params if any(x in n for x in train["no_decay"])], "weight_decay": 0.0}],
                            lr=train["lr"], betas=tuple(train["betas"]), eps=train["eps"])
    sched = get_scheduler("linear", opt, num_warmup_steps=1, num_training_steps=3)
    for k in range(1, 4):
        train["lrs"].append(opt.param_groups[0]["lr"])
        loss = model(**batch).loss
        train["losses"].append(loss.item())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        for n, t in model.named_parameters():
            expected[f"step{k}.{n}"] = t.detach().clone()
    with open(os.path.join(a.out, "train.json"), "w") as f:
        json.dump(train, f, indent=1)
save_file({k: v.detach().contiguous().float() for k, v in expected.items()}, os.path.join(a.out, "expected.safetensors"))
print(f"{a.out}: {arch} L{a.layers} H{a.hidden} A{a.heads} I{a.intermediate} V{a.vocab}, batch {list(shape)}, seed {a.seed}")
