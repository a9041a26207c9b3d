#!/bin/sh
# Web process: apply migrations, then serve HTTP + WebSocket with uvicorn on $PORT (8000).
# uvicorn streams request bodies to the application (daphne held them in memory, issue 14).
# FORWARDED_ALLOW_IPS: the addresses of the reverse proxies whose X-Forwarded-* headers are
# trusted (default 127.0.0.1, uvicorn's own; a client reaching the published port directly
# cannot then pass itself off as another address).
# SEED_DEMO=1 also creates the demo account, project and dataset (demo / demo-voxels).
set -eu
cd /app
python -m django migrate --noinput
if [ "${SEED_DEMO:-0}" = 1 ]; then
  python -m django seed_demo
fi
exec uvicorn --host 0.0.0.0 --port "${PORT:-8000}" --proxy-headers \
  --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-127.0.0.1}" --lifespan off webapp.asgi:application
