"""The small interface every language-model provider implements, and the errors it may raise.

Errors are classified here, once, at the provider boundary: a `TransientProviderError` is worth
retrying later (timeouts, connection trouble, rate limits, overload); a `FatalProviderError` will
fail the same way every time (bad key, bad request, refusal) and fails the job at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Prompt:
    """One request to a model. `step` and `startup` let the offline provider pick its canned text;
    real providers send only `system` and `user`."""

    system: str
    user: str
    step: str
    startup: str


@dataclass(frozen=True)
class Completion:
    text: str
    provider: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    extra: dict[str, object] = field(default_factory=dict)


class ProviderError(Exception):
    """A provider call failed. `str(error)` is a sentence a person can act on."""

    def __init__(self, message: str, *, provider: str = "") -> None:
        super().__init__(message)
        self.provider = provider


class TransientProviderError(ProviderError):
    """Worth another try later: the same call may well succeed."""


class FatalProviderError(ProviderError):
    """Will fail the same way again: retrying only spends money and time."""


class Provider(ABC):
    """A language model that turns a prompt into text."""

    #: The registry name ("offline", "openai", …).
    name: str = ""
    #: True for output that is not research (the offline demo): reports then carry a banner.
    is_demo: bool = False

    @property
    @abstractmethod
    def model(self) -> str:
        """The model's name as the provider knows it."""

    @abstractmethod
    def complete(self, prompt: Prompt) -> Completion:
        """Answer one prompt, or raise a `ProviderError` subclass."""
