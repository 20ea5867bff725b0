#!/usr/bin/env python3
"""Bulk sender: submits N reports at once to a running Startup Reports API, then follows them all
until they finish and prints a summary table.

    API_TOKEN=sr_… python send_requests.py         # 30 reports to http://127.0.0.1:8000
    python send_requests.py -n 100 --url http://reports.internal:8000 --token sr_…

The token is an API token (the account page, or `flask --app webapp create-token USER`) or the
server's API_TOKEN.

Standard library only, so it runs from any Python 3.11 without the project's .venv.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

# Terminal states, for a server older than the "finished" field of /status.
FINISHED = {"SUCCESS", "FAILURE", "REVOKED"}

TOKEN = ""


def is_finished(status: int, body: dict) -> bool:
    """Whether waiting on this job is over: a terminal state, a job that no longer exists, or one
    that asks which company its name means (a server with API_ON_AMBIGUOUS=ask): only a person
    can answer that, at the job's choose_url."""
    if status == 404:
        return True
    if status == 200 and body.get("state") == "NEEDS_INPUT":
        return True
    return status == 200 and bool(body.get("finished", body.get("state") in FINISHED))


def call(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {TOKEN}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.load(exc)
        except ValueError:
            return exc.code, {"error": exc.reason}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, default=30, help="reports to submit (default 30)")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the API's base URL")
    parser.add_argument("--prefix", default="Startup", help="names are '<prefix> <i>'")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for all jobs")
    parser.add_argument("--token", default=os.environ.get("API_TOKEN", ""), help="API token (default: $API_TOKEN)")
    parser.add_argument("--fresh", action="store_true", help="new reports even for names already being written")
    args = parser.parse_args()
    if not args.token:
        parser.error("an API token is needed: --token sr_… or API_TOKEN=…")
    global TOKEN
    TOKEN = args.token
    base = args.url.rstrip("/")

    started = time.monotonic()
    names = [f"{args.prefix} {i + 1}" for i in range(args.count)]
    with ThreadPoolExecutor(max_workers=min(32, args.count)) as pool:
        submitted = list(
            pool.map(lambda n: call("POST", f"{base}/generate", {"startup": n, "fresh": args.fresh}), names)
        )
    jobs = {}
    for name, (status, body) in zip(names, submitted, strict=True):
        if status in (200, 202):
            jobs[body["job_id"]] = name
        else:
            print(f"{name}: not queued ({status}): {body.get('error')}", file=sys.stderr)
    print(f"queued {len(jobs)} of {args.count} in {time.monotonic() - started:.2f} s; following them…")

    final: dict[str, dict] = {}
    deadline = time.monotonic() + args.timeout
    while len(final) < len(jobs) and time.monotonic() < deadline:
        for job_id in [j for j in jobs if j not in final]:
            status, body = call("GET", f"{base}/status/{job_id}")
            if is_finished(status, body):
                final[job_id] = body if status == 200 else {"state": "GONE", "error": body.get("error", "")}
                if body.get("candidates"):
                    websites = ", ".join(c["website"] for c in body["candidates"])
                    final[job_id]["error"] = f"which company? {websites}: POST a website to {body['choose_url']}"
        done = sum(1 for b in final.values() if b["state"] == "SUCCESS")
        print(f"\r{len(final)}/{len(jobs)} finished ({done} succeeded)", end="", flush=True)
        if len(final) < len(jobs):
            time.sleep(1)
    print()

    print(f"\n{'startup':<24} {'state':<9} {'seconds':>8} {'calls':>6}  error")
    for job_id, name in jobs.items():
        body = final.get(job_id, {"state": "UNFINISHED"})
        seconds = body.get("duration_seconds")
        shown = f"{seconds:.1f}" if seconds is not None else "-"
        print(f"{name[:24]:<24} {body['state']:<9} {shown:>8} {body.get('calls', '-'):>6}  {body.get('error', '')}")
    succeeded = sum(1 for b in final.values() if b["state"] == "SUCCESS")
    print(f"\n{succeeded} succeeded, {len(final) - succeeded} did not, {len(jobs) - len(final)} unfinished")
    print(f"makespan {time.monotonic() - started:.1f} s")
    return 0 if succeeded == len(jobs) == args.count else 1


if __name__ == "__main__":
    raise SystemExit(main())
