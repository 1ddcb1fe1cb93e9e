#!/usr/bin/env bash
# Chapter 6's comparison: Dreamer, Dreamer with BIRD's FIFO replay, Soft-BIRD and BIRD from the
# state on cartpole-swingup, the same seeds and budget; every run records results/ch06_<agent>_seed<N>_<profile>.json with its
# learning curve, its imagination gap at each evaluation and a final 10-episode evaluation
# beside random actions on the same seeds. Finished runs are skipped, interrupted ones resume.
#   bash scripts/ch06_compare.sh [profile] [episodes] [parallel jobs] [seeds]
set -euo pipefail
profile=${1:-quick}
episodes=${2:-60}
jobs=${3:-2}
seeds=${4:-0 1 2}
cd "$(dirname "$0")/.."
mkdir -p runs/ch06
for seed in $seeds; do
  for agent in dreamer bird soft-bird dreamer-fifo; do
    echo "$agent $seed"
  done
done | xargs -P "$jobs" -L 1 bash -c '
  name="ch06_${0}_seed$1_'"$profile"'"
  [ -f "results/$name.json" ] && { echo "recorded: $name"; exit 0; }
  if [ "$0" = dreamer ]; then how="dreamer"; else how="bird --variant $0"; fi
  python -m wmlib train $how --state --seed "$1" --profile '"$profile"' \
    --episodes '"$episodes"' --run-dir "runs/ch06/$0_seed$1_'"$profile"'" \
    --record "$name" --final-episodes 10 --threads 1 --no-progress \
    > "runs/ch06/$name.out" 2>&1 && echo "done: $0 seed $1"'
