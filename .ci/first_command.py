#!/usr/bin/env python3
"""The first command, as a new user meets it: `./run.sh` in a copy of the project with no `.venv`.

run.sh creates `.venv` with the pip that `python3 -m venv` ships (not upgraded) and installs
`requirements.txt` alone, so this proves that the lock is complete and needs no newer resolver:
a package that only the test tools bring in (as pytest brought `packaging`) fails here. Then one
report is submitted over the JSON API and must reach SUCCESS from the demo provider, and Ctrl-C
must stop every process.

Standard library only: it runs before anything is installed.

    python3 .ci/first_command.py                      # pip's usual cache
    python3 .ci/first_command.py --empty-pip-cache    # as on a machine that never saw the project
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent
TOKEN = "first-command-check-token"
# Settings of the developer's or CI's environment that would change what run.sh does.
CLEARED = ("REDIS_URL", "DATABASE_URL", "LLM_PROVIDER", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "PYTHON")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def copy_project(destination: Path) -> None:
    """The files git would check out (tracked, plus new ones not ignored): no .venv, no data."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=SOURCE,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = SOURCE / os.fsdecode(name)
        if not source.is_file():  # deleted in the work tree but still tracked
            continue
        target = destination / os.fsdecode(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def call(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


class Failed(Exception):
    pass


def check(work: Path, empty_pip_cache: bool) -> None:
    app = work / "app"
    copy_project(app)
    bind = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if k.upper() not in CLEARED and not k.upper().endswith("_API_KEY")}
    env.update(
        STARTUP_REPORTS_ENV_FILE=os.devnull,
        DATA_DIR=str(work / "data"),
        BIND=bind,
        FLOWER_PORT=str(free_port()),
        EMBEDDED_REDIS_PORT=str(free_port()),
        API_TOKEN=TOKEN,
        OFFLINE_STEP_DELAY="0.05",
    )
    if empty_pip_cache:
        env["PIP_CACHE_DIR"] = str(work / "pip-cache")
    log_path = work / "run.log"
    started = time.monotonic()
    with log_path.open("wb") as log:
        run = subprocess.Popen(["./run.sh"], cwd=app, env=env, stdout=log, stderr=subprocess.STDOUT)
    output = lambda: log_path.read_text(errors="replace")  # noqa: E731
    try:
        while "Press Ctrl-C" not in output():
            if run.poll() is not None:
                raise Failed(f"run.sh exited with status {run.returncode} before the stack was up")
            if time.monotonic() - started > 900:
                raise Failed("run.sh did not bring the stack up within 15 minutes")
            time.sleep(0.5)
        print(f"first-command: the stack is up after {time.monotonic() - started:.0f} s")

        status, answer = call("POST", f"http://{bind}/generate", {"startup": "First Command Check"})
        if status != 202:
            raise Failed(f"POST /generate answered {status} {answer}")
        job_id = answer["job_id"]
        deadline = time.monotonic() + 180
        while True:
            status, answer = call("GET", f"http://{bind}/status/{job_id}")
            state = answer.get("state")
            if state == "SUCCESS":
                break
            if status != 200 or state in ("FAILURE", "REVOKED") or time.monotonic() > deadline:
                raise Failed(f"the report did not succeed: {status} {answer}")
            time.sleep(0.5)
        if "Demo output" not in answer.get("result", ""):
            raise Failed("the report does not say that it is demo output")
        print(f"first-command: report {job_id} reached SUCCESS from the demo provider")
    finally:
        if run.poll() is None:
            run.send_signal(signal.SIGINT)
            try:
                run.wait(timeout=90)
            except subprocess.TimeoutExpired:
                run.kill()
    if "[run.sh] stopped" not in output():
        raise Failed("Ctrl-C did not stop everything")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--empty-pip-cache", action="store_true", help="install with a new, empty pip cache")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="first-command-"))
    try:
        check(work, args.empty_pip_cache)
    except Failed as failure:
        print(f"first-command: FAILED: {failure}", file=sys.stderr)
        print("---- run.sh's output ----", file=sys.stderr)
        print((work / "run.log").read_text(errors="replace")[-6000:], file=sys.stderr)
        for log in sorted((work / "data" / "logs").glob("*.log")):
            print(f"---- end of {log.name} ----", file=sys.stderr)
            print("\n".join(log.read_text(errors="replace").splitlines()[-30:]), file=sys.stderr)
        print(f"first-command: files kept in {work}", file=sys.stderr)
        return 1
    if args.keep:
        print(f"first-command: files kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print("first-command: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
