"""The one way the agent talks to a model: a thin layer over ``ollama.AsyncClient``.

What it adds to the official client, and why:
- ``num_ctx``, temperature and keep_alive on every request (Ollama silently
  truncates prompts to its small default context otherwise);
- the call's purpose in the ``X-LLM-Agent-Purpose`` header and the call log;
- thinking kept out of answers, whole or streamed;
- JSON answers read defensively, with one repair round trip to the model;
- secrets redacted from every message and text before it leaves (``llm_agent_magic.redaction``): the
  model never sees a key, token or password of the user's environment, whatever the purpose;
- errors that say what to do (Ollama down, model not pulled, timeout,
  context overflow), with bounded retries for HTTP 5xx and garbled replies (one loop,
  ``_with_retries``, on tenacity; a stream is retried only until it shows text, ``stream.py``);
- record/replay cassettes, below the client, at the HTTP level.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn, TypeVar

import httpx
import ollama
import pydantic
import tenacity

from ..config import LLMConfig, PathsConfig
from ..exceptions import (
    CassetteError,
    ContextOverflow,
    JSONReplyError,
    LLMError,
    LLMProtocolError,
    LLMServerError,
    LLMTimeout,
    ModelNotFound,
    OllamaUnavailable,
    StructuredOutputError,
)
from ..prompts import render_prompt
from ..redaction import redact, redact_messages_off_loop
from ..text import estimate_tokens as text_tokens
from .calllog import CallLog, CallRecord
from .cassette import PURPOSE_HEADER, Cassette, CassetteTransport, SharedTransport
from .stream import ChatStream
from .structured import parse_json_reply
from .thinking import strip_thinking

PURPOSES = ("classify", "plan", "react", "code", "verify", "fix", "answer", "summarize", "embed")
Messages = Sequence[dict[str, Any]]
T = TypeVar("T")


@dataclass
class ChatResult:
    """A whole answer, with thinking removed, and what it cost."""

    content: str
    model: str
    purpose: str
    thinking: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    duration_ms: float = 0.0
    call_id: str = ""


@dataclass
class StructuredResult:
    value: Any
    raw: str
    repaired: bool = False
    calls: list[ChatResult] = field(default_factory=list)


def _role_messages(messages: Messages) -> list[dict[str, str]]:
    return [{"role": str(m.get("role", "user")), "content": str(m.get("content", ""))} for m in messages]


def estimate_tokens(messages: Messages) -> int:
    return sum(text_tokens(str(m.get("content", ""))) for m in messages)


class LLMClient:
    """Chat, streaming, structured output, embeddings and model listing against one Ollama server."""

    def __init__(
        self,
        config: LLMConfig | None = None,
        *,
        paths: PathsConfig | None = None,
        call_log: CallLog | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.config = config or LLMConfig()
        self.paths = paths or PathsConfig(parent=getattr(self.config, "parent", None))
        self.call_log = call_log or CallLog(self.paths.logs_dir, fmt=self.config.log_format)
        self.cassette: Cassette | None = None
        self._transport = self._make_transport(transport)
        self._clients: dict[str, ollama.AsyncClient] = {}
        self._no_think_field: set[str] = set()

    # --- plumbing -------------------------------------------------------------------
    def _make_transport(self, transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncBaseTransport:
        live = transport or httpx.AsyncHTTPTransport()
        mode = self.config.cassette_mode
        if mode == "live":
            return live
        if not self.config.cassette_path:
            raise CassetteError(f"Cassette mode {mode!r} needs a cassette file: set LLMConfig.cassette_path.")
        scrub = [str(self.paths.root), os.getcwd()]
        if mode == "replay":
            self.cassette = Cassette.load(self.config.cassette_path, scrub_literals=scrub)
            return CassetteTransport(self.cassette, "replay")
        path = self.config.cassette_path
        self.cassette = Cassette.load(path, scrub_literals=scrub) if os.path.exists(path) else Cassette(
            path, scrub_literals=scrub, source=f"recorded from a live Ollama at {self.config.host}"
        )
        return CassetteTransport(self.cassette, "record", inner=live)

    def cassette_transport(self) -> httpx.AsyncBaseTransport | None:
        """When recording or replaying, a transport other HTTP clients (web search) can use so that their
        answers go into, and come from, the same cassette; ``None`` when live."""
        return SharedTransport(self._transport) if self.cassette is not None else None

    def _client(self, purpose: str) -> ollama.AsyncClient:
        # One client per purpose: the header is fixed per httpx client, and all of them share one
        # transport (one connection pool), so this costs nothing per call. Purpose "" is for
        # administrative requests (model list, version) that are not model calls.
        if purpose and purpose not in PURPOSES:
            raise ValueError(f"unknown call purpose {purpose!r}; expected one of {', '.join(PURPOSES)}")
        client = self._clients.get(purpose)
        if client is None:
            client = ollama.AsyncClient(
                host=self.config.host,
                headers={PURPOSE_HEADER: purpose} if purpose else None,
                transport=self._transport,
                timeout=httpx.Timeout(self.config.request_timeout, connect=min(10.0, self.config.request_timeout)),
            )
            self._clients[purpose] = client
        return client

    def options(self, purpose: str, temperature: float | None = None) -> dict[str, Any]:
        t = self.config.temperature_for(purpose) if temperature is None else temperature
        options: dict[str, Any] = {"num_ctx": self.config.num_ctx, "temperature": t}
        if self.config.seed is not None:
            options["seed"] = self.config.seed
        return options

    def _think_kwargs(self, model: str) -> dict[str, Any]:
        return {} if model in self._no_think_field else {"think": bool(self.config.think)}

    def _check_context(self, messages: Messages, purpose: str) -> None:
        needed = estimate_tokens(messages)
        if needed > self.config.num_ctx:
            raise ContextOverflow(needed, self.config.num_ctx, purpose)

    async def aclose(self) -> None:
        """Close the connection pool. The client is not usable afterwards."""
        self._clients.clear()
        self.call_log.close()
        await self._transport.aclose()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    # --- errors and retries -----------------------------------------------------------
    def _translate(self, exc: BaseException, model: str, purpose: str, attempts: int) -> LLMError | None:
        """The user-facing error for a failure talking to Ollama; None for anything else (a bug keeps its
        own exception and traceback)."""
        if isinstance(exc, LLMError):
            return exc
        if isinstance(exc, (ConnectionError, httpx.ConnectError)):
            return OllamaUnavailable(self.config.host)
        if isinstance(exc, httpx.TimeoutException):
            return LLMTimeout(self.config.request_timeout, purpose)
        if isinstance(exc, ollama.ResponseError):
            text = str(exc.error)
            if exc.status_code == 404 or "not found" in text and "model" in text:
                return ModelNotFound(model, self.config.host)
            if exc.status_code >= 500:
                return LLMServerError(exc.status_code, text, attempts)
            if "context" in text.lower() and ("exceed" in text.lower() or "too long" in text.lower()):
                return ContextOverflow(0, self.config.num_ctx, purpose)
            return LLMProtocolError(f"Ollama refused the {purpose!r} call: {text} (HTTP {exc.status_code}).")
        if isinstance(exc, (json.JSONDecodeError, pydantic.ValidationError)):
            return LLMProtocolError(
                f"Ollama's reply to the {purpose!r} call was not valid JSON ({exc.__class__.__name__}). "
                f"Is {self.config.host} really an Ollama server?"
            )
        if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
            return LLMProtocolError(f"The connection to Ollama broke during the {purpose!r} call ({exc}).")
        return None

    def _raise_translated(self, exc: BaseException, model: str, purpose: str, attempts: int) -> NoReturn:
        translated = self._translate(exc, model, purpose, attempts)
        if translated is None:
            raise exc
        raise translated from exc

    @staticmethod
    def _retryable(exc: BaseException) -> bool:
        if isinstance(exc, ollama.ResponseError):
            return exc.status_code >= 500
        return isinstance(
            exc, (json.JSONDecodeError, pydantic.ValidationError, httpx.RemoteProtocolError, httpx.ReadError)
        )

    def _unsupported_think(self, exc: BaseException, model: str) -> bool:
        if isinstance(exc, ollama.ResponseError) and "does not support thinking" in str(exc.error):
            self._no_think_field.add(model)
            return True
        return False

    async def _with_retries(self, call: Callable[[], Awaitable[T]], record: CallRecord) -> T:
        """``call()`` (one request to Ollama), tried again after what a second try may cure: an HTTP 5xx, a
        garbled or broken reply. At most ``max_retries`` more attempts, ``retry_backoff`` seconds apart, doubling
        each time; ``record.attempts`` counts them. A model that cannot think is sent the same request again
        without the think field, which is not an attempt. Failures leave translated (``_translate``).

        The one retry loop of the client: ``chat``, ``embed``, and the opening of a stream (up to its first
        visible text, since text already shown cannot be taken back; ``stream.py``).
        """

        async def attempt() -> T:
            try:
                return await call()
            except ollama.ResponseError as exc:
                if not self._unsupported_think(exc, record.model):
                    raise
            return await call()  # ``_think_kwargs`` leaves the field out from now on

        def count(state: tenacity.RetryCallState) -> None:
            record.attempts = state.attempt_number

        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception(self._retryable),
            stop=tenacity.stop_after_attempt(self.config.max_retries + 1),
            wait=tenacity.wait_exponential(multiplier=self.config.retry_backoff),
            before=count,
            reraise=True,
        )
        try:
            return await retrying(attempt)
        except Exception as exc:
            self._raise_translated(exc, record.model, record.purpose, record.attempts)

    def _record(
        self, messages: Messages, purpose: str, model: str, temperature: float | None, *, stream: bool = False
    ) -> CallRecord:
        record = CallRecord(purpose=purpose, model=model, messages=_role_messages(messages), stream=stream)
        record.options = self.options(purpose, temperature)
        return record

    def _finish(self, record: CallRecord, started: float, error: BaseException | None = None) -> None:
        record.duration_ms = (time.perf_counter() - started) * 1000
        if error is not None:
            stopped = isinstance(error, (asyncio.CancelledError, GeneratorExit))
            record.error = "cancelled" if stopped else str(error)
        self.call_log.write(record)

    @staticmethod
    def _result(record: CallRecord) -> ChatResult:
        """What the caller of a finished chat call gets: the record's answer, thinking and costs."""
        return ChatResult(
            content=record.response,
            model=record.model,
            purpose=record.purpose,
            thinking=record.thinking,
            prompt_tokens=record.prompt_tokens,
            completion_tokens=record.completion_tokens,
            duration_ms=record.duration_ms,
            call_id=record.call_id,
        )

    # --- calls ------------------------------------------------------------------------
    async def chat(
        self,
        messages: Messages,
        *,
        purpose: str,
        model: str | None = None,
        format: dict[str, Any] | Literal["", "json"] | None = None,
        temperature: float | None = None,
    ) -> ChatResult:
        """One whole answer."""
        messages = await redact_messages_off_loop(messages)
        model = model or self.config.model_for(purpose)
        record = self._record(messages, purpose, model, temperature)
        started = time.perf_counter()
        try:
            self._check_context(messages, purpose)
            client = self._client(purpose)

            async def call() -> ollama.ChatResponse:
                return await client.chat(
                    model=model,
                    messages=list(messages),
                    format=format,
                    options=record.options,
                    keep_alive=self.config.keep_alive,
                    stream=False,
                    **self._think_kwargs(model),
                )

            resp = await self._with_retries(call, record)
        except BaseException as exc:
            self._finish(record, started, exc)
            raise
        raw = resp.message.content or ""
        content = strip_thinking(raw)
        thinking = (resp.message.thinking or "") + (raw[: len(raw) - len(content)] if content != raw else "")
        record.response, record.thinking = content, thinking
        record.prompt_tokens, record.completion_tokens = resp.prompt_eval_count, resp.eval_count
        self._finish(record, started)
        return self._result(record)

    def stream_chat(
        self, messages: Messages, *, purpose: str, model: str | None = None, temperature: float | None = None
    ) -> ChatStream:
        """An answer token by token: ``async for text in client.stream_chat(...)``; ``.result`` at the end."""
        model = model or self.config.model_for(purpose)
        return ChatStream(self, messages, purpose=purpose, model=model, temperature=temperature)

    async def structured(
        self,
        messages: Messages,
        *,
        purpose: str,
        schema: dict[str, Any],
        model: str | None = None,
        temperature: float | None = None,
    ) -> StructuredResult:
        """A JSON answer matching ``schema``: asked for with Ollama's ``format``, read defensively, repaired once."""
        first = await self.chat(messages, purpose=purpose, model=model, format=schema, temperature=temperature)
        try:
            return StructuredResult(parse_json_reply(first.content, schema), first.content, calls=[first])
        except JSONReplyError as exc:
            reason = str(exc)
        repair = [
            *messages,
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": render_prompt("repair_json", reason=reason, schema=json.dumps(schema))},
        ]
        second = await self.chat(repair, purpose=purpose, model=model, format=schema, temperature=temperature)
        try:
            value = parse_json_reply(second.content, schema)
        except JSONReplyError as exc:
            raise StructuredOutputError(purpose, second.content, str(exc)) from None
        return StructuredResult(value, second.content, repaired=True, calls=[first, second])

    async def embed(self, texts: Sequence[str], *, model: str | None = None) -> list[list[float]]:
        """Embeddings of ``texts`` in order, sent in batches of ``embed_batch_size``."""
        model = model or self.config.embedding_model
        client = self._client("embed")
        vectors: list[list[float]] = []
        size = max(1, self.config.embed_batch_size)
        for start in range(0, len(texts), size):
            batch = [redact(t) for t in texts[start : start + size]]
            record = CallRecord(
                purpose="embed", model=model, messages=[{"role": "input", "content": t} for t in batch]
            )
            record.options = {"num_ctx": self.config.num_ctx}
            started = time.perf_counter()

            async def call(batch: list[str] = batch, options: dict[str, Any] = record.options) -> ollama.EmbedResponse:
                return await client.embed(model=model, input=batch, options=options, keep_alive=self.config.keep_alive)

            try:
                resp = await self._with_retries(call, record)
            except BaseException as exc:
                self._finish(record, started, exc)
                raise
            if len(resp.embeddings) != len(batch):
                error = LLMProtocolError(
                    f"Ollama returned {len(resp.embeddings)} embeddings for {len(batch)} texts with model {model!r}."
                )
                self._finish(record, started, error)
                raise error
            record.response = f"{len(batch)} vectors of dimension {len(resp.embeddings[0]) if batch else 0}"
            record.prompt_tokens = resp.prompt_eval_count
            self._finish(record, started)
            vectors.extend([list(v) for v in resp.embeddings])
        return vectors

    async def list_models(self) -> list[str]:
        """Names of the models the server has pulled."""
        try:
            resp = await self._client("").list()
        except Exception as exc:
            self._raise_translated(exc, "", "list models", 1)
        return sorted(m.model or "" for m in resp.models)

    async def version(self) -> str:
        """The server's version; raises ``OllamaUnavailable`` when nothing answers."""
        try:
            # ollama has no version() call; its private _request_raw is unannotated.
            response = await self._client("")._request_raw("GET", "/api/version")  # type: ignore[no-untyped-call]
            return str(response.json().get("version", "?"))
        except Exception as exc:
            self._raise_translated(exc, "", "version", 1)

