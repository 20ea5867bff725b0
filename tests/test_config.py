"""Settings: Redis databases, overrides, defaults, and the limits that keep jobs from running twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from config import MIN_PASSWORD_CHARS, PROJECT_ROOT
from tests.conftest import SETTING_NAMES, make_settings


def test_broker_and_backend_use_db_0_and_1_of_redis_url() -> None:
    settings = make_settings(redis_url="redis://:secret@cache.internal:6380/7")
    assert settings.broker_url == "redis://:secret@cache.internal:6380/0"
    assert settings.result_backend_url == "redis://:secret@cache.internal:6380/1"


def test_each_celery_url_can_be_overridden() -> None:
    settings = make_settings(
        redis_url="redis://a:1",
        celery_broker_url="redis://b:2/3",
        celery_result_backend="redis://c:4/5",
    )
    assert settings.broker_url == "redis://b:2/3"
    assert settings.result_backend_url == "redis://c:4/5"


def test_defaults_give_sqlite_under_the_data_dir(tmp_path: Path) -> None:
    settings = make_settings(data_dir=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'reports.db'}"
    assert settings.bind == "127.0.0.1:8000"
    assert settings.flower_port == 5555
    assert settings.flower_address == "127.0.0.1"  # Flower's /metrics needs no password
    assert settings.llm_provider == "auto"


def test_embedded_redis_address_is_found_through_the_data_dir(tmp_path: Path) -> None:
    assert make_settings(data_dir=tmp_path, redis_url=None).effective_redis_url == "redis://127.0.0.1:6379"
    (tmp_path / "redis.url").write_text("redis://127.0.0.1:6391\n")
    assert make_settings(data_dir=tmp_path, redis_url=None).broker_url == "redis://127.0.0.1:6391/0"


def test_visibility_timeout_must_exceed_the_time_limit() -> None:
    with pytest.raises(ValidationError, match="CELERY_VISIBILITY_TIMEOUT"):
        make_settings(task_time_limit=3600, celery_visibility_timeout=1800)


def test_soft_limit_fires_before_the_hard_one() -> None:
    settings = make_settings(task_time_limit=600)
    assert 0 < settings.task_soft_time_limit < 600


def test_empty_values_in_env_files_mean_default(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("BIND=\nWORKER_CONCURRENCY=\nFLOWER_PORT=5600\n")
    settings = make_settings(_env_file=env_file)
    assert settings.bind == "127.0.0.1:8000"
    assert settings.worker_concurrency == 32  # the threads pool's default
    assert make_settings(worker_pool="prefork").worker_concurrency == 4
    assert settings.flower_port == 5600


def test_the_env_file_is_chosen_when_settings_are_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from config import Settings  # imported before STARTUP_REPORTS_ENV_FILE is set, as in a process

    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    env_file = tmp_path / "staging.env"
    env_file.write_text("FLOWER_PORT=5601\n")
    monkeypatch.setenv("STARTUP_REPORTS_ENV_FILE", str(env_file))
    assert Settings().flower_port == 5601
    monkeypatch.setenv("STARTUP_REPORTS_ENV_FILE", os.devnull)
    assert Settings().flower_port == 5555
    assert Settings(_env_file=env_file).flower_port == 5601  # one call's own choice wins


def test_env_example_lists_every_setting() -> None:
    listed = {
        line.split("=", 1)[0]
        for line in (PROJECT_ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    from config import Settings

    assert {name.upper() for name in Settings.model_fields} <= listed


def test_python_m_config_prints_one_setting(tmp_path: Path) -> None:
    env = {
        "BIND": "0.0.0.0:9100",
        "PATH": "/usr/bin:/bin",
        "DATA_DIR": str(tmp_path),
        "STARTUP_REPORTS_ENV_FILE": os.devnull,
    }
    out = subprocess.run(
        [sys.executable, "-m", "config", "BIND"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip() == "0.0.0.0:9100"
    several = subprocess.run(
        [sys.executable, "-m", "config", "BIND", "REDIS_URL", "API_WORKERS"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert several.stdout.split("\n") == ["0.0.0.0:9100", "", "2", ""]
    bad = subprocess.run(
        [sys.executable, "-m", "config", "NOPE"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "unknown setting" in bad.stderr


@pytest.mark.parametrize(
    ("url", "broker", "backend"),
    [
        ("redis://h:1", "redis://h:1/0", "redis://h:1/1"),
        ("redis://h:1?db=3", "redis://h:1/0", "redis://h:1/1"),
        ("rediss://u:p@h:6380/2?ssl_cert_reqs=none", "rediss://u:p@h:6380/0?ssl_cert_reqs=none", None),
        ("unix:///run/redis.sock?db=4", "unix:///run/redis.sock?db=0", "unix:///run/redis.sock?db=1"),
    ],
)
def test_database_numbers_are_replaced_in_every_url_form(url: str, broker: str, backend: str | None) -> None:
    settings = make_settings(redis_url=url)
    assert settings.broker_url == broker
    if backend:
        assert settings.result_backend_url == backend


def test_every_variable_in_env_example_is_a_setting() -> None:
    from config import Settings

    listed = {
        line.split("=", 1)[0]
        for line in (PROJECT_ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert listed <= {name.upper() for name in Settings.model_fields}


@pytest.mark.parametrize("script", ["run.sh", "run_api.sh", "run_worker.sh", "run_flower.sh"])
def test_each_script_stops_at_invalid_settings_with_their_own_sentence(script: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k.upper() not in SETTING_NAMES}
    env.update(
        STARTUP_REPORTS_ENV_FILE=os.devnull,
        DATA_DIR=str(tmp_path),
        PYTHON=sys.executable,
        CELERY_VISIBILITY_TIMEOUT="10",
        FLOWER_BASIC_AUTH="admin:secret",
    )
    out = subprocess.run([f"./{script}"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    sentence = (
        "CELERY_VISIBILITY_TIMEOUT must be greater than TASK_TIME_LIMIT + RETRY_BACKOFF_MAX, "
        "or a slow job could be delivered to a second worker while the first still runs it."
    )
    assert out.returncode != 0
    if script == "run.sh":  # on its first start in this .venv it installs first, and says so
        assert out.stderr.strip().endswith(sentence) and "Traceback" not in out.stderr, out.stderr
        assert "unbound variable" not in out.stderr and "stopping" not in out.stdout
    else:
        assert out.stderr.strip() == sentence and out.stdout == "", out.stderr


def test_an_invalid_value_is_named_with_its_variable(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path), "STARTUP_REPORTS_ENV_FILE": os.devnull}
    out = subprocess.run(
        [sys.executable, "-m", "config", "BIND"],
        cwd=PROJECT_ROOT,
        env={**env, "TASK_TIME_LIMIT": "ten"},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith("TASK_TIME_LIMIT='ten' is not valid: Input should be a valid integer"), out.stderr


def test_the_worker_s_pool_and_size_are_set_in_one_place_the_celery_app() -> None:
    """run_worker.sh passes no pool flags: `celery -A worker.celery_app worker` takes them from here."""
    from worker.celery_setup import create_celery

    shipped = create_celery(make_settings()).conf
    assert (shipped.worker_pool, shipped.worker_concurrency) == ("threads", 32)
    prefork = create_celery(make_settings(worker_pool="prefork")).conf
    assert (prefork.worker_pool, prefork.worker_concurrency) == ("prefork", 4)
    script = (PROJECT_ROOT / "run_worker.sh").read_text()
    assert "--pool" not in script and "--concurrency" not in script


def test_a_short_admin_password_stops_the_start_with_a_sentence(tmp_path: Path) -> None:
    """A password the accounts would refuse used to create no admin, silently: the settings refuse it,
    so every script stops before anything starts, saying why (and never printing the password)."""
    with pytest.raises(ValidationError, match="ADMIN_PASSWORD must be at least 10 characters"):
        make_settings(admin_password="short")
    assert make_settings(admin_password="x" * MIN_PASSWORD_CHARS).admin_password is not None
    env = {"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path), "STARTUP_REPORTS_ENV_FILE": os.devnull}
    out = subprocess.run(
        [sys.executable, "-m", "config", "BIND"],
        cwd=PROJECT_ROOT,
        env={**env, "ADMIN_PASSWORD": "hunter2"},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "hunter2" not in out.stderr
    assert out.stderr.strip() == (
        "ADMIN_PASSWORD must be at least 10 characters long, or the admin account could not be created with it."
    )


def scheme_gunicorn_sees(monkeypatch: pytest.MonkeyPatch, trust_proxy: str, peer: tuple[str, int] | str) -> str:
    """The scheme gunicorn gives a plain-HTTP request claiming `X-Forwarded-Proto: https`, with
    webapp/gunicorn_config.py loaded as `gunicorn --config` loads it."""
    import importlib.util

    from gunicorn.config import Config
    from gunicorn.http.parser import RequestParser

    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    monkeypatch.setenv("STARTUP_REPORTS_ENV_FILE", os.devnull)
    monkeypatch.setenv("TRUST_PROXY", trust_proxy)
    spec = importlib.util.spec_from_file_location("__config__", PROJECT_ROOT / "webapp" / "gunicorn_config.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cfg = Config()
    for key, value in vars(module).items():
        if key in cfg.settings:
            cfg.set(key, value)
    raw = b"GET / HTTP/1.1\r\nHost: reports.example\r\nX-Forwarded-Proto: https\r\n\r\n"
    return next(iter(RequestParser(cfg, iter([raw]), peer))).scheme


@pytest.mark.parametrize("peer", [("127.0.0.1", 50000), ("::1", 50000), "/run/reports.sock"])
def test_gunicorn_believes_forwarded_headers_only_with_trust_proxy(
    monkeypatch: pytest.MonkeyPatch, peer: tuple[str, int] | str
) -> None:
    """gunicorn's own default trusts them from loopback and UNIX sockets, whatever TRUST_PROXY says."""
    assert scheme_gunicorn_sees(monkeypatch, "false", peer) == "http"
    assert scheme_gunicorn_sees(monkeypatch, "true", peer) == "https"


def test_the_data_folder_is_made_for_its_owner_alone(tmp_path: Path) -> None:
    """Whoever makes the data folder first (the migration, or the store), makes it 0700: it holds
    the reports, the accounts and the secret key."""
    from worker.migrate import ensure_sqlite_folder
    from worker.store import JobStore

    by_migration = make_settings(data_dir=tmp_path / "by-migration")
    ensure_sqlite_folder(by_migration.database_url)
    by_store = make_settings(data_dir=tmp_path / "by-store")
    JobStore(by_store.database_url).dispose()
    for settings in (by_migration, by_store):
        assert settings.data_dir.stat().st_mode & 0o777 == 0o700
