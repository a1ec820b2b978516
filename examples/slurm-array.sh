#!/usr/bin/env bash
# Run a probe suite as a Slurm job array, one shard per task; resubmitting resumes killed runs.
#   sbatch examples/slurm-array.sh probes/regimes.yaml
#   # when all tasks are done:
#   npx spikeprobe merge runs/regimes runs/regimes-shard-*  &&  npx spikeprobe check runs/regimes
#SBATCH --job-name=spikeprobe
#SBATCH --array=0-3
#SBATCH --cpus-per-task=2
#SBATCH --mem=4G
#SBATCH --time=04:00:00
#SBATCH --requeue
set -euo pipefail
SUITE=${1:?usage: sbatch slurm-array.sh SUITE.yaml}
N=${SLURM_ARRAY_TASK_COUNT:-4}
I=${SLURM_ARRAY_TASK_ID:?run under sbatch --array}
NAME=$(basename "$SUITE" .yaml)
npx spikeprobe run "$SUITE" --shard "$I/$N" --out "runs/$NAME-shard-$I" --resume --no-report --quiet
