#!/bin/sh
# GPU worker: search, retraining and prediction. One process per GPU (pool solo, prefetch 1);
# run one container per GPU, each with its own device reservation.
set -eu
cd /app
exec celery -A webapp worker -Q gpu --pool solo --concurrency 1 --prefetch-multiplier 1 \
  -n "gpu@%h" --loglevel "${LOG_LEVEL:-INFO}"
