// The files of a trainer folder besides the model and the data (server/inference/trainer-export.ts writes
// them): train.py, the Hugging Face Trainer script that continues the run; requirements.txt, the versions
// it was tested with; README.md, how to run it on one GPU, N GPUs, a cluster, and how to bring it back.
// train.py is kept here as text (String.raw: no backticks or dollar-brace in it), so that the bundles and
// the VSIX carry it without a file of their own. It is run by scripts/test-trainer-handoff.sh.
import type { TrainerRecipe } from "./trainer-export.js";

/** The versions train.py was tested with (torch 2.13.0+cpu, Python 3.11; 2 CPU processes over gloo). */
export const REQUIREMENTS = `# Tested with these versions (torch 2.13.0+cpu, Python 3.11, torchrun with 2 CPU processes over gloo).
# For GPUs install the CUDA build of torch 2.13 (https://pytorch.org/get-started/locally/); pip keeps it.
torch==2.13.0
transformers==5.18.0
accelerate==1.15.0
datasets==5.0.1
safetensors==0.8.0
numpy
`;

/** README.md of a trainer folder: what is in it, how to run it, what carries over, how to bring it back. */
export function trainerReadme(r: TrainerRecipe, folder: string): string {
  const pretraining = r.kind === "pretraining";
  const what = pretraining ? `pretraining run (${r.architecture}${r.nsp ? ", masked LM + next-sentence prediction" : ", masked LM"})` : `${r.task} fine-tuning run (${r.architecture}, labels ${r.labels?.join(", ")})`;
  const s = r.schedule;
  const data = pretraining
    ? `the training examples of the run's epoch ${r.data.epoch ?? 0} (${r.data.train_rows} rows: \`input_ids\`, \`token_type_ids\`${r.nsp ? ", `next_sentence_label`" : ""}, unmasked), made from \`${r.corpus}\` by BERT Studio's own pipeline: the same documents, held-out split, segments${r.nsp ? " and sentence pairs" : ""}`
    : `the labelled rows of \`${r.task_data}\` (${r.data.train_rows} rows: \`text\`${r.task === "pair" ? ", `text_pair`" : ""}, \`label\` = the id of the label in config.json's id2label, \`input_ids\`, \`token_type_ids\` as the run encoded them, at most ${r.max_length} tokens)`;
  const lines = [
    `# Continue \`${r.run}\` with PyTorch`,
    "",
    `A ${what} at step ${r.step}, written by \`bert-studio export --format trainer\` for Hugging Face's \`Trainer\`: one`,
    "GPU, several, or a cluster, through `torchrun` (DDP) or `accelerate launch` (DDP, DeepSpeed, FSDP).",
    "",
    "| file | what |",
    "|---|---|",
    "| `model/` | the run's model as a Hugging Face folder (config.json, model.safetensors, tokenizer) |",
    "| `optimizer.safetensors` | the run's Adam moments (`m.NAME`, `v.NAME`), put into torch's AdamW by train.py |",
    `| \`data/train.jsonl\` | ${data} |`,
    `| \`data/held_out.jsonl\` | ${pretraining ? `the held-out documents' evaluation ${r.nsp ? "sentence pairs" : "segments"} (${r.data.held_out_rows} rows)` : `the run's held-out rows (${r.data.held_out_rows})`} |`,
    "| `recipe.json` | what the run trained with and where it stands; train.py reads it |",
    "| `train.py` | the Trainer script; `python train.py --help` lists its flags |",
    "",
    "The data files are JSON Lines: `datasets.load_dataset(\"json\", data_files=\"data/train.jsonl\")` loads them.",
    ...(r.notes.length ? ["", "Notes from the export:", "", ...r.notes.map((n) => `- ${n}`)] : []),
    "",
    "## Install",
    "",
    "```sh",
    "python -m venv .venv && . .venv/bin/activate",
    "pip install -r requirements.txt   # for GPUs, first the CUDA build of torch (pytorch.org)",
    "```",
    "",
    "## One GPU (or the CPU)",
    "",
    "```sh",
    `python train.py                       # ${r.default_max_steps} steps: ${r.finished ? "as many again as the run had" : "the rest of the run's schedule"}`,
    "python train.py --max_steps 20000 --per_device_train_batch_size 64 --learning_rate 1e-3",
    "```",
    "",
    `Flags: \`--max_steps\` (steps here), \`--per_device_train_batch_size\` (default: the run's ${r.batch} examples per step split over the`,
    "processes), `--gradient_accumulation_steps`, `--learning_rate` (the schedule's peak), `--total_steps` (the schedule's length,",
    "the run's steps included), `--output_dir` (default `output/`), `--bf16`, `--fresh_optimizer`, `--resume_from_checkpoint last`.",
    "",
    "## N GPUs on one machine",
    "",
    "```sh",
    "torchrun --nproc_per_node 8 train.py --max_steps 100000",
    "accelerate launch --multi_gpu --num_processes 8 train.py --max_steps 100000   # or after `accelerate config` (DeepSpeed, FSDP)",
    "```",
    "",
    `Without \`--per_device_train_batch_size\` the run's ${r.batch} examples per step are split over the processes, so the`,
    "curve continues as it was; a larger batch wants a larger `--learning_rate` (and trains faster per step).",
    "",
    "## A cluster (SLURM)",
    "",
    "```sh",
    "#!/bin/bash",
    "#SBATCH --job-name=bert",
    "#SBATCH --nodes=4",
    "#SBATCH --ntasks-per-node=1",
    "#SBATCH --gpus-per-node=8",
    "#SBATCH --cpus-per-task=32",
    "#SBATCH --time=48:00:00",
    "head=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)",
    "srun torchrun --nnodes \"$SLURM_NNODES\" --nproc_per_node 8 --rdzv_id \"$SLURM_JOB_ID\" --rdzv_backend c10d \\",
    "  --rdzv_endpoint \"$head:29500\" train.py --max_steps 100000 --resume_from_checkpoint last",
    "```",
    "",
    `This folder (\`${folder}\`) must be on a file system every node sees. \`--resume_from_checkpoint last\` makes a job that`,
    "was stopped (time limit, preemption) continue from its last `output/checkpoint-N` (its own optimizer and schedule state).",
    "",
    "## What continues, and what does not",
    "",
    "- **Weights**: all of them (`model/`).",
    `- **Adam moments and step**: \`optimizer.safetensors\` becomes torch's AdamW state (\`exp_avg\`, \`exp_avg_sq\`, \`step\` ${r.step}), so the`,
    "  bias correction and the per-parameter step sizes go on as in the run. Not with DeepSpeed or FSDP (sharded",
    "  parameters): there, and with `--fresh_optimizer`, AdamW starts from zero moments.",
    `- **Optimizer**: AdamW, betas (${r.adamw.beta1}, ${r.adamw.beta2}), eps ${r.adamw.eps}, weight decay ${r.adamw.weight_decay} except on parameters whose name contains`,
    `  ${r.adamw.no_decay.map((n) => `\`${n}\``).join(" or ")}, gradients clipped to a global norm of ${r.adamw.max_grad_norm}.`,
    `- **Learning rate**: the run's ${s.name} schedule, peak ${s.lr}, ${s.warmup_steps} warmup steps over ${s.total_steps} steps, continued at`,
    `  step ${r.step} (not from warmup again). When \`--max_steps\` goes past its end, the schedule is stretched to end with`,
    "  this run (`--total_steps`), as `bert-studio pretrain --resume --steps` stretches it; the warmup stays the run's.",
    ...(pretraining
      ? [
          `- **Masking**: BERT Studio's, per batch: ${Math.round(r.masking!.rate * 100)}% of the tokens predicted (at most ${r.masking!.max_predictions} per sequence), 80% [MASK],`,
          `  10% a random token, 10% kept${r.masking!.whole_word ? ", all pieces of a word together" : ""}; fresh masks every time a sequence is seen. Held-out`,
          `  sequences are scored as BERT Studio scores them (${Math.round(r.eval_masking!.rate * 100)}% predicted, every one [MASK]ed, fixed masks): \`eval_loss\``,
          "  reads as the run's `eval_mlm_loss`" + (r.nsp ? " plus its NSP loss." : "."),
          `- **Data**: the same examples, in the Trainer's own shuffled order, over and over (one epoch's segments; the run`,
          "  made new segments each epoch). The batches are not the ones the run would have drawn next.",
        ]
      : [`- **Data**: the same training and held-out rows; \`eval_accuracy\` and \`eval_macro_f1\` are scored on the held-out rows.`]),
    "- **Not carried**: dropout's random state and the exact batch order.",
    "",
    "## Bring it back",
    "",
    "```sh",
    "bert-studio import output --out runs/continued      # checks it by loading it, then copies the model files",
    pretraining ? "bert-studio fill-mask --model runs/continued \"the [MASK] of the city\"" : "bert-studio predict --model runs/continued \"a text to classify\"",
    pretraining ? "bert-studio pretrain CORPUS --from runs/continued --out runs/more   # fresh Adam moments, step 0, --lr 1e-4 unless given" : "bert-studio evaluate --model runs/continued --data FILE",
    "```",
    "",
    "`output/` is an HF folder (config.json, model.safetensors, tokenizer.json, tokenizer_config.json) once the script ends;",
    "each `output/checkpoint-N` is one too, while it trains. What comes back: the weights, the config (architecture, labels)",
    "and the tokenizer. What does not: the Adam moments and the step (torch's `optimizer.pt` in a checkpoint is a pickle,",
    "which BERT Studio does not read), so training further in BERT Studio is `pretrain --from` (or `finetune --model`), not",
    "`--resume`. In the editor: **BERT: Import Hugging Face Model** on `output/`. `output/metrics.jsonl` holds the",
    "continued curve at the run's global steps, as the run's metrics.jsonl writes it.",
    "",
  ];
  return lines.join("\n");
}

