#!/bin/sh
# Celery beat (exactly one per installation): the periodic queue sweep, which sends again the
# jobs that the database holds as queued but whose message the broker lost, and the removal of
# expired resumable uploads. Its schedule state lives in the var folder.
set -eu
cd /app
mkdir -p "${VOXELSEARCH_VAR_DIR:-/data/var}"
exec celery -A webapp beat --schedule "${VOXELSEARCH_VAR_DIR:-/data/var}/celerybeat-schedule" \
  --loglevel "${LOG_LEVEL:-INFO}"
