#!/usr/bin/env bash
# The recipe in PyTorch + HF transformers, side by side with ours (docs/RECIPES.md, "Against HF"): for each
# seed, `bert-studio pretrain` trains with the engine's default recipe for STEPS steps, bench/dump-batches.ts
# writes the very batches and initial weights that run used, bench/hf_quality.py trains HF's
# BertForMaskedLM on them with the same optimizer and schedule, and both models are scored on the same
# held-out segments (all-[MASK], 15%). A gain of the recipe is real when ours stays within HF's
# seed-to-seed spread.
#   bench/hf-recipe-compare.sh CORPUS HELD_OUT VOCAB OUT [STEPS] [SEEDS...]
#   bench/hf-recipe-compare.sh /tmp/wt2-train ../shared/data/wikitext-2/wiki.valid.tokens runs/study/vocab.txt runs/hf-compare 800 42 1 2
# Needs a Python with torch, transformers and safetensors: PYTHON (default .venv/bin/python).
set -euo pipefail
corpus=$1 held=$2 vocab=$3 out=$4 steps=${5:-800}
shift $(( $# < 5 ? $# : 5 ))
seeds=("${@:-42}")
[ ${#seeds[@]} -gt 0 ] || seeds=(42)
python=${PYTHON:-.venv/bin/python}
mkdir -p "$out"
warmup=$(node -e "console.log(Math.round($steps * 0.06))")
# The recipe's flags, spelled out (the engine's defaults, common/settings.ts), for both sides.
lr=2e-3
recipe=(--dropout 0 --mask-rate 0.3 --init-std 0.05 --position-init sinusoidal --no-nsp --lr "$lr")
dump=(--mask-rate 0.3 --position-init sinusoidal --dropout 0 --init-std 0.05 --no-nsp)
hf=(--lr "$lr" --mlm-only)
for seed in "${seeds[@]}"; do
  run="$out/ours-$seed"
  rm -rf "$run" "$out/init-$seed"
  node bin/bert-studio.js pretrain "$corpus" --out "$run" --vocab "$vocab" --steps "$steps" --seed "$seed" "${recipe[@]}" 2>"$out/ours-$seed.log"
  npx tsx bench/dump-batches.ts "$corpus" "$held" "$vocab" "$out/batches-$seed.safetensors" --steps "$steps" --seed "$seed" \
    --batch 32 --seq 128 --init "$out/init-$seed" --preset tiny "${dump[@]}"
  "$python" bench/hf_quality.py "$out/batches-$seed.safetensors" "$run" --init "$out/init-$seed" "${hf[@]}" --warmup "$warmup" --seed "$seed" --log-every 200 \
    | tee "$out/hf-$seed.txt" | tail -1
done