/** The Trainer script that continues the run (see its header). */
export const TRAIN_PY = String.raw`#!/usr/bin/env python3
# Continues a BERT Studio run with Hugging Face's Trainer, on one machine or many:
#   python train.py                                  one process (a GPU if there is one, else the CPU)
#   torchrun --nproc_per_node N train.py             N processes (GPUs) on this machine, DDP
#   torchrun --nnodes M --nproc_per_node N ... train.py, or accelerate launch train.py (DeepSpeed, FSDP)
# Written by 'bert-studio export RUN --format trainer'; recipe.json beside it says what the run trained with
# (and README.md what carries over). The model starts from model/ (the run's weights), AdamW from the run's
# Adam moments (optimizer.safetensors) at the run's step, and the learning rate follows the run's schedule
# from the step it reached. Masking is BERT Studio's (server/pretraining/pretraining-data.ts maskTokens):
# drawn per batch, 'rate' of the tokens predicted (at most max_predictions per sequence), 80% [MASK],
# 10% a random token, 10% kept, whole words together when the run did that. The output is an HF folder
# (output/: config.json, model.safetensors, the tokenizer; checkpoint-N/ folders while it trains), which
# 'bert-studio import output --out RUN' brings back.
import argparse
import json
import math
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def read_recipe():
    with open(os.path.join(HERE, "recipe.json"), encoding="utf-8") as f:
        return json.load(f)


def world_size():
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank():
    return int(os.environ.get("RANK", "0"))


def say(message):
    if rank() == 0:
        print(f"[bert-studio] {message}", flush=True)


def parse_args(recipe):
    batch = recipe["batch"]
    p = argparse.ArgumentParser(description="Continue the BERT Studio run " + recipe["run"] + " with Hugging Face's Trainer.")
    p.add_argument("--max_steps", type=int, default=recipe["default_max_steps"],
                   help="optimizer steps to train here (default %(default)s: " + ("as many again as the run had)" if recipe["finished"] else "the rest of the run's schedule)"))
    p.add_argument("--per_device_train_batch_size", type=int, default=None,
                   help=f"examples per process and step (default: the run's {batch} split over the processes)")
    p.add_argument("--gradient_accumulation_steps", type=int, default=1)
    p.add_argument("--learning_rate", type=float, default=recipe["schedule"]["lr"],
                   help="peak learning rate of the schedule (default: the run's, %(default)s)")
    p.add_argument("--total_steps", type=int, default=None,
                   help="length of the whole schedule, the run's steps included (default: the run's planned steps, or step + max_steps when that is more)")
    p.add_argument("--output_dir", default=os.path.join(HERE, "output"))
    p.add_argument("--logging_steps", type=int, default=recipe["log_every"])
    p.add_argument("--eval_steps", type=int, default=recipe["eval_every"])
    p.add_argument("--save_steps", type=int, default=recipe["checkpoint_every"])
    p.add_argument("--per_device_eval_batch_size", type=int, default=None)
    p.add_argument("--seed", type=int, default=recipe["seed"])
    p.add_argument("--fresh_optimizer", action="store_true", help="start AdamW's moments from zero instead of the run's")
    p.add_argument("--resume_from_checkpoint", default=None, help="continue an interrupted run of this script: a checkpoint-N folder of output_dir, or 'last'")
    p.add_argument("--bf16", action="store_true", help="bfloat16 mixed precision (GPUs that have it)")
    p.add_argument("--dataloader_num_workers", type=int, default=0)
    p.add_argument("--report_to", default="none", help="tensorboard, wandb, ... (default none)")
    p.add_argument("--use_cpu", action="store_true", help="train on the CPU even where there is a GPU")
    p.add_argument("--eval_only", action="store_true", help="score the run's model (model/) on the held-out rows as this script scores them, and stop")
    return p.parse_args()


# --- the learning-rate schedule: BERT Studio's server/training/schedules.ts (HF's get_scheduler), by global step

def multiplier(schedule, step):
    name = schedule["name"]
    warmup = schedule["warmup_steps"]
    total = schedule["total_steps"]
    if step < warmup and name != "constant":
        return step / max(1, warmup)
    if name in ("constant", "constant_with_warmup"):
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    if name == "linear":
        return max(0.0, (total - step) / max(1, total - warmup))
    if name == "cosine":
        cycles = schedule.get("num_cycles", 0.5)
        return max(0.0, 0.5 * (1 + math.cos(math.pi * cycles * 2 * progress)))
    if name == "cosine_with_restarts":
        if progress >= 1:
            return 0.0
        cycles = schedule.get("num_cycles", 1)
        return max(0.0, 0.5 * (1 + math.cos(math.pi * ((cycles * progress) % 1))))
    if name == "polynomial":
        lr, lr_end, power = schedule["lr"], schedule.get("lr_end", 1e-7), schedule.get("power", 1)
        if step > total:
            return lr_end / lr
        return ((lr - lr_end) * (1 - (step - warmup) / (total - warmup)) ** power + lr_end) / lr
    raise ValueError(f"unknown schedule {name}")


# --- masking: server/pretraining/pretraining-data.ts maskTokens, per sequence

class Masker:
    def __init__(self, special, continuation, rate, max_predictions, whole_word, all_mask):
        self.special = special
        self.skip = {special["cls"], special["sep"], special["pad"]}
        self.continuation = continuation
        self.rate = rate
        self.max_predictions = max_predictions
        self.whole_word = whole_word
        self.all_mask = all_mask

    def __call__(self, ids, rng):
        candidates = []
        for i, t in enumerate(ids):
            if t in self.skip:
                continue
            if self.whole_word and candidates and t in self.continuation:
                candidates[-1].append(i)
            else:
                candidates.append([i])
        rng.shuffle(candidates)
        out = list(ids)
        labels = [-100] * len(ids)
        wanted = min(self.max_predictions, max(1, math.floor(len(ids) * self.rate + 0.5)))  # JavaScript's Math.round
        picked = 0
        for group in candidates:
            if picked >= wanted:
                break
            if picked + len(group) > wanted:
                continue
            for i in group:
                picked += 1
                labels[i] = ids[i]
                if self.all_mask or rng.random() < 0.8:
                    out[i] = self.special["mask"]
                elif rng.random() >= 0.5:
                    out[i] = rng.randrange(self.special["vocab_size"])
        return out, labels


def pad(rows, key, value, length):
    return [r[key] + [value] * (length - len(r[key])) for r in rows]


class PretrainingCollator:
    """Pads a batch and masks it: training batches from a per-process random stream (fresh masks every time a
    sequence is seen), held-out ones from the sequence itself (the same masks at every evaluation)."""

    def __init__(self, masker, special, seed, nsp, training):
        self.masker = masker
        self.special = special
        self.seed = seed
        self.nsp = nsp
        self.training = training
        self.streams = {}

    def rng_for(self, ids):
        if not self.training:
            return random.Random(hash(tuple(ids)) ^ self.seed)
        import torch.utils.data
        worker = torch.utils.data.get_worker_info()
        key = worker.id if worker else -1
        if key not in self.streams:
            self.streams[key] = random.Random(self.seed * 1000003 + rank() * 7919 + key + 1)
        return self.streams[key]

    def __call__(self, rows):
        import torch
        masked = [self.masker(r["input_ids"], self.rng_for(r["input_ids"])) for r in rows]
        length = max(len(ids) for ids, _ in masked)
        batch = {
            "input_ids": torch.tensor([ids + [self.special["pad"]] * (length - len(ids)) for ids, _ in masked]),
            "token_type_ids": torch.tensor(pad(rows, "token_type_ids", 0, length)),
            "attention_mask": torch.tensor([[1] * len(ids) + [0] * (length - len(ids)) for ids, _ in masked]),
            "labels": torch.tensor([labels + [-100] * (length - len(labels)) for _, labels in masked]),
        }
        if self.nsp:
            batch["next_sentence_label"] = torch.tensor([r["next_sentence_label"] for r in rows])
        return batch


class ClassificationCollator:
    def __init__(self, pad_id):
        self.pad_id = pad_id

    def __call__(self, rows):
        import torch
        length = max(len(r["input_ids"]) for r in rows)
        return {
            "input_ids": torch.tensor(pad(rows, "input_ids", self.pad_id, length)),
            "token_type_ids": torch.tensor(pad(rows, "token_type_ids", 0, length)),
            "attention_mask": torch.tensor([[1] * len(r["input_ids"]) + [0] * (length - len(r["input_ids"])) for r in rows]),
            "labels": torch.tensor([r["label"] for r in rows]),
        }


def classification_metrics(prediction):
    import numpy as np
    logits, labels = prediction
    predicted = np.argmax(logits, axis=-1)
    scores = {"accuracy": float((predicted == labels).mean())}
    f1s = []
    for label in np.unique(labels):
        tp = float(((predicted == label) & (labels == label)).sum())
        fp = float(((predicted == label) & (labels != label)).sum())
        fn = float(((predicted != label) & (labels == label)).sum())
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    scores["macro_f1"] = float(np.mean(f1s))
    return scores


# --- AdamW as BERT Studio's (server/training/train-graph.ts): torch's AdamW, no decay on biases and LayerNorm weights

def no_decay(name, recipe):
    return any(s in name for s in recipe["adamw"]["no_decay"])


def load_moments(optimizer, named, recipe, file):
    """Puts the run's Adam moments (optimizer.safetensors: m.NAME and v.NAME, as torch's exp_avg and exp_avg_sq)
    and its step (bias correction) into torch's AdamW state. Refused, with the reason, when the names or
    shapes differ (a sharded model: FSDP or DeepSpeed)."""
    import torch
    from safetensors.torch import load_file
    moments = load_file(file)
    missing = [n for n, p in named if f"m.{n}" not in moments or moments[f"m.{n}"].shape != p.shape]
    if missing:
        return f"AdamW starts from zero moments: {len(missing)} parameters have no moments of their shape in {os.path.basename(file)} (first: {missing[0]})"
    for n, p in named:
        optimizer.state[p] = {
            "step": torch.tensor(float(recipe["step"]), dtype=torch.float32),
            "exp_avg": moments[f"m.{n}"].to(device=p.device, dtype=p.dtype).clone(),
            "exp_avg_sq": moments[f"v.{n}"].to(device=p.device, dtype=p.dtype).clone(),
        }
    return f"AdamW continues from the run's moments at step {recipe['step']} ({len(named)} parameters)"


def continuing_trainer(recipe, options, eval_collator):
    import torch
    from transformers import Trainer

    class ContinuingTrainer(Trainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            # BERT's losses are means over their own batch (they take no num_items_in_batch): the Trainer must
            # divide by the accumulation steps and leave the per-process mean alone, which DDP then averages.
            # Otherwise it scales the loss (and the gradients) by the number of processes.
            self.model_accepts_loss_kwargs = False

        def create_optimizer(self, model=None):
            if self.optimizer is None:
                m = self.model if model is None else model
                named = [(n, p) for n, p in m.named_parameters() if p.requires_grad]
                adamw = recipe["adamw"]
                groups = [
                    {"params": [p for n, p in named if not no_decay(n, recipe)], "weight_decay": adamw["weight_decay"]},
                    {"params": [p for n, p in named if no_decay(n, recipe)], "weight_decay": 0.0},
                ]
                self.optimizer = torch.optim.AdamW(groups, lr=options.learning_rate, betas=(adamw["beta1"], adamw["beta2"]), eps=adamw["eps"])
                if options.fresh_optimizer:
                    say("AdamW starts from zero moments (--fresh_optimizer)")
                elif self.is_deepspeed_enabled or self.is_fsdp_enabled:
                    say("AdamW starts from zero moments: the run's moments are loaded only into an unsharded model (not DeepSpeed or FSDP)")
                else:
                    say(load_moments(self.optimizer, named, recipe, os.path.join(HERE, recipe["moments"])))
            return self.optimizer

        def get_eval_dataloader(self, eval_dataset=None):
            # Held-out batches get the evaluation masking (fixed masks, every predicted token [MASK]ed).
            saved, self.data_collator = self.data_collator, eval_collator
            try:
                return super().get_eval_dataloader(eval_dataset)
            finally:
                self.data_collator = saved

        def _load_optimizer_and_scheduler(self, checkpoint):
            # A resumed job takes its checkpoint's optimizer and scheduler state, whose learning rate is the one
            # of the schedule it was started with: set it from this command's schedule (the same, unless
            # --max_steps, --total_steps or --learning_rate changed).
            super()._load_optimizer_and_scheduler(checkpoint)
            if checkpoint and self.lr_scheduler is not None:
                groups = self.optimizer.param_groups
                self.lr_scheduler.base_lrs = [options.learning_rate] * len(groups)
                for group in groups:
                    group["lr"] = options.learning_rate * multiplier(options.schedule, recipe["step"] + self.lr_scheduler.last_epoch)
                self.lr_scheduler._last_lr = [group["lr"] for group in groups]  # what the Trainer logs

        def create_scheduler(self, num_training_steps, optimizer=None):
            if self.lr_scheduler is None:
                start = recipe["step"]
                schedule = options.schedule
                self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer or self.optimizer, lambda k: multiplier(schedule, start + k))
                self._created_lr_scheduler = True
            return self.lr_scheduler

    return ContinuingTrainer


def metrics_log(recipe, output_dir):
    """output/metrics.jsonl: the rows as BERT Studio's metrics.jsonl writes them, at the run's global steps."""
    from transformers import TrainerCallback

    class MetricsLog(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            row = {"step": recipe["step"] + state.global_step}
            for key, value in logs.items():
                if isinstance(value, (int, float)):
                    row["lr" if key == "learning_rate" else key] = value
            os.makedirs(output_dir, exist_ok=True)
            with open(os.path.join(output_dir, "metrics.jsonl"), "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")

    return MetricsLog()


def main():
    recipe = read_recipe()
    options = parse_args(recipe)
    import torch
    import transformers
    from datasets import load_dataset
    from transformers import AutoTokenizer, TrainingArguments

    model_dir = os.path.join(HERE, "model")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    start = recipe["step"]
    options.schedule = dict(recipe["schedule"], lr=options.learning_rate)
    options.schedule["total_steps"] = options.total_steps or max(recipe["schedule"]["total_steps"], start + options.max_steps)
    if options.per_device_train_batch_size is None:
        options.per_device_train_batch_size = max(1, round(recipe["batch"] / (world_size() * options.gradient_accumulation_steps)))
    per_step = options.per_device_train_batch_size * world_size() * options.gradient_accumulation_steps
    if not options.eval_only:
        say(f"continuing {recipe['run']} ({recipe['architecture']}) at step {start}: {options.max_steps} steps of {per_step} examples "
            f"({world_size()} process(es) x {options.per_device_train_batch_size} x {options.gradient_accumulation_steps}; the run's were {recipe['batch']}), "
            f"learning rate {options.learning_rate:.3g} x {multiplier(options.schedule, start):.4f} at step {start} ({options.schedule['name']} schedule over {options.schedule['total_steps']} steps, {options.schedule['warmup_steps']} of warmup)")

    if recipe["kind"] == "pretraining":
        from transformers import BertForMaskedLM, BertForPreTraining
        model = (BertForPreTraining if recipe["nsp"] else BertForMaskedLM).from_pretrained(model_dir)
        special = recipe["special_ids"]
        continuation = {i for t, i in tokenizer.get_vocab().items() if t.startswith("##")}
        m, e = recipe["masking"], recipe["eval_masking"]
        train_collator = PretrainingCollator(Masker(special, continuation, m["rate"], m["max_predictions"], m["whole_word"], False), special, options.seed, recipe["nsp"], True)
        eval_collator = PretrainingCollator(Masker(special, continuation, e["rate"], e["max_predictions"], False, True), special, options.seed + 2, recipe["nsp"], False)
        metrics = None
    else:
        from transformers import BertForSequenceClassification
        model = BertForSequenceClassification.from_pretrained(model_dir)
        train_collator = eval_collator = ClassificationCollator(tokenizer.pad_token_id)
        metrics = classification_metrics

    data = recipe["data"]
    files = {"train": os.path.join(HERE, data["train"])}
    if data["held_out_rows"] > 0:
        files["held_out"] = os.path.join(HERE, data["held_out"])
    args = TrainingArguments(
        output_dir=options.output_dir,
        max_steps=options.max_steps,
        per_device_train_batch_size=options.per_device_train_batch_size,
        per_device_eval_batch_size=options.per_device_eval_batch_size or options.per_device_train_batch_size,
        gradient_accumulation_steps=options.gradient_accumulation_steps,
        learning_rate=options.learning_rate,
        max_grad_norm=recipe["adamw"]["max_grad_norm"],
        logging_steps=options.logging_steps,
        eval_strategy="steps" if "held_out" in files else "no",
        eval_steps=options.eval_steps,
        save_strategy="steps",
        save_steps=options.save_steps,
        save_total_limit=3,
        seed=options.seed,
        bf16=options.bf16,
        dataloader_num_workers=options.dataloader_num_workers,
        report_to=options.report_to,
        # Several processes without CUDA (torchrun on CPUs) train as one only with use_cpu: Accelerate then
        # joins them over gloo; otherwise each would train a model of its own.
        use_cpu=options.use_cpu or (world_size() > 1 and not torch.cuda.is_available()),
    )
    with args.main_process_first():
        datasets = load_dataset("json", data_files=files, cache_dir=os.path.join(HERE, ".cache", "datasets"))

    trainer = continuing_trainer(recipe, options, eval_collator)(
        model=model,
        args=args,
        train_dataset=datasets["train"],
        eval_dataset=datasets.get("held_out"),
        data_collator=train_collator,
        processing_class=tokenizer,
        compute_metrics=metrics,
        callbacks=[metrics_log(recipe, options.output_dir)],
    )
    if options.eval_only:
        if "held_out" not in files:
            say("no held-out rows to evaluate on")
            return 1
        scores = trainer.evaluate()
        figures = {k: v for k, v in scores.items() if k.startswith("eval_") and not any(w in k for w in ("runtime", "per_second", "preparation"))}
        say(f"model/ at step {start}: " + ", ".join(f"{k} {v:.4f}" for k, v in figures.items()))
        return 0
    resume = options.resume_from_checkpoint
    if resume == "last":
        # The newest output_dir/checkpoint-N, if there is one: a job that is started again (a SLURM requeue) continues.
        from transformers.trainer_utils import get_last_checkpoint
        resume = get_last_checkpoint(options.output_dir) if os.path.isdir(options.output_dir) else None
        say(f"resuming from {resume}" if resume else f"no checkpoint in {options.output_dir} yet: starting at the run's step")
    trainer.train(resume_from_checkpoint=resume)  # evaluates and saves at its last step too
    trainer.save_model(options.output_dir)
    say(f"done at step {start + trainer.state.global_step}: {options.output_dir} is an HF folder; bring it back with: bert-studio import {options.output_dir} --out RUN")
    return 0


if __name__ == "__main__":
    sys.exit(main())
`;
