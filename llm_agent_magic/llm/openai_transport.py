"""The OpenAI-compatible provider: the official ``openai.AsyncOpenAI`` against ``LLMConfig.base_url``.

vLLM, llama.cpp's server, LM Studio, a LiteLLM proxy and hosted APIs all speak this protocol. The client gets
the shared httpx transport (``http_client=``), so cassettes record and replay it like Ollama, and
``max_retries=0``: retries happen in ``LLMClient``'s one loop. The API key is read from the environment
variable ``LLMConfig.api_key_env`` when the client is made and lives only in the ``Authorization`` header,
which neither the call log nor cassettes keep.

Optional request fields a server may refuse - the JSON schema in ``response_format``, ``stream_options``
(usage at the end of a stream), ``chat_template_kwargs`` (thinking on or off for Qwen-style templates) - are
dropped for that model after a 400 that names them (``adapt``); structured output then falls back to the
defensive reader and one repair round trip, as with any model that ignores a schema.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any, cast

import httpx
import openai
import pydantic

from ..config import LLMConfig
from ..exceptions import (
    ContextOverflow,
    LLMError,
    LLMProtocolError,
    LLMServerError,
    LLMTimeout,
    ModelNotFound,
    ModelServerAuthError,
    ModelServerUnavailable,
)
from .cassette import PURPOSE_HEADER, SharedTransport
from .transport import Embeddings, ModelTransport, Piece, PieceStream

#: Optional request fields, by the name a server's refusal mentions.
SCHEMA, USAGE, THINK = "response_format", "stream_options", "chat_template_kwargs"
NO_KEY = "none"
_BROKEN_REPLY = (json.JSONDecodeError, pydantic.ValidationError, httpx.RemoteProtocolError, httpx.ReadError)


def _reasoning(message: Any) -> str:
    """Thinking the server split off: vLLM, DeepSeek and llama.cpp say ``reasoning_content``, others ``reasoning``.
    Both are fields the client's models do not declare, so they are in ``model_extra`` (read there: a missing
    attribute of a pydantic model costs an exception, on every streamed piece)."""
    extra = message.model_extra
    if not extra:
        return ""
    value = extra.get("reasoning_content") or extra.get("reasoning")
    return value if isinstance(value, str) else ""


class _OpenAIStream(PieceStream):
    """Text parts as they come; one last ``done`` part once the server has said why it stopped (and, asked
    with ``stream_options``, what it cost)."""

    def __init__(self, chunks: openai.AsyncStream[Any]):
        self._chunks = chunks
        self.parts = aiter(chunks)
        self._finished = False
        self._prompt_tokens: int | None = None
        self._completion_tokens: int | None = None

    def read(self, chunk: Any) -> str | Piece | None:
        usage = chunk.usage
        if usage is not None:
            self._prompt_tokens, self._completion_tokens = usage.prompt_tokens, usage.completion_tokens
        choices = chunk.choices
        if not choices:
            return None
        choice = choices[0]
        if choice.finish_reason is not None:
            self._finished = True
        delta = choice.delta
        if delta is None:
            return None
        thinking = _reasoning(delta)
        return Piece(delta.content or "", thinking) if thinking else delta.content

    def end(self) -> Piece | None:
        if not self._finished:  # a stream cut off before the server said why it stopped has no done part
            return None
        self._finished = False
        return Piece(done=True, prompt_tokens=self._prompt_tokens, completion_tokens=self._completion_tokens)

    async def aclose(self) -> None:
        await self.parts.aclose()  # type: ignore[attr-defined]
        await self._chunks.close()


class OpenAITransport(ModelTransport):
    name = "openai"

    def __init__(self, config: LLMConfig, transport: httpx.AsyncBaseTransport, *, replaying: bool = False):
        self.config = config
        base_url = config.base_url.strip()
        if not base_url:
            if not replaying:
                raise ModelServerUnavailable(
                    "openai",
                    "(no address)",
                    "The 'openai' provider needs the address of an OpenAI-compatible API: set LLMConfig.base_url "
                    "(or $LLM_AGENT_BASE_URL), e.g. http://localhost:8000/v1 for vLLM or http://localhost:8080/v1 "
                    "for llama.cpp's server.",
                )
            base_url = "http://replay.invalid/v1"  # a replay sends nothing anywhere
        self.where = base_url
        self.key_env = config.api_key_env
        self.key_set = bool(os.environ.get(self.key_env, ""))
        timeout = httpx.Timeout(config.request_timeout, connect=min(10.0, config.request_timeout))
        self._client = openai.AsyncOpenAI(
            # The client insists on a key; local servers ignore this stand-in (it says "none" to a server that
            # checks, and is no secret). None would make the client read $OPENAI_API_KEY whatever api_key_env says.
            api_key=os.environ.get(self.key_env, "") or NO_KEY,
            base_url=base_url,
            max_retries=0,
            timeout=timeout,
            http_client=httpx.AsyncClient(transport=SharedTransport(transport), timeout=timeout),
        )
        self._refused: dict[str, set[str]] = {}

    def _headers(self, purpose: str) -> dict[str, str]:
        return {PURPOSE_HEADER: purpose} if purpose else {}

    def _extra_body(self, model: str, think: bool) -> dict[str, Any] | None:
        if THINK in self._refused.get(model, ()):
            return None
        return {THINK: {"enable_thinking": think}}

    def _response_format(self, model: str, format: dict[str, Any] | str | None) -> Any:
        if not format or SCHEMA in self._refused.get(model, ()):
            return openai.NOT_GIVEN
        if format == "json":
            return {"type": "json_object"}
        return {"type": "json_schema", "json_schema": {"name": "reply", "schema": format}}

    def _request(
        self, purpose: str, model: str, messages: Sequence[dict[str, Any]], options: dict[str, Any], think: bool
    ) -> dict[str, Any]:
        """What a whole answer and a stream ask alike: one place, so that an option reaches both (the seed once
        reached only one)."""
        return {
            "model": model,
            "messages": cast(Any, messages),  # a list of its own already (redacted for this call)
            "temperature": options.get("temperature"),
            "seed": options.get("seed", openai.NOT_GIVEN),  # LLMConfig.seed, as Ollama gets it in options
            "extra_headers": self._headers(purpose),
            "extra_body": self._extra_body(model, think),
        }

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
        resp = await self._client.chat.completions.create(
            **self._request(purpose, model, messages, options, think),
            stream=False,
            response_format=self._response_format(model, format),
        )
        if not resp.choices:
            raise LLMProtocolError(f"The {self.where} server answered the {purpose!r} call with no choices.")
        message = resp.choices[0].message
        usage = resp.usage
        return Piece(
            message.content or "",
            _reasoning(message),
            True,
            usage.prompt_tokens if usage else None,
            usage.completion_tokens if usage else None,
        )

    async def stream(
        self, purpose: str, model: str, messages: Sequence[dict[str, Any]], *, options: dict[str, Any], think: bool
    ) -> PieceStream:
        usage: Any = openai.NOT_GIVEN if USAGE in self._refused.get(model, ()) else {"include_usage": True}
        chunks = await self._client.chat.completions.create(
            **self._request(purpose, model, messages, options, think),
            stream=True,
            stream_options=usage,
        )
        return _OpenAIStream(chunks)

    async def embed(self, model: str, texts: list[str], options: dict[str, Any]) -> Embeddings:
        resp = await self._client.embeddings.create(
            model=model, input=texts, encoding_format="float", extra_headers=self._headers("embed")
        )
        ordered = sorted(resp.data, key=lambda item: item.index)
        return Embeddings([list(item.embedding) for item in ordered], resp.usage.prompt_tokens if resp.usage else None)

    async def list_models(self) -> list[str]:
        page = await self._client.models.list()
        return sorted(m.id for m in page.data)

    async def version(self) -> str:
        count = len(await self.list_models())
        return f"an OpenAI-compatible API serving {count} model(s)"

    # --- errors -------------------------------------------------------------------
    def translate(self, exc: BaseException, model: str, purpose: str, attempts: int) -> LLMError | None:  # noqa: C901  # a branch per library error
        if isinstance(exc, LLMError):
            return exc
        if isinstance(exc.__cause__, LLMError):  # a cassette miss, wrapped by the client as a connection error
            return exc.__cause__
        where = self.where
        if isinstance(exc, openai.APITimeoutError) or isinstance(exc, httpx.TimeoutException):
            return LLMTimeout(self.config.request_timeout, purpose)
        if isinstance(exc, openai.APIConnectionError):
            if isinstance(exc.__cause__, (httpx.ConnectError, ConnectionError)):
                return ModelServerUnavailable("openai", where)
            if not isinstance(exc.__cause__, (httpx.HTTPError, OSError)):
                return None  # a bug below the client, not the server's failure
            return LLMProtocolError(f"The connection to {where} broke during the {purpose!r} call ({exc.__cause__}).")
        if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
            return ModelServerAuthError("openai", where, exc.status_code, self.key_env, self.key_set)
        if isinstance(exc, openai.APIStatusError):
            text = _message(exc)
            if exc.status_code == 404:
                if "model" in text.lower():
                    return ModelNotFound(model, where, "openai")
                return LLMProtocolError(
                    f"No OpenAI-compatible API answers at {where} (HTTP 404 for {exc.request.url.path}). Check "
                    f"LLMConfig.base_url: it is the part before /chat/completions, and usually ends in /v1."
                )
            if exc.status_code >= 500:
                return LLMServerError(exc.status_code, text, attempts, server=f"The OpenAI-compatible server at {where}")
            lowered = text.lower()
            if "context" in lowered and ("length" in lowered or "exceed" in lowered or "too long" in lowered):
                return ContextOverflow(0, self.config.num_ctx, purpose)
            return LLMProtocolError(f"The server at {where} refused the {purpose!r} call: {text} (HTTP {exc.status_code}).")
        if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
            return LLMProtocolError(f"The connection to {where} broke during the {purpose!r} call ({exc}).")
        if isinstance(exc, (*_BROKEN_REPLY, openai.APIResponseValidationError, openai.APIError)):
            return LLMProtocolError(
                f"The reply of {where} to the {purpose!r} call was garbled ({exc.__class__.__name__}: {exc}). "
                f"Is it really an OpenAI-compatible API?"
            )
        return None

    def own_failure(self, exc: BaseException) -> BaseException:
        # The client wraps whatever its transport raises in APIConnectionError, a bug included.
        cause = exc.__cause__
        if isinstance(exc, openai.APIConnectionError) and cause is not None and not isinstance(cause, (httpx.HTTPError, OSError)):
            return cause
        return exc

    def retryable(self, exc: BaseException) -> bool:
        if isinstance(exc, openai.APIStatusError):
            return exc.status_code >= 500
        if isinstance(exc, openai.APITimeoutError):
            return False
        if isinstance(exc, openai.APIConnectionError):  # a reply that broke off, not a server that is not there
            return isinstance(exc.__cause__, _BROKEN_REPLY)
        return isinstance(exc, (*_BROKEN_REPLY, openai.APIResponseValidationError))

    def adapt(self, exc: BaseException, model: str) -> bool:
        if not isinstance(exc, (openai.BadRequestError, openai.UnprocessableEntityError)):
            return False
        text = _message(exc)
        refused = self._refused.setdefault(model, set())
        for field in (SCHEMA, USAGE, THINK):
            if field in text and field not in refused:
                refused.add(field)
                return True
        if "json_schema" in text and SCHEMA not in refused:
            refused.add(SCHEMA)
            return True
        return False

    async def aclose(self) -> None:
        await self._client.close()  # its httpx client; the shared transport under it stays open


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if body.get("message"):
            return str(body["message"])
    return str(exc.message)
