"""A scripted stand-in for the Ollama server, for tests.

`FakeOllama` is a real HTTP server on 127.0.0.1 that speaks the parts of Ollama's API
the official `ollama` client uses (`/api/chat`, `/api/generate`, `/api/embed`,
`/api/embeddings`, `/api/tags`, `/api/show`, `/api/version`, `/api/ps`) and the parts
of the OpenAI API the official `openai` client uses for an OpenAI-compatible server
(`/v1/chat/completions`, streamed as server-sent events or not, `/v1/embeddings`,
`/v1/models`), both from the same script. Instead of a
model it follows a script, so a test can say what "the model" answers to which call,
inject failures, and then assert on the requests it received::

    with FakeOllama({"rules": [{"purpose": "classify",
                                "reply": {"mode": "chat", "reason": "small talk"}}],
                     "default": "Hello!"}) as server:
        client = ollama.Client(host=server.url)
        ...
        assert server.requests_for("classify")

Script keys (a dict, or a path to a JSON file holding one):

- ``rules``: list of rules, tried in order; the first that applies answers. Rule keys:
  ``purpose`` (compared, case-insensitively, with the ``X-LLM-Agent-Purpose`` header),
  ``match`` (regex, ``re.search`` with DOTALL over the request rendered as
  ``role: content`` lines), ``match_last`` (regex over the last message only: what the
  model is asked now, in a conversation that keeps everything asked before), ``reply``
  (text, or any JSON value sent as its JSON text; absent: the script's default), ``thinking`` (text sent as the model's thinking),
  ``times`` (how often the rule may fire; absent: always), ``fault`` (one of
  `FAULTS`), ``delay_ms`` (before answering), ``token_delay_ms`` (between streamed
  chunks), ``wait_for`` (hold the answer until that many requests have been in flight
  at once, or 30 s have passed: a barrier that shows concurrency without timing).
- ``default``: the reply when no rule applies (``"OK"``).
- ``models``: the installed models; other names get Ollama's 404. Absent: any name works.
- ``embedding_dim``: length of embedding vectors (64).
- ``api_key``: the key ``/v1/...`` requests must carry (``Authorization: Bearer KEY``);
  others get a 401. Absent: no key needed, as with a local vLLM or llama.cpp server.
- ``refuse_fields``: request fields ``/v1/chat/completions`` answers with a 400 naming
  them (``response_format``, ``stream_options``, ``chat_template_kwargs``), as servers do
  that do not support them.
- ``description``: free text for the humans reading the script.

``max_in_flight`` tells the most requests the server was answering at once (for tests
of concurrency; ``delay_ms`` keeps a request in flight).

Faults, as the client sees them: ``http_500`` is a 500 with ``{"error": ...}``
(`ollama.ResponseError`); ``timeout`` never answers, so the client's own timeout fires;
``truncated_stream`` hangs up halfway (no ``done`` part; `httpx.RemoteProtocolError`);
``malformed_json`` sends a body, or one NDJSON line, that is not JSON. A faulty rule
counts against its ``times`` like any other, so a fault with ``"times": 1`` followed by
a normal rule scripts a failure and a successful retry.

Embedding requests are answered from the text itself (`embed_text`), never from a
reply; only rules that name a ``purpose`` see them, so that catch-all chat rules do not
get used up by embeddings while ``{"purpose": "embed", "fault": "http_500"}`` still can.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import re
import select
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from typing import Any

from ..llm import openai_wire
from ..llm.cassette import PURPOSE_HEADER
from ..text import full_model_name
from ._background import BackgroundServer, QuietHTTPServer, serve_until_signal
from ._script import Scripted, ScriptReader, ScriptSource

__all__ = [
    "FAULTS",
    "PURPOSE_HEADER",
    "FakeOllama",
    "RecordedRequest",
    "embed_text",
    "load_script",
    "serve_forever_cli",
    "split_into_chunks",
]

FAULTS = ("http_500", "timeout", "truncated_stream", "malformed_json")
DEFAULT_MODELS = ("qwen3:8b", "nomic-embed-text")
DEFAULT_REPLY = "OK"
DEFAULT_EMBEDDING_DIM = 64
FAKE_OLLAMA_VERSION = "0.12.0"
# A "timeout" fault holds the request open at most this long, so a test that forgot a
# client timeout fails slowly instead of hanging CI forever.
MAX_HANG_SECONDS = 60.0
# Chosen to be obviously not JSON in a failure message, and not an Ollama error object.
MALFORMED_JSON = b'{"model": <fake-ollama: scripted malformed_json>'

_RULE_KEYS = frozenset(
    {"purpose", "match", "match_last", "reply", "thinking", "times", "fault", "delay_ms", "token_delay_ms", "wait_for"}
)
_SCRIPT_KEYS = frozenset({"rules", "default", "models", "embedding_dim", "description", "api_key", "refuse_fields"})
_CHAT_PATHS = ("/api/chat", "/v1/chat/completions")
_OPENAI_POSTS = ("/v1/chat/completions", "/v1/embeddings")


_log = logging.getLogger(__name__)


# --- the script ---------------------------------------------------------------------


@dataclass
class _Rule:
    index: int
    purpose: str | None = None
    match: re.Pattern[str] | None = None
    match_last: re.Pattern[str] | None = None
    reply: str | None = None
    thinking: str | None = None
    times: int | None = None
    fault: str | None = None
    delay_ms: float = 0
    token_delay_ms: float = 0
    wait_for: int = 0
    fired: int = 0

    def applies(self, purpose: str | None, text: str, last: str, *, embedding: bool) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        if self.purpose is None:
            if embedding:
                return False
        elif purpose is None or purpose.casefold() != self.purpose.casefold():
            return False
        if self.match_last is not None and self.match_last.search(last) is None:
            return False
        return self.match is None or self.match.search(text) is not None


@dataclass
class _Script:
    rules: list[_Rule] = field(default_factory=list)
    default: str = DEFAULT_REPLY
    models: tuple[str, ...] | None = None
    embedding_dim: int = DEFAULT_EMBEDDING_DIM
    api_key: str | None = None
    refuse_fields: tuple[str, ...] = ()


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


_READER = ScriptReader("fake-ollama")


def _parse_rule(index: int, raw: Any) -> _Rule:
    where = f"rule {index}"
    raw = _READER.object(where, raw, _RULE_KEYS)
    for key in ("purpose", "thinking"):
        if key in raw and not isinstance(raw[key], str):
            raise _READER.problem(where, f"{key!r} must be a string")
    rule = _Rule(index=index, purpose=raw.get("purpose"), thinking=raw.get("thinking"))
    rule.match = _READER.regex(where, raw, "match")
    rule.match_last = _READER.regex(where, raw, "match_last")
    if "reply" in raw:
        rule.reply = _as_text(raw["reply"])
    rule.times = _READER.times(where, raw)
    rule.fault = _READER.choice(where, raw, "fault", FAULTS)
    rule.delay_ms = _READER.number(where, raw, "delay_ms")
    rule.token_delay_ms = _READER.number(where, raw, "token_delay_ms")
    rule.wait_for = int(_READER.number(where, raw, "wait_for"))
    return rule


def _parse_script(raw: Mapping[str, Any]) -> _Script:
    raw = _READER.object("", raw, _SCRIPT_KEYS)
    script = _Script(rules=[_parse_rule(i, rule) for i, rule in enumerate(_READER.rules(raw))])
    if "default" in raw:
        script.default = _as_text(raw["default"])
    if "models" in raw:
        models = raw["models"]
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise _READER.problem("", "'models' must be a list of model names")
        script.models = tuple(models)
    if "embedding_dim" in raw:
        dim = raw["embedding_dim"]
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise _READER.problem("", "'embedding_dim' must be a whole number >= 1")
        script.embedding_dim = dim
    if "api_key" in raw:
        if not isinstance(raw["api_key"], str) or not raw["api_key"]:
            raise _READER.problem("", "'api_key' must be a non-empty string")
        script.api_key = raw["api_key"]
    if "refuse_fields" in raw:
        fields = raw["refuse_fields"]
        if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
            raise _READER.problem("", "'refuse_fields' must be a list of request field names")
        script.refuse_fields = tuple(fields)
    return script


def load_script(source: ScriptSource) -> dict[str, Any]:
    """Return the script from a dict or a JSON file, raising ValueError if it is invalid."""
    raw = _READER.load(source)
    _parse_script(raw)
    return raw


# --- what the "model" produces ------------------------------------------------------

_CHUNK = re.compile(r"\s*\S+\s*|\s+")
_WORD = re.compile(r"\w+")


def split_into_chunks(text: str) -> list[str]:
    """Split text the way the fake streams it: each word with the whitespace after it.

    Every character is kept, so ``"".join(split_into_chunks(t)) == t``.
    """
    return _CHUNK.findall(text)


def embed_text(text: str, dim: int = DEFAULT_EMBEDDING_DIM) -> list[float]:
    """A deterministic stand-in for an embedding model: a hashed bag of lowercase words.

    Texts that share words get close vectors, so retrieval code can be tested for real.
    """
    vector = [0.0] * dim
    # An empty text still gets a unit vector: cosine similarity with zeros is undefined.
    for word in _WORD.findall(text.lower()) or [""]:
        digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
        vector[int.from_bytes(digest, "big") % dim] += 1.0
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector]


def _last_message(path: str, body: Mapping[str, Any]) -> str:
    """What ``match_last`` sees: the content of the last message (for generate and embed: the prompt or input)."""
    if path in _CHAT_PATHS:
        messages = [m for m in body.get("messages") or [] if isinstance(m, Mapping)]
        return str(messages[-1].get("content") or "") if messages else ""
    return _render_request(path, body)


def _render_request(path: str, body: Mapping[str, Any]) -> str:
    """The text that rule regexes see: one ``role: content`` line per message."""
    if path in _CHAT_PATHS:
        lines = [f"{m.get('role', '')}: {m.get('content') or ''}" for m in body.get("messages") or [] if isinstance(m, Mapping)]
    elif path == "/api/generate":
        lines = [f"user: {body.get('prompt') or ''}"]
        if body.get("system"):
            lines.insert(0, f"system: {body['system']}")
    else:
        inputs = body.get("input", body.get("prompt", ""))
        lines = [inputs] if isinstance(inputs, str) else [str(i) for i in inputs or []]
    return "\n".join(lines)


def _prompt_word_count(path: str, body: Mapping[str, Any]) -> int:
    rendered = _render_request(path, body)
    if path in _CHAT_PATHS or path == "/api/generate":
        # Don't count the "role:" prefixes we added; Ollama counts what the user sent.
        rendered = re.sub(r"^\w+: ", "", rendered, flags=re.MULTILINE)
    return len(rendered.split())


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _timings(prompt_tokens: int, eval_tokens: int, started_ns: int) -> dict[str, int]:
    load, prompt_eval, evaluation = 1_000_000, 100_000 * prompt_tokens, 1_000_000 * eval_tokens
    spent = time.monotonic_ns() - started_ns
    return {
        "total_duration": load + prompt_eval + evaluation + spent,
        "load_duration": load,
        "prompt_eval_count": prompt_tokens,
        "prompt_eval_duration": prompt_eval,
        "eval_count": eval_tokens,
        "eval_duration": evaluation,
    }


def _generation(
    path: str,
    model: str,
    reply: str,
    thinking: str | None,
    prompt_tokens: int,
    stream: bool,
    started_ns: int,
) -> dict[str, Any] | list[dict[str, Any]]:
    """The whole response, or the NDJSON parts of a streamed one, for chat or generate."""
    pieces: list[tuple[str | None, str | None]] = [(None, t) for t in split_into_chunks(thinking or "")]
    pieces += [(c, None) for c in split_into_chunks(reply)]

    def shaped(content: str, thinking_part: str | None, **extra: Any) -> dict[str, Any]:
        if path == "/api/chat":
            message = {"role": "assistant", "content": content}
            if thinking_part:
                message["thinking"] = thinking_part
            part = {"model": model, "created_at": _now(), "message": message}
        else:
            part = {"model": model, "created_at": _now(), "response": content}
            if thinking_part:
                part["thinking"] = thinking_part
        return {**part, **extra}

    final = {"done": True, "done_reason": "stop"}
    if path == "/api/generate":
        final["context"] = []
    timings = _timings(prompt_tokens, len(pieces), started_ns)
    if not stream:
        return shaped(reply, thinking, **final, **timings)
    parts = [shaped(c or "", t, done=False) for c, t in pieces]
    return [*parts, shaped("", None, **final, **timings)]


def _openai_generation(model: str, reply: str, thinking: str | None, prompt_tokens: int, body: Mapping[str, Any]) -> _Plan:
    """A chat completion, whole or as the chunks of a stream (usage last when ``stream_options`` asks)."""
    pieces = [("", t) for t in split_into_chunks(thinking or "")] + [(c, "") for c in split_into_chunks(reply)]
    created = int(time.time())
    if body.get("stream") is not True:  # OpenAI answers whole unless told to stream
        return _Plan(body=openai_wire.completion(model, reply, thinking or "", prompt_tokens, len(pieces), created))
    options = body.get("stream_options")
    include_usage = isinstance(options, Mapping) and options.get("include_usage") is True
    chunks = openai_wire.chunks(model, pieces, prompt_tokens, len(pieces), include_usage=include_usage, created=created)
    return _Plan(parts=chunks, sse=True)


def _model_details(name: str) -> dict[str, Any]:
    family = re.split(r"[:\-]", name, maxsplit=1)[0] or name
    return {
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family],
        "parameter_size": "137M" if "embed" in name else "8.2B",
        "quantization_level": "F16" if "embed" in name else "Q4_K_M",
    }


def _model_entry(name: str) -> dict[str, Any]:
    digest = hashlib.sha256(name.encode()).hexdigest()
    return {
        "name": name,
        "model": name,
        "modified_at": "2025-01-01T00:00:00Z",
        "size": 274_302_450 if "embed" in name else 5_225_376_047,
        "digest": digest,
        "details": _model_details(name),
    }


def _capabilities(name: str) -> list[str]:
    capabilities = ["completion"]
    if "embed" in name:
        capabilities.append("embedding")
    if name.startswith("qwen3"):
        capabilities += ["tools", "thinking"]
    return capabilities


def _same_model(asked: str, installed: str) -> bool:
    return full_model_name(asked) == full_model_name(installed)  # Ollama's "qwen3" is "qwen3:latest"


# --- recording ----------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received, for assertions in tests."""

    method: str
    path: str
    headers: dict[str, str]  # keys lowercased
    body: Any  # parsed JSON, or None (GET, or a body that was not JSON)
    purpose: str | None
    rule_index: int | None  # which script rule answered; None for the default or no rule
    timestamp: float  # time.time() when it arrived

    @property
    def model(self) -> str | None:
        return self.body.get("model") if isinstance(self.body, Mapping) else None

    @property
    def text(self) -> str:
        """The request as rule regexes see it (``role: content`` lines)."""
        return _render_request(self.path, self.body) if isinstance(self.body, Mapping) else ""


