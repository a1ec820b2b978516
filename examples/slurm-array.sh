#!/usr/bin/env bash
# Run a probe suite as a Slurm job array, one shard per task; a requeued or resubmitted task resumes
# its killed run from the last completed epoch (--resume).
#   sbatch examples/slurm-array.sh probes/fer-like.yaml
#   # when all tasks are done:
#   npx spikeprobe merge runs/fer-like runs/fer-like-shard-*  &&  npx spikeprobe check runs/fer-like
# The array size is the shard count (--array=0-3: 4 shards); override resources on the command line
# (sbatch --array=0-7 --cpus-per-task=1 --mem=2G ...). SPIKEPROBE: the command to run (default
# npx spikeprobe; e.g. "node /path/to/spikeprobe/dist/cli/main.js" in a checkout).
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
${SPIKEPROBE:-npx spikeprobe} run "$SUITE" --shard "$I/$N" --out "runs/$NAME-shard-$I" --resume --no-report --quiet
