"""The one way the agent talks to a model: a thin layer over the official clients of its model servers.

Each model comes from a provider (``LLMConfig.provider``, or a ``provider:`` prefix on the model's name):
``ollama`` (``ollama.AsyncClient``) or ``openai`` (``openai.AsyncOpenAI``, any OpenAI-compatible server).
A provider is a ``ModelTransport`` (``transport.py``); everything below is the same for all of them.

What it adds to the official clients, and why:
- ``num_ctx``, temperature and keep_alive on every request (Ollama silently
  truncates prompts to its small default context otherwise);
- the call's purpose in the ``X-LLM-Agent-Purpose`` header and the call log;
- thinking kept out of answers, whole or streamed;
- JSON answers read defensively, with one repair round trip to the model;
- secrets redacted from every message and text before it leaves (``llm_agent_magic.redaction``): the
  model never sees a key, token or password of the user's environment, whatever the purpose;
- errors that say what to do, naming the provider (server down, model not there, key refused, timeout,
  context overflow), with bounded retries for HTTP 5xx and garbled replies (one loop,
  ``Calls.with_retries`` in ``calls.py``, on tenacity; a stream is retried only until it shows text, ``stream.py``);
- record/replay cassettes, below the client, at the HTTP level.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from ..config import LLMConfig, PathsConfig
from ..exceptions import CassetteError, JSONReplyError, LLMProtocolError, StructuredOutputError
from ..prompts import render_prompt
from ..redaction import redact, redact_messages_off_loop
from .calllog import CallLog, CallRecord
from .calls import PURPOSES, Calls, ChatResult, Messages, estimate_tokens
from .cassette import Cassette, CassetteTransport, SharedTransport
from .ollama_transport import OllamaTransport
from .openai_transport import OpenAITransport
from .stream import ChatStream
from .structured import parse_json_reply
from .thinking import strip_thinking
from .transport import Embeddings, ModelTransport, Piece

__all__ = ["PURPOSES", "ChatResult", "LLMClient", "Messages", "StructuredResult", "estimate_tokens"]


@dataclass
class StructuredResult:
    value: Any
    raw: str
    repaired: bool = False
    calls: list[ChatResult] = field(default_factory=list)


class LLMClient:
    """Chat, streaming, structured output, embeddings and model listing against the configured model server(s)."""

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
        self._providers: dict[str, ModelTransport] = {}
        self.calls = Calls(self.config, self.call_log, self.provider)

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
        where = (
            f"OpenAI-compatible server at {self.config.base_url}"
            if self.config.provider == "openai"
            else f"Ollama at {self.config.host}"
        )
        self.cassette = (
            Cassette.load(path, scrub_literals=scrub)
            if os.path.exists(path)
            else Cassette(path, scrub_literals=scrub, source=f"recorded from a live {where}")
        )
        return CassetteTransport(self.cassette, "record", inner=live)

    def cassette_transport(self) -> httpx.AsyncBaseTransport | None:
        """When recording or replaying, a transport other HTTP clients (web search) can use so that their
        answers go into, and come from, the same cassette; ``None`` when live."""
        return SharedTransport(self._transport) if self.cassette is not None else None

    def provider(self, name: str) -> ModelTransport:
        """The transport of one provider, made on first use; all share one httpx transport (one pool, one cassette)."""
        found = self._providers.get(name)
        if found is None:
            if name == "openai":
                found = OpenAITransport(self.config, self._transport, replaying=self.config.cassette_mode == "replay")
            else:
                found = OllamaTransport(self.config, self._transport)
            self._providers[name] = found
        return found

    def options(self, purpose: str, temperature: float | None = None) -> dict[str, Any]:
        """The model options (``num_ctx``, temperature, seed) a call of ``purpose`` sends."""
        return self.calls.options(purpose, temperature)

    async def aclose(self) -> None:
        """Close the connection pool. The client is not usable afterwards."""
        for provider in self._providers.values():
            await provider.aclose()
        self._providers.clear()
        self.call_log.close()
        await self._transport.aclose()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

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
        calls = self.calls
        record = calls.start(messages, purpose, model, temperature)
        started = time.perf_counter()
        try:
            calls.check_context(messages, purpose)
            transport, name = calls.route(model, purpose)
            think = bool(self.config.think)

            def call() -> Awaitable[Piece]:
                return transport.chat(purpose, name, messages, format=format, options=record.options, think=think)

            resp = await calls.with_retries(call, record)
        except BaseException as exc:
            calls.finish(record, started, exc)
            raise
        raw = resp.content
        content = strip_thinking(raw)
        thinking = resp.thinking + (raw[: len(raw) - len(content)] if content != raw else "")
        record.response, record.thinking = content, thinking
        record.prompt_tokens, record.completion_tokens = resp.prompt_tokens, resp.completion_tokens
        calls.finish(record, started)
        return calls.result(record)

    def stream_chat(
        self, messages: Messages, *, purpose: str, model: str | None = None, temperature: float | None = None
    ) -> ChatStream:
        """An answer token by token: ``async for text in client.stream_chat(...)``; ``.result`` at the end."""
        model = model or self.config.model_for(purpose)
        return ChatStream(self.calls, messages, purpose=purpose, model=model, temperature=temperature)

    async def structured(
        self,
        messages: Messages,
        *,
        purpose: str,
        schema: dict[str, Any],
        model: str | None = None,
        temperature: float | None = None,
    ) -> StructuredResult:
        """A JSON answer matching ``schema``: asked for with the server's own means (Ollama's ``format``, an OpenAI
        ``response_format``), read defensively, repaired once."""
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
        transport, name = self.calls.route(model, "embed")
        vectors: list[list[float]] = []
        size = max(1, self.config.embed_batch_size)
        for start in range(0, len(texts), size):
            batch = [redact(t) for t in texts[start : start + size]]
            record = CallRecord(purpose="embed", model=model, messages=[{"role": "input", "content": t} for t in batch])
            record.options = {"num_ctx": self.config.num_ctx}
            started = time.perf_counter()

            def call(batch: list[str] = batch, options: dict[str, Any] = record.options) -> Awaitable[Embeddings]:
                return transport.embed(name, batch, options)

            try:
                resp = await self.calls.with_retries(call, record)
            except BaseException as exc:
                self.calls.finish(record, started, exc)
                raise
            if len(resp.vectors) != len(batch):
                error = LLMProtocolError(
                    f"The {transport.name} server at {transport.where} returned {len(resp.vectors)} embeddings for "
                    f"{len(batch)} texts with model {model!r}."
                )
                self.calls.finish(record, started, error)
                raise error
            record.response = f"{len(batch)} vectors of dimension {len(resp.vectors[0]) if batch else 0}"
            record.prompt_tokens = resp.prompt_tokens
            self.calls.finish(record, started)
            vectors.extend(resp.vectors)
        return vectors

    async def list_models(self) -> list[str]:
        """Names of the models every configured provider offers; those of a provider other than the default
        come as ``provider:name``, the way the configuration names them."""
        names: list[str] = []
        for provider in self.config.providers_in_use():
            found = await self.provider_models(provider)
            names += found if provider == self.config.provider else [f"{provider}:{n}" for n in found]
        return names

    async def provider_models(self, provider: str) -> list[str]:
        """Names of the models one provider's server offers (pulled, for Ollama)."""
        transport = self.provider(provider)
        try:
            return await transport.list_models()
        except Exception as exc:
            failure = self._admin_failure(transport, exc, "list models")
            if failure is exc:
                raise
            raise failure from exc

    async def version(self, provider: str | None = None) -> str:
        """What the provider's server says it is (``Ollama 0.12.0``); raises ``ModelServerUnavailable`` (for
        Ollama ``OllamaUnavailable``) when nothing answers."""
        transport = self.provider(provider or self.config.provider)
        try:
            return await transport.version()
        except Exception as exc:
            failure = self._admin_failure(transport, exc, "version")
            if failure is exc:
                raise
            raise failure from exc

    @staticmethod
    def _admin_failure(transport: ModelTransport, exc: BaseException, what: str) -> BaseException:
        """The error to raise for a failed request that is not a model call (no retries, no call log)."""
        return transport.translate(exc, "", what, 1) or transport.own_failure(exc)