@dataclass
class _Plan:
    """What to send back; the HTTP handler turns it into bytes (and faults)."""

    status: int = 200
    body: Any = None
    parts: list[dict[str, Any]] | None = None  # set for a streamed (NDJSON) answer
    rule: _Rule | None = None
    content_type: str = "application/json"
    sse: bool = False  # the parts go out as server-sent events (OpenAI), not NDJSON (Ollama)


def _error(status: int, message: str, path: str = "") -> _Plan:
    if path.startswith("/v1/"):
        return _Plan(status=status, body=openai_wire.error(status, message))
    return _Plan(status=status, body={"error": message})


# --- HTTP ----------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects from Ollama
    server_version = "fake-ollama"
    # Headers and body go out as separate small writes; with Nagle's algorithm on, the client's
    # delayed ACK would add ~40 ms to every call and hide the client's own costs in benchmarks.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._respond()

    def do_POST(self) -> None:
        self._respond()

    def do_HEAD(self) -> None:
        self._respond()

    def _respond(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = self.path.split("?", 1)[0]
        fake = self.server.fake
        with fake.counting():
            plan = fake._plan(self.command, path, headers, raw)
            rule = plan.rule
            if rule and rule.wait_for:
                fake.wait_for_in_flight(rule.wait_for, self.server.stopping)
            if rule and rule.delay_ms and self._pause(rule.delay_ms):
                return
            fault = rule.fault if rule else None
            if fault == "http_500":
                plan = _error(500, f"fake-ollama: scripted http_500 from rule {rule.index}", path)
            elif fault == "timeout":
                self._hang()
                return
            if plan.parts is None:
                self._send_whole(plan, fault)
            else:
                self._send_stream(plan, fault, rule.token_delay_ms if rule else 0)

    def _pause(self, milliseconds: float) -> bool:
        """Wait, but give up at once if the server stops; True means stopped."""
        if self.server.stopping.wait(milliseconds / 1000):
            self.close_connection = True
            return True
        return False

    def _hang(self) -> None:
        # Answer nothing until the client gives up (its socket becomes readable with EOF),
        # the server stops, or MAX_HANG_SECONDS pass; then drop the connection.
        self.close_connection = True
        deadline = time.monotonic() + MAX_HANG_SECONDS
        while not self.server.stopping.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if readable:
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return
                except OSError:
                    return
                self.server.stopping.wait(0.05)  # data, not EOF: don't spin

    def _send_whole(self, plan: _Plan, fault: str | None) -> None:
        body = plan.body if isinstance(plan.body, bytes) else json.dumps(plan.body).encode()
        if fault == "malformed_json":
            body = MALFORMED_JSON
        self.send_response(plan.status)
        self.send_header("Content-Type", plan.content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if fault == "truncated_stream":
            # Promise the whole body, send half, hang up: the client sees a broken read.
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        self.wfile.write(body)

    def _send_stream(self, plan: _Plan, fault: str | None, delay_ms: float) -> None:
        parts = plan.parts or []
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream" if plan.sse else "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def frame(data: bytes) -> bytes:
            return b"data: " + data + b"\n\n" if plan.sse else data + b"\n"

        # Faults strike halfway, never at the final (done) part, so some text arrives first.
        cut = min(len(parts) // 2, len(parts) - 1)
        for i, part in enumerate(parts):
            if i == cut and fault == "truncated_stream":
                self.close_connection = True  # no done part, no terminating chunk
                return
            if i == cut and fault == "malformed_json":
                self._write_chunk(frame(MALFORMED_JSON))
            self._write_chunk(frame(json.dumps(part).encode()))
            if delay_ms and i < len(parts) - 1 and self._pause(delay_ms):
                return
        if plan.sse:
            self._write_chunk(openai_wire.SSE_DONE.encode())
        self.wfile.write(b"0\r\n\r\n")

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))


class _Server(QuietHTTPServer):
    def __init__(self, address: tuple[str, int], fake: FakeOllama) -> None:
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._connections_lock = threading.Lock()
        super().__init__(address, fake, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            daemon=True,
            name=f"fake-ollama-connection-{client_address[1]}",
        )
        with self._connections_lock:
            self._connections[request] = thread
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.pop(request, None)

    def close_connections(self, timeout: float) -> None:
        with self._connections_lock:
            connections = list(self._connections.items())
        for sock, _ in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a handler blocked on read or write
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for _, thread in connections:
            thread.join(max(0.0, deadline - time.monotonic()))


# --- the public object ---------------------------------------------------------------


class FakeOllama(Scripted, BackgroundServer):
    """A scripted, Ollama-compatible HTTP server running in a background thread.

    Use it as a context manager (sync or async), or call `start()` and `stop()`.
    """

    label = "fake-ollama"

    def __init__(self, script: ScriptSource = None, *, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host, port)
        self._lock = threading.Lock()
        self._in_flight_changed = threading.Condition(self._lock)
        self._script = _Script()
        self._requests: list[RecordedRequest] = []
        self._loaded: dict[str, None] = {}  # models used so far, for /api/ps; ordered
        self._in_flight = 0
        self.max_in_flight = 0  # the most requests answered at once
        self.load(script)

    # lifecycle

    def _make_server(self) -> _Server:
        return _Server((self.host, self._requested_port), self)

    def _release(self, server: _Server) -> None:
        server.close_connections(timeout=1.0)

    def __repr__(self) -> str:
        where = self.url if self._server else "stopped"
        return f"<FakeOllama {where}, {len(self._script.rules)} rules>"

    # the script

    reader = _READER

    def parse_script(self, raw: Mapping[str, Any]) -> _Script:
        return _parse_script(raw)

    def parse_rule(self, index: int, raw: Any) -> _Rule:
        return _parse_rule(index, raw)

    def unused_rules(self) -> list[int]:
        """Indexes of rules that never fired: scripted calls the code under test never made."""
        with self._lock:
            return [rule.index for rule in self._script.rules if rule.fired == 0]

    # recorded requests

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, purpose: str) -> list[RecordedRequest]:
        wanted = purpose.casefold()
        return [r for r in self.requests if r.purpose and r.purpose.casefold() == wanted]

    @property
    def last_request(self) -> RecordedRequest | None:
        with self._lock:
            return self._requests[-1] if self._requests else None

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # answering (called from handler threads)

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        """Count one request in flight while it is answered."""
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            self._in_flight_changed.notify_all()
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                self._in_flight_changed.notify_all()

    def wait_for_in_flight(self, count: int, stopping: threading.Event) -> bool:
        """Block until ``count`` requests have been in flight at once (True), or 30 s pass or the server stops.
        The most at once, not the number now: the request that made it ``count`` may already be answered."""
        deadline = time.monotonic() + MAX_HANG_SECONDS / 2
        with self._in_flight_changed:
            while self.max_in_flight < count and not stopping.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._in_flight_changed.wait(min(left, 0.1))
            return self.max_in_flight >= count

    def _plan(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> _Plan:
        started = time.monotonic_ns()
        purpose = headers.get(PURPOSE_HEADER.lower())
        body: Any = None
        bad_body = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError as exc:
                bad_body = f"invalid request body: {exc}"
        with self._lock:
            rule = None
            try:
                plan = self._route(method, path, headers, body, bad_body, purpose, started)
                rule = plan.rule
            finally:
                self._requests.append(
                    RecordedRequest(
                        method=method,
                        path=path,
                        headers=headers,
                        body=body,
                        purpose=purpose,
                        rule_index=rule.index if rule else None,
                        timestamp=time.time(),
                    )
                )
        return plan

    def _route(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: Any,
        bad_body: str | None,
        purpose: str | None,
        started: int,
    ) -> _Plan:
        script = self._script
        if method in ("GET", "HEAD"):
            return self._route_get(path, headers)
        refused = self._refusal(path, headers, body, bad_body)
        if refused is not None:
            return refused
        model = body["model"]
        if path == "/api/show":
            return _Plan(body=self._show(model))
        embedding = path in ("/api/embed", "/api/embeddings", "/v1/embeddings")
        text = _render_request(path, body)
        last = _last_message(path, body)
        rule = next((r for r in script.rules if r.applies(purpose, text, last, embedding=embedding)), None)
        if rule is not None:
            rule.fired += 1
        self._loaded[model] = None
        prompt_tokens = _prompt_word_count(path, body)
        if embedding:
            plan = self._embedding(path, model, body, prompt_tokens, started)
        elif path == "/v1/chat/completions":
            reply = rule.reply if rule and rule.reply is not None else script.default
            plan = _openai_generation(model, reply, rule.thinking if rule else None, prompt_tokens, body)
        else:
            reply = rule.reply if rule and rule.reply is not None else script.default
            thinking = rule.thinking if rule else None
            stream = body.get("stream", True) is not False  # Ollama streams unless told not to
            answer = _generation(path, model, reply, thinking, prompt_tokens, stream, started)
            plan = _Plan(parts=answer) if isinstance(answer, list) else _Plan(body=answer)
        plan.rule = rule
        return plan

    def _route_get(self, path: str, headers: Mapping[str, str]) -> _Plan:
        if path == "/":
            return _Plan(body=b"Ollama is running", content_type="text/plain; charset=utf-8")
        if path == "/api/version":
            return _Plan(body={"version": FAKE_OLLAMA_VERSION})
        if path == "/api/tags":
            return _Plan(body={"models": [_model_entry(m) for m in self._installed()]})
        if path == "/api/ps":
            return _Plan(body={"models": [self._running_entry(m) for m in self._loaded]})
        if path == "/v1/models":
            return self._refused_key(path, headers) or _Plan(body=openai_wire.models(self._installed()))
        return _error(404, "404 page not found", path)

    def _refusal(self, path: str, headers: Mapping[str, str], body: Any, bad_body: str | None) -> _Plan | None:
        """The error a POST gets as the real server would answer it (unknown path, key, body, model); None if none."""
        script = self._script
        if path not in ("/api/chat", "/api/generate", "/api/embed", "/api/embeddings", "/api/show", *_OPENAI_POSTS):
            return _error(404, "404 page not found", path)
        refused = self._refused_key(path, headers)
        if refused:
            return refused
        if bad_body or not isinstance(body, Mapping):
            return _error(400, bad_body or "invalid request body: expected a JSON object", path)
        model = body.get("model")
        if not model or not isinstance(model, str):
            return _error(400, "model is required", path)
        if script.models is not None and not any(_same_model(model, m) for m in script.models):
            if path.startswith("/v1/"):
                return _error(404, f"The model `{model}` does not exist.", path)
            return _error(404, f'model "{model}" not found, try pulling it first')
        if path == "/v1/chat/completions":
            unsupported = [f for f in script.refuse_fields if f in body]
            if unsupported:
                return _error(400, f"{unsupported[0]} is not supported by this server", path)
        return None

    def _refused_key(self, path: str, headers: Mapping[str, str]) -> _Plan | None:
        """A 401 for an OpenAI-protocol request without the script's ``api_key``."""
        key = self._script.api_key
        if key is None or not path.startswith("/v1/"):
            return None
        sent = headers.get("authorization", "")
        if sent == f"Bearer {key}":
            return None
        return _error(401, "Incorrect API key provided." if sent else "Missing API key.", path)

    def _embedding(self, path: str, model: str, body: Mapping[str, Any], prompt_tokens: int, started: int) -> _Plan:
        dim = body.get("dimensions") or self._script.embedding_dim
        if path == "/v1/embeddings":
            inputs = body.get("input", "")
            texts = [inputs] if isinstance(inputs, str) else [str(t) for t in inputs]
            return _Plan(body=openai_wire.embeddings(model, [embed_text(t, dim) for t in texts], prompt_tokens))
        if path == "/api/embeddings":
            return _Plan(body={"embedding": embed_text(body.get("prompt") or "", dim)})
        inputs = body.get("input", "")
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        timings = _timings(prompt_tokens, 0, started)
        return _Plan(
            body={
                "model": model,
                "embeddings": [embed_text(str(t), dim) for t in texts],
                "total_duration": timings["total_duration"],
                "load_duration": timings["load_duration"],
                "prompt_eval_count": prompt_tokens,
            }
        )

    def _installed(self) -> tuple[str, ...]:
        return self._script.models if self._script.models is not None else DEFAULT_MODELS

    def _show(self, model: str) -> dict[str, Any]:
        details = _model_details(model)
        family = details["family"]
        return {
            "license": "",
            "modelfile": f"# Modelfile generated by fake-ollama\nFROM {model}\n",
            "parameters": "",
            "template": "{{ .Prompt }}",
            "details": details,
            "model_info": {
                "general.architecture": family,
                f"{family}.context_length": 40960,
                f"{family}.embedding_length": 768 if "embed" in model else 4096,
            },
            "capabilities": _capabilities(model),
            "modified_at": "2025-01-01T00:00:00Z",
        }

    def _running_entry(self, model: str) -> dict[str, Any]:
        entry = _model_entry(model)
        del entry["modified_at"]
        return {**entry, "expires_at": "2099-01-01T00:00:00Z", "size_vram": entry["size"], "context_length": 4096}


def serve_forever_cli(script_path: str | None, port: int, host: str = "127.0.0.1") -> None:
    """Serve a script until SIGINT or SIGTERM (for ``llm-agent fake-ollama``)."""
    serve_until_signal(FakeOllama(script_path, host=host, port=port), "fake-ollama")
