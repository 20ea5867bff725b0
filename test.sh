#!/usr/bin/env bash
# The one command for the tests: creates or reuses .venv, installs what is missing, runs ruff and
# pytest. Arguments go to pytest (e.g. ./test.sh -k status -x).
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x .venv/bin/python ] || [ ! -x .venv/bin/pip ]; then
    rm -rf .venv
    python3 -m venv .venv || { rm -rf .venv; echo "test.sh: install python3-venv" >&2; exit 1; }
fi
PY=.venv/bin/python
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat .venv/.test-requirements 2>/dev/null || true)" != "$want" ]; then
    # requirements-dev.txt pins everything: the product's packages (as requirements.txt), the test
    # tools, and pip itself.
    "$PY" -m pip install --quiet -r requirements-dev.txt
    "$PY" -m pip check >/dev/null || { "$PY" -m pip check; exit 1; }
    echo "$want" > .venv/.test-requirements
fi

# The browser tests drive Debian's Chromium (Playwright cannot download its own browser here).
if [ -z "${CHROMIUM_PATH:-}" ] && ! command -v chromium >/dev/null 2>&1; then
    echo "test.sh: installing Chromium for the browser tests (apt-get install chromium)"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

"$PY" -m ruff check .
"$PY" -m ruff format --check .
# Three pytest workers (pytest-xdist) on the two cores the suite is sized for: most of the slow
# tests wait on processes they started (a worker, gunicorn, Chromium), so three run at once in
# about half the time of one. TEST_WORKERS=0 runs them in this process, one after another.
exec "$PY" -m pytest -n "${TEST_WORKERS:-3}" "$@"
