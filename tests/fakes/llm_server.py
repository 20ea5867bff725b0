"""A fake LLM provider: a real HTTP server on 127.0.0.1 that speaks the wire formats the SDKs expect.

- OpenAI Chat Completions: `POST /v1/chat/completions` (and Gemini's OpenAI-compatible
  `POST /v1beta/openai/chat/completions`), answers with `choices` and `usage`.
- Anthropic Messages: `POST /v1/messages`, answers with `content` blocks and `usage`.

Each API has a queue of scripted replies, consumed one per request, and a default reply for when
the queue is empty: a normal answer, a status with headers (429 with Retry-After, 500, 529, 401),
a malformed body, a delay, or a request that never answers. Every request is recorded with its
time, so that tests can assert the gaps between retries and count what was paid for.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OPENAI_PATHS = {"/v1/chat/completions": "openai", "/v1beta/openai/chat/completions": "gemini"}
ANTHROPIC_PATH = "/v1/messages"


@dataclass(frozen=True)
class Reply:
    """What the server does with one request."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    error: str = ""
    delay: float = 0.0
    #: The delay for a prompt, instead of `delay`: a step that takes longer than the others.
    delay_for: Callable[[str], float] | None = None
    hang: bool = False
    malformed: bool = False
    refusal: bool = False
    #: Leave out `usage`, as some OpenAI-compatible servers and proxies do (it is optional).
    no_usage: bool = False
    #: The answer's text for a prompt, or None for the usual answer (`answer_text`).
    answer: Callable[[str], str | None] | None = None

    @classmethod
    def ok(cls, delay: float = 0.0) -> Reply:
        return cls(delay=delay)

    @classmethod
    def answering(cls, answer: Callable[[str], str | None]) -> Reply:
        """Answer as `answer` says: a test's own text for the steps it cares about."""
        return cls(answer=answer)

    @classmethod
    def rate_limited(cls, retry_after: float | None = None, *, ms: bool = False) -> Reply:
        headers = {}
        if retry_after is not None:
            headers = {"retry-after-ms": str(int(retry_after * 1000))} if ms else {"Retry-After": str(retry_after)}
        return cls(status=429, headers=headers, error="Rate limit reached for requests")

    @classmethod
    def server_error(cls, status: int = 500) -> Reply:
        return cls(status=status, error="The server had an error while processing your request")

    @classmethod
    def overloaded(cls) -> Reply:
        return cls(status=529, error="Overloaded")

    @classmethod
    def unauthorized(cls) -> Reply:
        return cls(status=401, error="Incorrect API key provided")

    @classmethod
    def never_answers(cls) -> Reply:
        return cls(hang=True)

    @classmethod
    def garbled(cls) -> Reply:
        return cls(malformed=True)


