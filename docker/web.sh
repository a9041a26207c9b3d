#!/bin/sh
# Web process: apply migrations, then serve HTTP + WebSocket with daphne on $PORT (8000).
# SEED_DEMO=1 also creates the demo account, project and dataset (demo / demo-voxels).
set -eu
cd /app
python -m django migrate --noinput
if [ "${SEED_DEMO:-0}" = 1 ]; then
  python -m django seed_demo
fi
exec daphne --bind 0.0.0.0 --port "${PORT:-8000}" --proxy-headers webapp.asgi:application
