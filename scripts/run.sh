#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the main job: train an agent to solve CartPole-v1 on
# this machine through the real daemons under supervisord (metrics collector, shards,
# broker, worker, environment clients: `relaax-zmq run all`) with live progress, until the
# mean reward of the last 100 episodes reaches 475 (or 15 minutes pass), then print where
# the checkpoints, the TensorBoard logs and the learning-curve picture are.
# Each run trains from scratch (--fresh: the earlier run's checkpoint and metrics folders
# are renamed, not deleted). Pass another app file (and target reward) to train it instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
relaax-zmq run all --fresh -c "${1:-conf/cartpole.yaml}" --target-reward "${2:-475}" --time-limit 900
