#!/usr/bin/env bash
# Chapter 5's ablation: ColloDreamer (Algorithm 1 of Wan and Chen) from the state on
# cartpole-swingup, continuing chapter 4's world model and replay (runs/dreamer_state_<profile>)
# for a few episodes: the value bootstrap on (default) or off (LatCo's eq. 8), the value trained
# inside the planner (default) or after execution, the augmented objective of eq. 11; 3 seeds
# each. Every run records results/ch05_ablation_<variant>_seed<N>_<profile>.json; finished runs
# are skipped (their checkpoint is complete), interrupted ones resume.
#   bash scripts/ch05_ablation.sh [profile] [episodes] [parallel jobs] [seeds]
set -euo pipefail
profile=${1:-quick}
episodes=${2:-4}
jobs=${3:-2}
seeds=${4:-0 1 2}
cd "$(dirname "$0")/.."
if [ ! -f "runs/dreamer_state_$profile/checkpoint.pt" ]; then
  echo "train chapter 4's world model first:" >&2
  echo "  python -m wmlib train dreamer --state --profile $profile --run-dir runs/dreamer_state_$profile" >&2
  exit 1
fi
mkdir -p runs/ch05_ablation
for seed in $seeds; do
  for variant in default no-bootstrap execution augmented; do
    echo "$variant $seed"
  done
done | xargs -P "$jobs" -L 1 bash -c '
  python -m wmlib train collodreamer --state --variant "$0" --seed "$1" --profile '"$profile"' \
    --episodes '"$episodes"' --eval-every '"$episodes"' --eval-episodes 2 \
    --init-from runs/dreamer_state_'"$profile"' \
    --run-dir "runs/ch05_ablation/$0_seed$1_'"$profile"'" \
    --record "ch05_ablation_$0_seed$1_'"$profile"'" --threads 1 --no-progress \
    > "runs/ch05_ablation/$0_seed$1_'"$profile"'.out" 2>&1 && echo "done: $0 seed $1"'
