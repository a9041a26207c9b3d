#!/bin/sh
# Default-queue worker: dataset import and housekeeping (CPU only).
set -eu
cd /app
exec celery -A webapp worker -Q default --concurrency "${CELERY_CONCURRENCY:-2}" \
  --prefetch-multiplier 1 -n "default@%h" --loglevel "${LOG_LEVEL:-INFO}"
