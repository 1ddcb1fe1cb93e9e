#!/usr/bin/env bash
# Chapter 4's ablation: Dreamer from the state on cartpole-swingup, Gaussian or categorical
# latents, KL balancing on or off, 3 seeds each; every run records
# results/ch04_ablation_<variant>_seed<N>_<profile>.json. Runs that finished are skipped
# (their checkpoint is complete), interrupted ones resume.
#   bash scripts/ch04_ablation.sh [profile] [episodes] [parallel jobs] [seeds]
set -euo pipefail
profile=${1:-quick}
episodes=${2:-30}
jobs=${3:-2}
seeds=${4:-0 1 2}
cd "$(dirname "$0")/.."
for seed in $seeds; do
  for variant in gaussian gaussian+balance categorical categorical+balance; do
    echo "$variant $seed"
  done
done | xargs -P "$jobs" -L 1 bash -c '
  python -m wmlib train dreamer --state --ablation "$0" --seed "$1" --profile '"$profile"' \
    --episodes '"$episodes"' --run-dir "runs/ch04_ablation/$0_seed$1_'"$profile"'" \
    --record "ch04_ablation_$0_seed$1_'"$profile"'" --threads 1 --no-progress \
    > "runs/ch04_ablation_$0_seed$1_'"$profile"'.out" 2>&1 && echo "done: $0 seed $1"'
