"""The Ollama provider: the official ``ollama.AsyncClient``, one per purpose, over the client's shared transport.

Ollama gets ``num_ctx``, temperature and ``keep_alive`` on every request (it silently truncates prompts to its
small default context otherwise) and the ``think`` field, left out for a model that cannot think.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal, cast

import httpx
import ollama
import pydantic

from ..config import LLMConfig
from ..exceptions import (
    ContextOverflow,
    LLMError,
    LLMProtocolError,
    LLMServerError,
    LLMTimeout,
    ModelNotFound,
    OllamaUnavailable,
)
from .cassette import PURPOSE_HEADER
from .transport import Embeddings, ModelTransport, Piece, PieceStream


class _OllamaStream(PieceStream):
    def __init__(self, parts: AsyncIterator[ollama.ChatResponse]):
        self.parts = parts

    def read(self, part: ollama.ChatResponse) -> str | Piece | None:
        message = part.message
        if part.done:
            return Piece(message.content or "", message.thinking or "", True, part.prompt_eval_count, part.eval_count)
        if message.thinking:
            return Piece(message.content or "", message.thinking)
        return message.content

    async def aclose(self) -> None:
        await self.parts.aclose()  # type: ignore[attr-defined]


class OllamaTransport(ModelTransport):
    name = "ollama"

    def __init__(self, config: LLMConfig, transport: httpx.AsyncBaseTransport):
        self.config = config
        self.where = config.host
        self._transport = transport
        self._clients: dict[str, ollama.AsyncClient] = {}
        self._no_think_field: set[str] = set()

    def _client(self, purpose: str) -> ollama.AsyncClient:
        # One client per purpose: the header is fixed per httpx client, and all of them share one
        # transport (one connection pool), so this costs nothing per call. Purpose "" is for
        # administrative requests (model list, version) that are not model calls.
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

    def _think(self, model: str, think: bool) -> bool | None:
        return None if model in self._no_think_field else think  # None: the client leaves the field out

    async def chat(
        self,
        purpose: str,
        model: str,
        messages: Sequence[dict[str, Any]],
        *,
        format: dict[str, Any] | str | None,
        options: dict[str, Any],
        think: bool,
    ) -> Piece:
        resp = await self._client(purpose).chat(
            model=model,
            messages=messages,  # a list of its own already (redacted for this call)
            format=cast("dict[str, Any] | Literal['', 'json'] | None", format),
            options=options,
            keep_alive=self.config.keep_alive,
            stream=False,
            think=self._think(model, think),
        )
        message = resp.message
        return Piece(message.content or "", message.thinking or "", True, resp.prompt_eval_count, resp.eval_count)

    async def stream(
        self, purpose: str, model: str, messages: Sequence[dict[str, Any]], *, options: dict[str, Any], think: bool
    ) -> PieceStream:
        parts = await self._client(purpose).chat(
            model=model,
            messages=messages,  # a list of its own already (redacted for this call)
            options=options,
            keep_alive=self.config.keep_alive,
            stream=True,
            think=self._think(model, think),
        )
        return _OllamaStream(parts)

    async def embed(self, model: str, texts: list[str], options: dict[str, Any]) -> Embeddings:
        resp = await self._client("embed").embed(model=model, input=texts, options=options, keep_alive=self.config.keep_alive)
        return Embeddings([list(v) for v in resp.embeddings], resp.prompt_eval_count)

    async def list_models(self) -> list[str]:
        resp = await self._client("").list()
        return sorted(m.model or "" for m in resp.models)

    async def version(self) -> str:
        # ollama has no version() call; its private _request_raw is unannotated.
        response = await self._client("")._request_raw("GET", "/api/version")  # type: ignore[no-untyped-call]
        return f"Ollama {response.json().get('version', '?')}"

    def translate(self, exc: BaseException, model: str, purpose: str, attempts: int) -> LLMError | None:
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

    def retryable(self, exc: BaseException) -> bool:
        if isinstance(exc, ollama.ResponseError):
            return exc.status_code >= 500
        return isinstance(exc, (json.JSONDecodeError, pydantic.ValidationError, httpx.RemoteProtocolError, httpx.ReadError))

    def adapt(self, exc: BaseException, model: str) -> bool:
        if isinstance(exc, ollama.ResponseError) and "does not support thinking" in str(exc.error):
            self._no_think_field.add(model)
            return True
        return False

    async def aclose(self) -> None:
        self._clients.clear()
