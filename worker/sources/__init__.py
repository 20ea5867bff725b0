"""Web sources for reports: search backends, a guarded page fetcher, PDF text, and citations.

Nothing here knows of Flask, Celery or the pipeline: each piece takes plain values (or the settings
object) and raises its own errors, so the pipeline decides what a failed search or fetch means.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.sources.base import SearchBackend, SearchConfigError, SearchError, SearchResult
from worker.sources.brave import BraveSearch
from worker.sources.searxng import SearXNGSearch
from worker.sources.tavily import TavilySearch

if TYPE_CHECKING:
    from pydantic import SecretStr

    from config import Settings

__all__ = ["SearchBackend", "SearchConfigError", "SearchError", "SearchResult", "build_search_backend"]

#: The order `auto` tries them in: the paid APIs first, as a key is a deliberate choice.
BACKEND_NAMES = ("tavily", "brave", "searxng")


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""


def _build(name: str, settings: Settings) -> SearchBackend | None:
    """The backend `name` as configured, or None when its key or address is not set."""
    timeout = settings.fetch_timeout
    if name == "tavily":
        key = _secret(settings.tavily_api_key)
        return TavilySearch(api_key=key, base_url=settings.tavily_base_url, timeout=timeout) if key else None
    if name == "brave":
        key = _secret(settings.brave_api_key)
        return BraveSearch(api_key=key, base_url=settings.brave_base_url, timeout=timeout) if key else None
    if name == "searxng":
        return SearXNGSearch(base_url=settings.searxng_url, timeout=timeout) if settings.searxng_url else None
    raise SearchConfigError(f"SEARCH_BACKEND={name!r} is not one of auto, {', '.join(BACKEND_NAMES)} or none.")


def build_search_backend(settings: Settings) -> SearchBackend | None:
    """The backend SEARCH_BACKEND asks for, or None when web research is off.

    `auto` takes the first of Tavily, Brave and SearXNG that is configured, and None when none is
    (reports are then written without web sources). A backend named explicitly but not configured
    is a mistake worth stopping for, so it raises `SearchConfigError` naming the missing variable.
    """
    choice = settings.search_backend.strip().lower()
    if choice == "none":
        return None
    if choice == "auto":
        for name in BACKEND_NAMES:
            backend = _build(name, settings)
            if backend is not None:
                return backend
        return None
    backend = _build(choice, settings)
    if backend is None:
        variable = {"tavily": "TAVILY_API_KEY", "brave": "BRAVE_API_KEY", "searxng": "SEARXNG_URL"}[choice]
        raise SearchConfigError(f"SEARCH_BACKEND={choice} needs {variable}: set it, or set SEARCH_BACKEND=auto.")
    return backend
