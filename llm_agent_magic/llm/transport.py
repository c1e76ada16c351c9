"""What ``LLMClient`` needs from a model server, whatever protocol it speaks.

A ``ModelTransport`` sends one request and hands back a ``Piece``: the answer (or one streamed part of it),
the thinking the server split off, and the token counts when it gave them. Everything above the wire -
redaction, the context check, thinking kept out of answers, JSON read defensively and repaired, the retry
loop, the call log - lives in ``LLMClient`` and ``ChatStream`` once, for every provider. Cassettes sit below,
in the shared httpx transport (``cassette.py``).

Two implementations: ``ollama_transport.OllamaTransport`` (the official ``ollama`` client) and
``openai_transport.OpenAITransport`` (the official ``openai`` client, any OpenAI-compatible server).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..exceptions import LLMError


@dataclass(slots=True)
class Piece:
    """A whole answer, or one part of a streamed one (``done`` on the last, which carries the counts)."""

    content: str = ""
    thinking: str = ""
    done: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class PieceStream(abc.ABC):
    """A streamed answer as the provider's client library gives it: ``parts``, each made sense of by ``read``.

    ``ChatStream`` iterates ``parts`` itself and calls ``read`` on each, rather than iterating a generator of
    ``Piece`` built over them: that would be one more generator to step through, and one more object, for
    every token of every answer. ``aclose()`` ends the HTTP request.
    """

    #: The parts of the answer as the client library yields them (one iterator, iterated once).
    parts: AsyncIterator[Any]

    @abc.abstractmethod
    def read(self, part: Any) -> str | Piece | None:
        """What one part brings: its text as a plain ``str`` in the common case (answer text only), a ``Piece``
        when it carries thinking or is the last one (with the counts), None when it brings nothing."""

    def end(self) -> Piece | None:
        """Once ``parts`` is exhausted: the closing ``done`` piece, for a protocol that tells it only then (once)."""
        return None

    @abc.abstractmethod
    async def aclose(self) -> None: ...


@dataclass(slots=True)
class Embeddings:
    vectors: list[list[float]]
    prompt_tokens: int | None = None


class ModelTransport(abc.ABC):
    """One provider's way of asking a model. ``purpose`` goes into the ``X-LLM-Agent-Purpose`` header."""

    #: The provider's name, as in ``LLMConfig.provider`` and model prefixes.
    name: str
    #: Where its server is (for messages).
    where: str

    @abc.abstractmethod
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
        """One whole answer (``done`` set)."""

    @abc.abstractmethod
    async def stream(
        self, purpose: str, model: str, messages: Sequence[dict[str, Any]], *, options: dict[str, Any], think: bool
    ) -> PieceStream:
        """Send a streamed request; the parts are read from what it returns."""

    @abc.abstractmethod
    async def embed(self, model: str, texts: list[str], options: dict[str, Any]) -> Embeddings:
        """Vectors of ``texts``, in order."""

    @abc.abstractmethod
    async def list_models(self) -> list[str]:
        """Names of the models the server offers."""

    @abc.abstractmethod
    async def version(self) -> str:
        """What the server says it is (its version where it tells one)."""

    @abc.abstractmethod
    def translate(self, exc: BaseException, model: str, purpose: str, attempts: int) -> LLMError | None:
        """The user-facing error for a failure talking to this server; None for anything else (a bug keeps
        its own exception)."""

    def own_failure(self, exc: BaseException) -> BaseException:
        """What to raise for a failure ``translate`` does not know (a bug): the exception itself, unwrapped where
        the client library wrapped it."""
        return exc

    @abc.abstractmethod
    def retryable(self, exc: BaseException) -> bool:
        """May a second try cure it (an HTTP 5xx, a garbled or broken reply)?"""

    def adapt(self, exc: BaseException, model: str) -> bool:
        """The server refused an optional part of the request for ``model`` (a think switch, a JSON schema, a
        usage request): leave it out from now on and return True, so the same call can be sent again."""
        return False

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release what the transport holds (the shared httpx transport is closed by ``LLMClient``)."""
