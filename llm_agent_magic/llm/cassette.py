"""Record and replay model answers at the HTTP level.

A cassette is a JSONL file: a header line saying how it was made, then one
entry a call with the request's fingerprint, a short human summary of the
request and the response (status, headers, and the body as the chunks that
arrived, so streams replay as streams). Working below the ``ollama`` client
means replays exercise exactly the code paths of live calls.

The fingerprint covers what decides the answer (path, purpose, model, stream,
messages/prompt/input, format) and leaves out tuning that does not (options,
keep_alive). Volatile text - the clock, the data root, the working folder, the
session's folder - is replaced first by the exact texts registered in ``volatile``
(never guessed with patterns), so a notebook replays on another machine, another
day and in another time zone.

Cassettes are protocol-neutral: an OpenAI chat-completions request is fingerprinted as the Ollama request
that asks the same (``openai_wire.neutral_request``), and an answer recorded in one protocol is re-shaped
for the other when it is replayed (``openai_wire.from_ollama``/``to_ollama``). So one cassette replays to
either provider; the example notebooks' cassettes serve both.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import httpx

from .. import atomic, volatile
from ..exceptions import CassetteError, CassetteMiss
from . import openai_wire

FORMAT_VERSION = 1
#: The header every model call carries its purpose in (HTTP headers are case-insensitive).
PURPOSE_HEADER = "X-LLM-Agent-Purpose"
_FINGERPRINT_KEYS = ("model", "stream", "messages", "prompt", "system", "input", "format", "tools", "query")


def _scrubbed(value: Any, items: dict[str, str]) -> Any:
    """``value`` with the volatile texts ``items`` replaced in every string it holds (before JSON escapes them)."""
    if isinstance(value, str):
        return volatile.scrub(value, items)
    if isinstance(value, dict):
        return {k: _scrubbed(v, items) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v, items) for v in value]
    return value


class Cassette:
    """The entries of one cassette file, indexed by fingerprint."""

    def __init__(self, path: str | os.PathLike[str], *, scrub_literals: Iterable[str] = (), source: str = ""):
        self.path = Path(path)
        self.header: dict[str, Any] = {"llm_agent_cassette": FORMAT_VERSION, "source": source}
        self.entries: list[dict[str, Any]] = []
        self._by_fp: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._cursor: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        for literal in scrub_literals:
            volatile.register_path(literal)

    # --- file -----------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str], **kwargs: Any) -> Cassette:
        cassette = cls(path, **kwargs)
        try:
            lines = cassette.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise CassetteError(
                f"Cassette {path} does not exist. Record it first with a live model (record mode), or check the path."
            ) from None
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CassetteError(
                    f"Cassette {path} line {number} is not valid JSON ({exc.msg}); the file may have been cut off. "
                    f"Record it again, or delete the broken line."
                ) from None
            if "llm_agent_cassette" in item:
                cassette.header = item
            else:
                cassette._add(item)
        return cassette

    def save(self) -> None:
        lines = [json.dumps(self.header, ensure_ascii=False)]
        lines += [json.dumps(e, ensure_ascii=False) for e in self.entries]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(self.path, "\n".join(lines) + "\n")

    def _add(self, entry: dict[str, Any]) -> None:
        self.entries.append(entry)
        self._by_fp[entry["fingerprint"]].append(entry)

    # --- requests -------------------------------------------------------------------
    def describe(self, request: httpx.Request) -> dict[str, Any]:
        """What identifies a request: its fingerprint and a summary a person can read."""
        try:
            body = json.loads(request.content or b"{}")
        except json.JSONDecodeError:
            body = {"raw": request.content.decode("utf-8", "replace")}
        if not isinstance(body, dict):
            body = {"raw": body}
        purpose = request.headers.get(PURPOSE_HEADER, "")
        path, neutral = openai_wire.neutral_request(request.url.path, body)
        key = {"path": path, "purpose": purpose}
        key.update({k: neutral[k] for k in _FINGERPRINT_KEYS if k in neutral})
        canonical = json.dumps(_scrubbed(key, volatile.texts()), sort_keys=True, ensure_ascii=False)
        last = ""
        if isinstance(body.get("messages"), list) and body["messages"]:
            last = str(body["messages"][-1].get("content", ""))
        else:
            last = str(next((body[k] for k in ("prompt", "input", "query") if k in body), ""))
        return {
            "fingerprint": hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32],
            "path": request.url.path,
            "purpose": purpose,
            "model": body.get("model", ""),
            "excerpt": " ".join(last.split())[:160],
            # What the replay needs to re-shape an answer for the other protocol (not part of the fingerprint).
            "stream": body.get("stream") is True,
            "include_usage": isinstance(body.get("stream_options"), dict) and body["stream_options"].get("include_usage") is True,
        }

    def holds(self, path: str) -> bool:
        """Whether any recorded request went to ``path`` (``/search``: a web search was recorded)."""
        with self._lock:
            return any(e.get("path") == path for e in self.entries)

    def next_response(self, fingerprint: str) -> dict[str, Any] | None:
        """Recorded answers to the same request are served in order; the last one repeats after that."""
        with self._lock:
            found = self._by_fp.get(fingerprint)
            if not found:
                return None
            index = min(self._cursor[fingerprint], len(found) - 1)
            self._cursor[fingerprint] += 1
            return found[index]

    def record(self, summary: dict[str, Any], status: int, headers: dict[str, str], chunks: list[str]) -> None:
        with self._lock:
            kept = {k: v for k, v in summary.items() if k not in ("stream", "include_usage")}
            entry = dict(kept, recorded_at=time.time(), response={"status": status, "headers": headers, "chunks": chunks})
            self._add(entry)
            models = sorted({e.get("model", "") for e in self.entries} - {""})
            self.header["models"] = models
            self.header.setdefault("created", volatile.now().isoformat(timespec="seconds"))
            self.save()

    def miss_message(self, summary: dict[str, Any]) -> str:
        same_purpose = sum(1 for e in self.entries if e.get("purpose") == summary["purpose"])
        return (
            f"purpose={summary['purpose'] or '?'} model={summary['model'] or '?'} path={summary['path']} "
            f"last message {summary['excerpt']!r} (the cassette holds {same_purpose} answer(s) for this purpose, "
            f"{len(self.entries)} in all)"
        )


class _ReplayStream(httpx.AsyncByteStream):
    def __init__(self, chunks: list[str]):
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk.encode("utf-8")


class _RecordingStream(httpx.AsyncByteStream):
    """Passes the live body through and saves it once it has arrived whole. A server-sent-events body is whole
    at its ``[DONE]`` event: the openai client stops reading there and closes the response."""

    def __init__(self, inner: httpx.Response, on_complete: Any):
        self._inner = inner
        self._on_complete = on_complete
        self._chunks: list[str] = []
        self._saved = False

    def _save(self) -> None:
        if not self._saved:
            self._saved = True
            self._on_complete(self._chunks)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for raw in self._inner.aiter_raw():
            self._chunks.append(raw.decode("utf-8", "replace"))
            yield raw
        self._save()

    async def aclose(self) -> None:
        if self._chunks and self._chunks[-1].rstrip().endswith(openai_wire.SSE_DONE.strip()):
            self._save()
        await self._inner.aclose()


class CassetteTransport(httpx.AsyncBaseTransport):
    """An httpx transport that records through ``inner`` or replays with no network at all."""

    def __init__(self, cassette: Cassette, mode: str, inner: httpx.AsyncBaseTransport | None = None):
        if mode not in ("record", "replay"):
            raise ValueError(f"cassette mode must be 'record' or 'replay', not {mode!r}")
        if mode == "record" and inner is None:
            raise ValueError("record mode needs a live transport to record from")
        self.cassette = cassette
        self.mode = mode
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        summary = self.cassette.describe(request)
        if self.mode == "replay":
            entry = self.cassette.next_response(summary["fingerprint"])
            if entry is None:
                raise CassetteMiss(str(self.cassette.path), self.cassette.miss_message(summary))
            resp = entry["response"]
            headers, chunks = resp.get("headers", {}), resp["chunks"]
            recorded, asked = entry.get("path", ""), summary["path"]
            if openai_wire.is_openai(asked) != openai_wire.is_openai(recorded):
                kind = openai_wire.kind_of(asked)
                if openai_wire.is_openai(asked):
                    headers, chunks = openai_wire.from_ollama(
                        kind, resp["status"], chunks, stream=summary["stream"], include_usage=summary["include_usage"]
                    )
                else:
                    headers, chunks = openai_wire.to_ollama(kind, resp["status"], chunks, stream=summary["stream"])
            return httpx.Response(resp["status"], headers=headers, stream=_ReplayStream(chunks))

        assert self.inner is not None
        request.headers["accept-encoding"] = "identity"  # record the body as text, not compressed bytes
        live = await self.inner.handle_async_request(request)
        headers = {k: v for k, v in live.headers.items() if k.lower() in ("content-type",)}

        def done(chunks: list[str]) -> None:
            if live.status_code < 500:  # a server error is not an answer worth replaying
                self.cassette.record(summary, live.status_code, headers, chunks)

        return httpx.Response(
            live.status_code, headers=live.headers, stream=_RecordingStream(live, done), extensions=live.extensions
        )

    async def aclose(self) -> None:
        if self.inner is not None:
            await self.inner.aclose()


class SharedTransport(httpx.AsyncBaseTransport):
    """A view of another transport that a second httpx client may use and close without closing it."""

    def __init__(self, inner: httpx.AsyncBaseTransport):
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        """The owner of ``inner`` closes it."""
