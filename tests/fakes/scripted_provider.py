"""A provider whose failures a test scripts, for driving the worker's retry and failure paths.

It stands in for a language model that times out, rate-limits or rejects a key, at chosen calls.
Its call counter lives in files (`SCRIPTED_PROVIDER_DIR`), so that it counts across the retries of
a job and across the processes of a worker's pool. Successful calls are answered by the offline
demo provider and counted in `ok`, so a test can assert that no step was paid for twice.

script.json: {"calls": {"3": "transient", "4": "fatal", "5": "crash"}, "default": "ok"}
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
from pathlib import Path

from worker.providers.base import (
    Completion,
    FatalProviderError,
    Prompt,
    Provider,
    TransientProviderError,
)
from worker.providers.offline import OfflineProvider


def write_script(directory: Path, calls: dict[int, str], default: str = "ok") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "script.json").write_text(
        json.dumps({"calls": {str(k): v for k, v in calls.items()}, "default": default})
    )


def read_count(directory: Path, name: str) -> int:
    path = directory / name
    return int(path.read_text() or 0) if path.exists() else 0


class ScriptedProvider(Provider):
    name = "scripted"

    def __init__(self, directory: Path, step_delay: float) -> None:
        self.directory = directory
        self.script = json.loads((directory / "script.json").read_text())
        self.demo = OfflineProvider(step_delay=step_delay)

    @classmethod
    def from_settings(cls, settings: object) -> ScriptedProvider:
        return cls(Path(os.environ["SCRIPTED_PROVIDER_DIR"]), settings.offline_step_delay)  # type: ignore[attr-defined]

    @property
    def model(self) -> str:
        return "scripted-1"

    def _bump(self, name: str) -> int:
        with open(self.directory / f"{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            value = read_count(self.directory, name) + 1
            (self.directory / name).write_text(str(value))
            return value

    def request(self, prompt: Prompt) -> Completion:
        call = self._bump("calls")
        outcome = self.script["calls"].get(str(call), self.script["default"])
        if outcome == "transient":
            raise TransientProviderError(f"Scripted provider: timed out on call {call}.", provider=self.name)
        if outcome == "crash":  # what the OOM killer does to a pool process
            os.kill(os.getpid(), signal.SIGKILL)
        if outcome == "fatal":
            raise FatalProviderError(
                "Scripted provider rejected the API key: check SCRIPTED_API_KEY.", provider=self.name
            )
        completion = self.demo.complete(prompt)
        self._bump("ok")
        return Completion(text=completion.text, provider=self.name, model=self.model)