@dataclass
class Recorded:
    api: str
    at: float
    status: int
    model: str
    prompt: str
    authorization: str


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A client killed mid-request (the fault tests do that on purpose) is not news.
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeLLMServer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Reply]] = {"openai": deque(), "gemini": deque(), "anthropic": deque()}
        self._defaults: dict[str, Reply] = {api: Reply.ok() for api in self._scripts}
        self.requests: list[Recorded] = []
        self._stopping = threading.Event()
        # An optional requests-per-minute limit, as a provider enforces it: 429 beyond it.
        self.rpm_limit: int | None = None
        self._accepted: deque[float] = deque()
        self.default_delay = 0.0
        self._httpd = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    # Control, from the test.

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def script(self, api: str, *replies: Reply) -> None:
        with self._lock:
            self._scripts[api].extend(replies)

    def set_default(self, api: str, reply: Reply) -> None:
        with self._lock:
            self._defaults[api] = reply

    def set_rate_limit(self, rpm: int | None) -> None:
        with self._lock:
            self.rpm_limit = rpm
            self._accepted.clear()

    def _over_limit(self, now: float) -> float | None:
        """Seconds until a slot frees up, if this request is over the per-minute limit."""
        if not self.rpm_limit:
            return None
        with self._lock:
            while self._accepted and self._accepted[0] <= now - 60:
                self._accepted.popleft()
            if len(self._accepted) >= self.rpm_limit:
                return self._accepted[0] + 60 - now
            self._accepted.append(now)
            return None

    def most_in_any_minute(self) -> int:
        """The most answered (non-429) requests in any 60-second window: what a provider counts."""
        times = sorted(r.at for r in self.requests if r.status != 429)
        most, start = 0, 0
        for end, at in enumerate(times):
            while times[start] <= at - 60:
                start += 1
            most = max(most, end - start + 1)
        return most

    def reset(self) -> None:
        with self._lock:
            self.rpm_limit = None
            self._accepted.clear()
            for api in self._scripts:
                self._scripts[api].clear()
                self._defaults[api] = Reply.ok()
            self.requests.clear()

    def successes(self, api: str | None = None) -> list[Recorded]:
        """Requests answered with a valid, paid-for answer."""
        return [r for r in self.requests if r.status == 200 and (api is None or r.api == api)]

    def of(self, api: str) -> list[Recorded]:
        return [r for r in self.requests if r.api == api]

    # Serving.

    def _next_reply(self, api: str) -> Reply:
        with self._lock:
            return self._scripts[api].popleft() if self._scripts[api] else self._defaults[api]

    def _record(self, entry: Recorded) -> None:
        with self._lock:
            self.requests.append(entry)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                return None

            def do_GET(self) -> None:  # noqa: N802
                """`/_stats`: what a benchmark in another process needs to know."""
                if self.path != "/_stats":
                    self._send(404, {"error": {"message": "not found"}})
                    return
                with server._lock:
                    statuses = [r.status for r in server.requests]
                    arrivals = [r.at for r in server.requests]
                self._send(
                    200,
                    {
                        "requests": len(statuses),
                        "paid": sum(1 for status in statuses if status == 200),
                        "rate_limited": sum(1 for status in statuses if status == 429),
                        "most_in_any_minute": server.most_in_any_minute(),
                        "first_at": min(arrivals, default=None),
                        "last_at": max(arrivals, default=None),
                    },
                )

            def do_POST(self) -> None:  # noqa: N802 (the name http.server asks for)
                api = OPENAI_PATHS.get(self.path) or ("anthropic" if self.path == ANTHROPIC_PATH else "")
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if not api:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                body = json.loads(raw or b"{}")
                prompt = _last_user_text(body)
                auth = self.headers.get("Authorization") or self.headers.get("x-api-key") or ""
                reply = server._next_reply(api)
                arrived = time.monotonic()
                wait = server._over_limit(arrived) if reply.status == 200 and not reply.hang else None
                if wait is not None:
                    reply = Reply.rate_limited(max(1, math.ceil(wait)))
                if reply.hang:
                    server._record(Recorded(api, arrived, 0, body.get("model", ""), prompt, auth))
                    server._stopping.wait(120)
                    self.close_connection = True
                    return
                delay = reply.delay_for(prompt) if reply.delay_for else reply.delay
                if delay:
                    time.sleep(delay)
                server._record(Recorded(api, arrived, reply.status, body.get("model", ""), prompt, auth))
                if reply.malformed:
                    self._send_raw(200, b'{"id": "chatcmpl-broken", "choices": [', "application/json")
                elif reply.status != 200:
                    self._send(reply.status, _error_body(api, reply), reply.headers)
                elif api == "anthropic":
                    self._send(200, _anthropic_answer(body, prompt, reply))
                else:
                    self._send(200, _openai_answer(body, prompt, reply))

            def _send(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
                self._send_raw(status, json.dumps(payload).encode(), "application/json", headers)

            def _send_raw(
                self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler


def _last_user_text(body: dict) -> str:
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
            return str(content)
    return ""


SOURCE_BLOCK = re.compile(r'<source number="(\d+)">\n(.*?)\n</source>', re.DOTALL)
INVENTED_CITATION = "[97]"
INVENTED_URL = "https://invented.example/made-up-report"


# What the fake reads from its sources for the Snapshot's Key facts (`worker.pipeline.KEY_FACTS`),
# so that a page changed between two runs changes the facts, as it would a model's.
KEY_FACT_PATTERNS = {
    "Stage": re.compile(r"\b(Pre-seed|Seed|Series [A-H])\b"),
    "Total raised": re.compile(r"\braise[sd]? (?:a |an )?(\$[\d.]+ ?(?:million|billion|M|B))"),
    "Last round": re.compile(r"\braise[sd]? (?:a |an )?(\$[\d.]+ ?(?:million|billion|M|B) Series [A-H])"),
    "Last round date": re.compile(
        r"\bin ((?:January|February|March|April|May|June|July|August|September|October|November|December) \d{4})"
    ),
    "Lead investors": re.compile(r"\bround led by ([A-Z]\w*(?: [A-Z]\w*)*)"),
    "Head count": re.compile(r"\bemploys ([\d,]+ people)"),
    "Headquarters": re.compile(r"\bheadquarters in ([A-Z][a-z]+)"),
    "Founded": re.compile(r"\bfounded in (\d{4})\b"),
    "Website": re.compile(r"\bFind us at ([a-z\d-]+\.[a-z]{2,})\b"),
    "Business model": re.compile(r"\b(sells [^.]+?)(?: and says|\.)"),
}
RECOMMENDATION = "Recommendation: watch, until the company shows revenue beyond its pilots"


def _key_facts(sources: list[tuple[str, str]]) -> str:
    """The Key facts list, each fact the first its sources state, with its citation, else Unknown."""
    lines = ["**Key facts**", ""]
    for label, pattern in KEY_FACT_PATTERNS.items():
        found = next(((m.group(1), n) for n, text in sources if (m := pattern.search(" ".join(text.split())))), None)
        lines.append(f"- **{label}:** {found[0]} [{found[1]}]" if found else f"- **{label}:** Unknown")
    return "\n".join(lines) + "\n\n"


def _recommendation(prompt: str) -> str:
    """The summary's closing recommendation, citing what the first finding cited, as a model
    carries a section's citation over into its summary."""
    cited = re.search(r"\[(\d+)\]", prompt)
    return f"{RECOMMENDATION} [{cited.group(1)}].\n\n" if cited else f"{RECOMMENDATION}.\n\n"


def answer_text(prompt: str) -> str:
    """A short Markdown answer that names what was asked, so tests can tell the steps apart.

    When the prompt carries numbered sources, the answer does what a model does: states the
    first sentence of each with its citation, and then, as models sometimes do, cites a source
    that does not exist and links a URL nobody read."""
    asked = prompt.strip().splitlines()[0][:80] if prompt.strip() else "(empty prompt)"
    words = len(prompt.split())
    cited = []
    for number, block in SOURCE_BLOCK.findall(prompt):
        excerpt = block.split("\n\n", 1)[-1].strip()
        first = re.split(r"(?<=[a-z0-9])\.\s", " ".join(excerpt.split()), maxsplit=1)[0].rstrip(".")
        cited.append(f"- {first} [{number}].\n")
    if cited:
        cited.append(f"- A figure nobody published {INVENTED_CITATION}, see {INVENTED_URL}.\n")
    facts = ""
    if "Now write the section “Snapshot”" in prompt:
        facts = _key_facts(SOURCE_BLOCK.findall(prompt))
    elif "Write the memo's summary" in prompt:
        facts = _recommendation(prompt)
    return (
        f"Fake analysis for: {asked}\n\n" + facts + "".join(cited) + f"- The prompt had {words} words.\n"
        "- Figures here come from the fake provider server.\n\n"
        "| Metric | Value |\n|---|---|\n| Confidence | Low |"
    )


def _usage(prompt: str, text: str) -> tuple[int, int]:
    return max(1, len(prompt.split()) * 4 // 3), max(1, len(text.split()) * 4 // 3)


def _text_of(prompt: str, reply: Reply) -> str:
    answer = reply.answer(prompt) if reply.answer else None
    return answer_text(prompt) if answer is None else answer


def _openai_answer(body: dict, prompt: str, reply: Reply) -> dict:
    refusal = reply.refusal
    text = _text_of(prompt, reply)
    prompt_tokens, completion_tokens = _usage(prompt, text)
    message: dict[str, Any] = {"role": "assistant", "content": None if refusal else text}
    if refusal:
        message["refusal"] = "I can't help with that."
    answer: dict[str, Any] = {
        "id": f"chatcmpl-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", ""),
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
    }
    if not reply.no_usage:
        answer["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
    return answer


def _anthropic_answer(body: dict, prompt: str, reply: Reply) -> dict:
    refusal = reply.refusal
    text = "" if refusal else _text_of(prompt, reply)
    input_tokens, output_tokens = _usage(prompt, text)
    return {
        "id": f"msg_{time.monotonic_ns()}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", ""),
        "content": [] if refusal else [{"type": "text", "text": text}],
        "stop_reason": "refusal" if refusal else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def _error_body(api: str, reply: Reply) -> dict:
    if api == "anthropic":
        kind = {401: "authentication_error", 429: "rate_limit_error", 529: "overloaded_error"}.get(
            reply.status, "api_error"
        )
        return {"type": "error", "error": {"type": kind, "message": reply.error}}
    return {"error": {"message": reply.error, "type": "error", "code": str(reply.status)}}


def main() -> None:
    """Run the server on its own, for the benchmark: `python -m tests.fakes.llm_server --port 0
    --latency 1 --rpm 600` prints its URL, then serves until killed."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--rpm", type=int, default=0)
    args = parser.parse_args()
    server = FakeLLMServer()
    for api in ("openai", "gemini", "anthropic"):
        server.set_default(api, Reply.ok(delay=args.latency))
    server.set_rate_limit(args.rpm or None)
    print(server.url, flush=True)
    server._httpd.serve_forever()


if __name__ == "__main__":
    main()
