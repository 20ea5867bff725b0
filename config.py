"""Settings for every process of Startup Reports, read from the environment and an optional `.env`.

One typed object, built explicitly where it is needed (`Settings()`), never at import time, so that
tests can hand each component the settings they want. Defaults make `./run.sh` work with nothing set.

`python -m config NAME …` prints settings, one per line (the shell scripts read `BIND`,
`FLOWER_PORT`, … this way, so that `.env` is honoured by them too).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent
# `./run.sh` writes the address of the Redis it embedded to this file in the data directory while
# it runs, so that commands started from another shell (`celery -A worker.celery_app inspect ping`)
# find the same Redis.
EMBEDDED_REDIS_URL_FILE = "redis.url"
FALLBACK_REDIS_URL = "redis://127.0.0.1:6379"
# The shortest password an account may have: webapp.accounts refuses shorter ones, and the
# settings refuse a shorter ADMIN_PASSWORD, which would otherwise create no admin at all.
MIN_PASSWORD_CHARS = 10

# List prices in US dollars per million tokens (input, output) as published by the providers when
# this table was written. Estimates only: override with LLM_PRICES.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-5": (1.25, 10.0),
    "gpt-5-mini": (0.25, 2.0),
    "gpt-5-nano": (0.05, 0.4),
    "gpt-4.1": (2.0, 8.0),
    "gpt-4.1-mini": (0.4, 1.6),
    "gpt-4o": (2.5, 10.0),
    "gpt-4o-mini": (0.15, 0.6),
    "claude-opus-4-1": (15.0, 75.0),
    "claude-sonnet-4-6": (3.0, 15.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "gemini-2.5-pro": (1.25, 10.0),
    "gemini-2.5-flash": (0.3, 2.5),
    "gemini-2.5-flash-lite": (0.1, 0.4),
}


def _with_db(url: str, db: int) -> str:
    """Return a Redis URL pointing at database number `db`, replacing any number already in it
    (in the path of redis:// and rediss:// URLs, or as `?db=` of unix:// socket URLs)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "db"]
    if parts.scheme == "unix":
        return f"unix://{parts.path}?{urlencode([*query, ('db', str(db))])}"
    return urlunsplit(parts._replace(path=f"/{db}", query=urlencode(query)))


class Settings(BaseSettings):
    """Every knob of the system. Each field's environment variable is its name in capitals."""

    model_config = SettingsConfigDict(
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        # `FOO=` in .env or the environment means "use the default", as .env.example suggests.
        env_ignore_empty=True,
    )

    # Redis: the broker lives in DB 0 and the result backend in DB 1 of this server.
    redis_url: str | None = None
    celery_broker_url: str | None = None
    celery_result_backend: str | None = None

    # Local state of `./run.sh`: the SQLite file, the embedded Redis's data and address.
    data_dir: Path = PROJECT_ROOT / "data"

    # Durable job records. Empty means a SQLite file in the data directory; PostgreSQL with
    # postgresql+psycopg://user:password@host/db
    database_url: str = ""

    # Which language model writes the reports. `auto` takes the first of openai, anthropic and
    # gemini whose key is set, and the offline demo provider when there is none.
    llm_provider: str = "auto"
    # Providers to try, in order, for a step whose provider failed for good ("anthropic,gemini").
    llm_fallback: str = ""
    offline_step_delay: float = Field(default=0.5, ge=0, le=30)

    openai_api_key: SecretStr | None = None
    openai_model: str = "gpt-5-mini"
    # Any OpenAI-compatible server: Ollama, vLLM, LM Studio, OpenRouter, a company gateway.
    openai_base_url: str | None = None
    anthropic_api_key: SecretStr | None = None
    anthropic_model: str = "claude-sonnet-4-6"
    anthropic_base_url: str | None = None
    gemini_api_key: SecretStr | None = None
    gemini_model: str = "gemini-2.5-flash"
    gemini_base_url: str = "https://generativelanguage.googleapis.com/v1beta/openai/"

    # Each provider call: its timeout, the retries of a transient error, the longest wait between
    # them that is worth holding a worker slot, and the cap on the answer's length.
    llm_timeout: float = Field(default=60.0, gt=0, le=600)
    llm_max_retries: int = Field(default=2, ge=0, le=10)
    llm_max_retry_wait: float = Field(default=60.0, ge=0)
    llm_backoff_base: float = Field(default=1.0, gt=0)
    llm_max_output_tokens: int = Field(default=2000, ge=100, le=64000)
    # Shared limits per provider, requests and tokens a minute, enforced in Redis across every
    # worker (0 turns one off). Defaults are the providers' entry tiers; raise them to yours.
    openai_rpm: int = Field(default=500, ge=0)
    openai_tpm: int = Field(default=500_000, ge=0)
    anthropic_rpm: int = Field(default=50, ge=0)
    anthropic_tpm: int = Field(default=30_000, ge=0)
    gemini_rpm: int = Field(default=1000, ge=0)
    gemini_tpm: int = Field(default=1_000_000, ge=0)
    # Sections of one report written at once, after the plan they all build on. The default, 11,
    # is every section at once (more is the same); 1 writes one step at a time, each seeing all before.
    report_parallelism: int = Field(default=11, ge=1, le=16)
    # US dollars per million input and output tokens, by model, for the cost estimate of each
    # report: a JSON object in the environment, added to DEFAULT_PRICES. Models not listed in
    # either have no estimate.
    llm_prices: dict[str, tuple[float, float]] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    # The most one report may spend, in US dollars (unset: no cap); a request's "max_cost_usd"
    # may ask for less, never more. A report whose next call could pass its cap stops, partial.
    max_cost_per_report_usd: float | None = Field(default=None, gt=0)

    # Web sources. `auto` searches with the first of Tavily, Brave and SearXNG that is configured,
    # and writes reports without web sources when none is; `none` turns web search off.
    search_backend: str = Field(default="auto", pattern="^(auto|tavily|brave|searxng|none)$")
    tavily_api_key: SecretStr | None = None
    tavily_base_url: str = "https://api.tavily.com"
    brave_api_key: SecretStr | None = None
    brave_base_url: str = "https://api.search.brave.com"
    # A self-hosted SearXNG with the JSON format enabled, e.g. http://127.0.0.1:8888
    searxng_url: str | None = None
    search_results_per_query: int = Field(default=5, ge=1, le=20)
    # A source published longer than this before it was read is marked old (about 18 months).
    source_max_age_days: int = Field(default=540, ge=1)
    # Each search and page fetch: its timeout, the cap on a page's body and on the text kept from it.
    fetch_timeout: float = Field(default=10.0, gt=0, le=120)
    fetch_max_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    fetch_max_chars: int = Field(default=20_000, ge=100)
    # Fetch pages on loopback and private networks too. Off, so a search result (or a redirect)
    # cannot point the worker at the cloud metadata service or the company intranet.
    fetch_allow_private: bool = False
    # The largest document (PDF) an analyst may upload as a source, and how many one job may bring.
    upload_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    upload_max_files: int = Field(default=3, ge=1, le=20)

    # The web app (gunicorn) and Flower. SECRET_KEY signs session cookies; unset, a random key is
    # made once and kept in the data directory, so every gunicorn process shares it.
    bind: str = "127.0.0.1:8000"
    # Where people reach the dashboard (https://reports.example.com), for the absolute links in
    # alert e-mails and webhooks. Unset: http://<BIND>.
    public_url: str | None = None
    secret_key: str | None = None
    # Accounts: the first user, `admin`, gets ADMIN_PASSWORD (or a random one that run.sh prints
    # once); API_TOKEN is a bearer token for admin read at start, for scripts.
    admin_password: SecretStr | None = None
    api_token: SecretStr | None = None
    # Reports are shared across the team: every user reads every job. True: a job is seen by the
    # user who asked for it and by admin only (cancel and retry are theirs in either case).
    private_reports: bool = False
    # Honour X-Forwarded-Proto/-For from one reverse proxy in front (HTTPS, real client address).
    trust_proxy: bool = False
    # Abuse limits per user: report submissions a minute, and jobs queued or running at once.
    submit_rate_per_minute: int = Field(default=120, ge=1)
    max_live_jobs_per_user: int = Field(default=200, ge=1)
    # US dollars each user may spend a calendar month (UTC) on reports; a submission whose high
    # estimate would pass it is refused (worker.budget). Unset: no budget. 0: no paid report at all
    # (the demo provider and models without a price still run), e.g. to stop spending for a while.
    monthly_budget_usd_per_user: float | None = Field(default=None, ge=0)
    # Failed log-ins a minute from one client address, before the log-in page answers 429.
    login_attempts_per_minute: int = Field(default=10, ge=1)
    # The most reports one comparison (/compare, its CSV and XLSX) holds: a batch of 20 compares in
    # one table, which the page scrolls sideways.
    compare_max: int = Field(default=20, ge=2, le=100)
    flower_port: int = Field(default=5555, ge=1, le=65535)
    # Loopback: Flower serves /metrics and /healthcheck without its basic auth, and has no option
    # to protect them. Another address only behind a firewall or a proxy that asks on every path.
    flower_address: str = "127.0.0.1"
    flower_url: str | None = None
    # "user:password" for Flower's basic auth. Unset: run.sh makes one and prints it once.
    flower_basic_auth: SecretStr | None = None

    # gunicorn: processes and threads each. Requests are short; the long work is the worker's.
    api_workers: int = Field(default=2, ge=1, le=64)
    api_threads: int = Field(default=2, ge=1, le=64)
    # gunicorn's access log, a line per request: "-" for the API's output (data/logs/api.log under
    # run.sh), a file, or empty for none, as gunicorn's own default. Off by default: with dashboards
    # open it is mostly their polls, and formatting it costs about 0.2 ms of CPU a request, 6 % of a
    # status read (bench/RESULTS.md, "Issue 14's latency figures"). The app's log has every job and error.
    api_access_log: str = ""
    # The port ./run.sh tries first for its embedded Redis (another free one if it is taken).
    embedded_redis_port: int = Field(default=6390, ge=1, le=65535)

    # The worker. Report jobs wait on network calls, so concurrency may exceed the core count.
    worker_name: str = "worker@%h"
    # The Celery pool: threads (one process, little memory; measured fastest, bench/RESULTS.md) or
    # prefork (a process per job: Celery's hard time limit, a cancel kills the call in flight, a
    # crash takes one job with it). See README "Sizing the workers".
    worker_pool: str = Field(default="threads", pattern="^(prefork|threads)$")
    # Tasks one worker runs at once. Unset: 32 threads (a report's step mostly waits on the
    # provider; the benchmark's best), or 4 processes for prefork (each a Python process of its own).
    worker_concurrency: int | None = Field(default=None, ge=1, le=256)
    worker_max_tasks_per_child: int = Field(default=20, ge=1)

    # Time limits. The broker re-delivers a message that is unacknowledged after the visibility
    # timeout, so it must stay above the hard time limit or a slow job would run twice at once.
    task_time_limit: int = Field(default=600, ge=5)
    celery_visibility_timeout: int = Field(default=960, ge=10)
    # How often the worker looks for unacknowledged messages older than the visibility timeout
    # (those of a worker that died) to deliver them again.
    unacked_restore_interval: int = Field(default=10, ge=1, le=600)
    # The lost-job sweep: how often it runs, and how long a live row must have been unchanged
    # before a job missing from Redis counts as lost (longer than any one step may take).
    sweep_interval: float = Field(default=60.0, gt=0)
    sweep_grace: float = Field(default=600.0, ge=1)
    # A job that asks which company its name means is cancelled after this long without an answer
    # (the sweep does it); and what the API does when a name matches several companies, unless the
    # request says (`on_ambiguous`): "fail" at once, so a script never waits on a question.
    needs_input_days: float = Field(default=7.0, gt=0)
    api_on_ambiguous: Literal["ask", "best", "fail"] = "fail"

    # Retries of transient provider errors: exponential backoff with full jitter.
    task_max_retries: int = Field(default=3, ge=0, le=10)
    retry_backoff_base: float = Field(default=2.0, gt=0)
    retry_backoff_max: int = Field(default=300, ge=1)

    # How long Celery keeps task states in Redis. The SQL row outlives them.
    result_expires: int = Field(default=7 * 24 * 3600, ge=60)

    # Following companies. A watch's cadence ("daily", "weekly", "monthly", or seconds) may not be
    # shorter than `watch_min_interval`; beat asks which companies are due every `watch_tick_seconds`.
    watch_min_interval: int = Field(default=3600, ge=1)
    watch_tick_seconds: float = Field(default=60.0, gt=0)
    # A section whose text changed by more than this share (1 - difflib's ratio) counts as a
    # material change, which watchers are told about.
    change_threshold: float = Field(default=0.2, gt=0, le=1)
    # Where watchers are told: e-mail through `smtp_url` (smtp://user:password@host:port, or
    # smtps:// for TLS from the start; starttls=true in the query to upgrade), from `mail_from`;
    # and the deployment's own webhook, besides each user's. Every webhook body is signed with
    # HMAC-SHA256 under `webhook_secret` (X-Signature-256: sha256=<hex>).
    smtp_url: SecretStr | None = None
    mail_from: str = "startup-reports@localhost"
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    # Deliveries that fail are tried again with exponential backoff, up to this many attempts
    # (by default about 80 minutes in all).
    delivery_max_attempts: int = Field(default=12, ge=1, le=50)
    delivery_backoff_base: float = Field(default=5.0, gt=0)
    delivery_backoff_max: int = Field(default=900, ge=1)

    def __init__(self, **values: Any) -> None:
        """Read `.env` at the project root, or the file STARTUP_REPORTS_ENV_FILE names (the tests
        name none), as each `Settings()` is built; `_env_file=` chooses for one call."""
        values.setdefault("_env_file", os.environ.get("STARTUP_REPORTS_ENV_FILE", PROJECT_ROOT / ".env"))
        super().__init__(**values)

    @model_validator(mode="after")
    def _derive_and_check(self) -> Settings:
        self.llm_prices = {**DEFAULT_PRICES, **self.llm_prices}
        if self.worker_concurrency is None:
            self.worker_concurrency = 32 if self.worker_pool == "threads" else 4
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir.resolve() / 'reports.db'}"
        if self.admin_password is not None and len(self.admin_password.get_secret_value()) < MIN_PASSWORD_CHARS:
            raise ValueError(
                f"ADMIN_PASSWORD must be at least {MIN_PASSWORD_CHARS} characters long, or the admin account "
                "could not be created with it"
            )
        if self.celery_visibility_timeout <= self.task_time_limit + self.retry_backoff_max:
            raise ValueError(
                "CELERY_VISIBILITY_TIMEOUT must be greater than TASK_TIME_LIMIT + RETRY_BACKOFF_MAX, "
                "or a slow job could be delivered to a second worker while the first still runs it"
            )
        return self

    @property
    def effective_redis_url(self) -> str:
        if self.redis_url:
            return self.redis_url
        url_file = self.data_dir / EMBEDDED_REDIS_URL_FILE
        if url_file.is_file():
            url = url_file.read_text().strip()
            if url:
                return url
        return FALLBACK_REDIS_URL

    @property
    def broker_url(self) -> str:
        return self.celery_broker_url or _with_db(self.effective_redis_url, 0)

    @property
    def result_backend_url(self) -> str:
        return self.celery_result_backend or _with_db(self.effective_redis_url, 1)

    @property
    def task_soft_time_limit(self) -> int:
        """A little below the hard limit, so the task can record a clear failure before it is killed."""
        return max(5, self.task_time_limit - max(5, self.task_time_limit // 20))

    @property
    def public_link(self) -> str:
        """The dashboard's base URL, without a trailing slash, for links sent out of the app."""
        return (self.public_url or f"http://{self.bind}").rstrip("/")

    @property
    def flower_link(self) -> str:
        return self.flower_url or f"http://{self.flower_address}:{self.flower_port}/"


def describe_invalid_settings(error: ValidationError) -> str:
    """The settings' own sentences, one a line, each naming its variable: what a script prints
    before it stops, instead of pydantic's report and a traceback."""
    lines = []
    for problem in error.errors(include_url=False):
        message = problem["msg"].removeprefix("Value error, ")
        if problem["loc"]:
            name = str(problem["loc"][0]).upper()
            lines.append(f"{name}={problem['input']!r} is not valid: {message}.")
        else:
            lines.append(f"{message}.")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Print the named settings, one per line, as the scripts read them. Secrets print as
    ********** unless --reveal comes first (run_flower.sh needs FLOWER_BASIC_AUTH itself)."""
    reveal = bool(argv) and argv[0] == "--reveal"
    argv = argv[1:] if reveal else argv
    if not argv:
        print("usage: python -m config [--reveal] SETTING_NAME [SETTING_NAME …]", file=sys.stderr)
        return 2
    try:
        settings = Settings()
    except ValidationError as error:
        print(describe_invalid_settings(error), file=sys.stderr)
        return 2
    values = []
    for name in argv:
        if not hasattr(settings, name.lower()):
            print(f"unknown setting: {name}", file=sys.stderr)
            return 2
        value = getattr(settings, name.lower())
        if reveal and isinstance(value, SecretStr):
            value = value.get_secret_value()
        values.append("" if value is None else str(value))
    print("\n".join(values))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
