"""A record of every model call: what was asked, what came back, what it cost.

Three formats, chosen by ``LLMConfig.log_format``:
``jsonl`` (``llm_calls.jsonl``, one JSON object a call, for programs),
``structured`` (``llm_calls.log``, readable blocks, for people) and
``compact`` (``llm_calls.compact.log``, one line a call).
Secrets (values of environment variables that look like keys or tokens, and
well-known key shapes) are replaced before anything is written.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

LOG_FILES = {"jsonl": "llm_calls.jsonl", "structured": "llm_calls.log", "compact": "llm_calls.compact.log"}
_SECRET_ENV = ("*KEY*", "*TOKEN*", "*SECRET*", "*PASSWORD*", "*CREDENTIAL*")
_SECRET_SHAPES = re.compile(r"(tvly-[A-Za-z0-9_\-]{8,}|sk-[A-Za-z0-9_\-]{16,}|(?i:bearer)\s+[A-Za-z0-9._\-]{8,})")
REDACTED = "[REDACTED]"


@dataclass
class CallRecord:
    """One model call, as written to the log."""

    purpose: str
    model: str
    messages: list[dict[str, str]]
    call_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started_at: float = field(default_factory=time.time)
    stream: bool = False
    response: str = ""
    thinking: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    duration_ms: float = 0.0
    attempts: int = 1
    error: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


def _secret_values() -> list[str]:
    values = []
    for name, value in os.environ.items():
        if len(value) >= 8 and any(fnmatch.fnmatchcase(name.upper(), pat) for pat in _SECRET_ENV):
            values.append(value)
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: list[str] | None = None) -> str:
    for value in _secret_values() if secrets is None else secrets:
        text = text.replace(value, REDACTED)
    return _SECRET_SHAPES.sub(REDACTED, text)


class CallLog:
    """Appends one record a call to ``<folder>/<file for the format>``; safe across threads and processes."""

    def __init__(self, folder: str | os.PathLike[str], fmt: str = "jsonl", enabled: bool = True):
        if fmt not in LOG_FILES:
            raise ValueError(f"unknown call log format {fmt!r}; choose one of {', '.join(LOG_FILES)}")
        self.folder = Path(folder)
        self.fmt = fmt
        self.enabled = enabled
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self.folder / LOG_FILES[self.fmt]

    def write(self, record: CallRecord) -> None:
        if not self.enabled:
            return
        text = redact(getattr(self, f"_render_{self.fmt}")(record))
        self.folder.mkdir(parents=True, exist_ok=True)
        data = text.encode("utf-8")
        # One write() on an O_APPEND descriptor: records from the magic and the server never interleave.
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)

    @staticmethod
    def _render_jsonl(r: CallRecord) -> str:
        return json.dumps(asdict(r), ensure_ascii=False, default=str) + "\n"

    @staticmethod
    def _render_compact(r: CallRecord) -> str:
        when = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(r.started_at))
        status = f"ERROR {r.error}" if r.error else "ok"
        answer = " ".join(r.response.split())[:80]
        return (
            f"{when} {r.call_id} {r.purpose} {r.model} {r.duration_ms:.0f}ms "
            f"tokens={r.prompt_tokens or 0}+{r.completion_tokens or 0} {status} {answer!r}\n"
        )

    @staticmethod
    def _render_structured(r: CallRecord) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started_at))
        lines = [
            f"=== call {r.call_id} | purpose={r.purpose} | model={r.model} | {when} | {r.duration_ms:.0f} ms"
            f" | tokens {r.prompt_tokens or 0} prompt + {r.completion_tokens or 0} completion"
            f" | attempts {r.attempts}{' | stream' if r.stream else ''}",
        ]
        for m in r.messages:
            lines += [f"--- {m.get('role', '?')} ---", str(m.get("content", ""))]
        if r.thinking:
            lines += ["--- thinking (hidden from the answer) ---", r.thinking]
        lines += ["--- response ---", r.response]
        if r.error:
            lines += ["--- error ---", r.error]
        return "\n".join(lines) + "\n\n"
