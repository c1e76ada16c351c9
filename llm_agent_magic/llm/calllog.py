"""A record of every model call: what was asked, what came back, what it cost.

Three formats, chosen by ``LLMConfig.log_format``:
``jsonl`` (``llm_calls.jsonl``, one JSON object a call, for programs),
``structured`` (``llm_calls.log``, readable blocks, for people) and
``compact`` (``llm_calls.compact.log``, one line a call).
Secrets (values of environment variables that look like keys or tokens, and
well-known key shapes) are replaced before anything is written, by the one
redactor that also cleans prompts and the store (``llm_agent_magic.redaction``):
each field of a record before it is rendered (the messages were redacted once, as
they joined the conversation, and cost nothing here), and the compact line, which
rewrites the answer's spacing, once more after.
"""

from __future__ import annotations

import atexit
import collections
import dataclasses
import json
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..redaction import REDACTED, redact, redact_data, redact_messages, redactor

__all__ = ["LOG_FILES", "REDACTED", "CallLog", "CallRecord", "redact"]

LOG_FILES = {"jsonl": "llm_calls.jsonl", "structured": "llm_calls.log", "compact": "llm_calls.compact.log"}
_log = logging.getLogger(__name__)
#: Seconds of rendering after which the writer lets other threads have the GIL (see ``_append_batch``).
HAND_OVER_AFTER = 0.0005
_OPEN_LOGS: weakref.WeakSet[CallLog] = weakref.WeakSet()


@atexit.register
def _flush_open_logs() -> None:
    for log in list(_OPEN_LOGS):
        log.close()


@dataclass
class CallRecord:
    """One model call, as written to the log. ``messages`` are the ones sent, as they were sent (the log keeps
    their roles and texts)."""

    purpose: str
    model: str
    messages: Sequence[Mapping[str, Any]]
    call_id: str = field(default_factory=lambda: f"{random.getrandbits(48):012x}")
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


#: One encoder for every record (``json.dumps`` with options makes a new one each time).
_encode_json = json.JSONEncoder(ensure_ascii=False, default=str).encode


def _redacted(r: CallRecord, redact_text: Callable[[str], str]) -> CallRecord:
    """``r`` as the log writes it: every text redacted (``redact_text``: ``redact`` for the whole batch),
    messages reduced to role and text. The messages are usually redacted already (``RedactedMessage``, as
    the client sent them): a look each."""
    return dataclasses.replace(
        r,
        model=redact_text(r.model),
        messages=[
            {"role": str(m.get("role", "user")), "content": str(m.get("content", ""))} for m in redact_messages(r.messages)
        ],
        response=redact_text(r.response),
        thinking=redact_text(r.thinking),
        error=None if r.error is None else redact_text(r.error),
        options=redact_data(r.options),
    )


class CallLog:
    """Appends one record a call to ``<folder>/<file for the format>``; safe across threads and processes.

    Calls only queue their record; a writer thread renders and appends what has queued every
    ``interval`` seconds, in one go. That keeps logging off the model call's path without waking
    a thread per call. ``flush()`` writes everything queued now; ``close()`` and interpreter exit
    flush too.
    """

    def __init__(self, folder: str | os.PathLike[str], fmt: str = "jsonl", enabled: bool = True, interval: float = 0.2):
        if fmt not in LOG_FILES:
            raise ValueError(f"unknown call log format {fmt!r}; choose one of {', '.join(LOG_FILES)}")
        self.folder = Path(folder)
        self.fmt = fmt
        self.enabled = enabled
        self.interval = interval
        self._pending: collections.deque[CallRecord] = collections.deque()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._fd: int | None = None
        self.failed: str | None = None  # why the last write failed, if it did

    @property
    def path(self) -> Path:
        return self.folder / LOG_FILES[self.fmt]

    def write(self, record: CallRecord) -> None:
        if not self.enabled:
            return
        self._pending.append(record)  # deque.append and popleft are atomic: no lock on the call's path
        if self._thread is None:
            with self._write_lock:
                if self._thread is None and not self._closed:
                    self._thread = threading.Thread(target=self._run, name="llm-call-log", daemon=True)
                    self._thread.start()
                    _OPEN_LOGS.add(self)

    def flush(self) -> None:
        """Write every record queued so far, now."""
        with self._write_lock:
            batch = []
            while self._pending:
                batch.append(self._pending.popleft())
            if batch:
                self._append_batch(batch)

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        self.flush()
        _OPEN_LOGS.discard(self)
        with self._write_lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.interval)
            self.flush()

    def _append_batch(self, batch: list[CallRecord]) -> None:
        render = getattr(self, f"_render_{self.fmt}")
        redact_text = redactor()
        parts = []
        clock = time.perf_counter
        due = clock() + HAND_OVER_AFTER
        for r in batch:
            parts.append(render(_redacted(r, redact_text)))
            # Hand the GIL over now and then: a thread waiting for it (the event loop's, with a model's answer
            # to read) would otherwise wait for the whole batch, up to the interpreter's 5 ms switch interval
            # at a time. Not after every record: each hand-over costs the waiting thread a wake-up.
            if clock() > due:
                time.sleep(0)
                due = clock() + HAND_OVER_AFTER
        text = "".join(parts)
        data = (redact(text) if self.fmt == "compact" else text).encode("utf-8")
        try:
            # One write() on an O_APPEND descriptor: batches from the magic and the server never interleave.
            if self._fd is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            os.write(self._fd, data)
        except OSError as exc:
            # A full disk must not break the agent; say so once, keep going.
            if self.failed is None:
                _log.warning("could not write the LLM call log %s: %s", self.path, exc)
            self.failed = str(exc)

    @staticmethod
    def _render_jsonl(r: CallRecord) -> str:
        return _encode_json(vars(r)) + "\n"

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
