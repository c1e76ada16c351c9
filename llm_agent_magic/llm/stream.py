"""A streamed answer: visible text as it arrives, thinking kept apart, the call logged when it ends.

``LLMClient.stream_chat`` makes one. Only the opening of the stream, up to its first visible text, goes
through the client's retry loop: text already shown to the user cannot be taken back, so a stream that
fails after that fails.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ..exceptions import LLMProtocolError
from ..redaction import redact_messages_off_loop
from .calllog import CallRecord
from .thinking import ThinkFilter
from .transport import Piece, PieceStream

if TYPE_CHECKING:
    from .client import ChatResult, LLMClient, Messages

#: Seconds of streamed pieces after which a stream lets the other tasks of its event loop run.
YIELD_AFTER = 0.0005


class _Received:
    """What a stream has brought so far, across attempts: visible text, thinking, the closing part."""

    def __init__(self) -> None:
        self.filter = ThinkFilter()
        self.visible: list[str] = []
        self.thinking: list[str] = []
        self.done: Piece | None = None

    def take(self, part: Piece) -> str:
        """The visible text in ``part`` (often none: thinking, or the start of a tag)."""
        if part.thinking:
            self.thinking.append(part.thinking)
        piece = self.filter.feed(part.content) if part.content else ""
        if piece:
            self.visible.append(piece)
        if part.done:
            self.done = part
        return piece

    def flush(self) -> str:
        tail = self.filter.flush()
        if tail:
            self.visible.append(tail)
        return tail

    def into(self, record: CallRecord) -> None:
        record.response = "".join(self.visible)
        record.thinking = "".join(self.thinking) + self.filter.thinking


class ChatStream:
    """Visible answer text as it arrives. Closing it (or cancelling the task) closes the HTTP request."""

    def __init__(
        self, llm: LLMClient, messages: Messages, *, purpose: str, model: str, temperature: float | None
    ) -> None:
        self._llm = llm
        self._messages: Messages = messages  # redacted when the stream starts (``_run``), off the loop if long
        self._purpose = purpose
        self._model = model
        self._temperature = temperature
        self._gen: AsyncIterator[str] | None = None
        self.result: ChatResult | None = None

    def __aiter__(self) -> AsyncIterator[str]:
        if self._gen is None:
            self._gen = self._run()
        return self._gen

    async def aclose(self) -> None:
        if self._gen is not None:
            await self._gen.aclose()  # type: ignore[attr-defined]

    async def __aenter__(self) -> ChatStream:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def text(self) -> str:
        """Consume the whole stream and return the visible answer."""
        return "".join([piece async for piece in self])

    async def _open(self, record: CallRecord, received: _Received) -> tuple[PieceStream, AsyncIterator[Piece], str]:
        """Send the request and read up to the first visible text (or the end); the rest is left to read."""
        llm = self._llm
        transport, name = llm._route(self._model, self._purpose)
        parts = await transport.stream(
            self._purpose, name, self._messages, options=record.options, think=bool(llm.config.think)
        )
        pieces = aiter(parts)
        try:
            async for part in pieces:
                piece = received.take(part)
                if piece or part.done:
                    return parts, pieces, piece
        except BaseException:
            await pieces.aclose()  # type: ignore[attr-defined]
            await parts.aclose()
            raise
        return parts, pieces, ""

    async def _run(self) -> AsyncIterator[str]:
        llm = self._llm
        self._messages = await redact_messages_off_loop(self._messages)
        record = llm._record(self._messages, self._purpose, self._model, self._temperature, stream=True)
        started = time.perf_counter()
        received = _Received()
        try:
            llm._check_context(self._messages, self._purpose)
            parts, pieces, first = await llm._with_retries(functools.partial(self._open, record, received), record)
            try:
                if first:
                    yield first
                turn = time.perf_counter()
                async for part in pieces:
                    piece = received.take(part)
                    if piece:
                        yield piece
                        # A burst (a fast model, a buffered read) arrives without the stream waiting on the
                        # socket, so it would keep the loop from other tasks (other runs, new requests) until it
                        # ends: after YIELD_AFTER seconds of pieces, give them a turn.
                        if time.perf_counter() - turn > YIELD_AFTER:
                            await asyncio.sleep(0)
                            turn = time.perf_counter()
            except Exception as exc:  # noqa: BLE001  # translated into our errors, raised
                llm._raise_translated(exc, self._model, self._purpose, record.attempts)
            finally:
                # Close the HTTP response now, not whenever the garbage collector gets to it.
                await pieces.aclose()  # type: ignore[attr-defined]
                await parts.aclose()
            done = received.done
            if done is None:
                raise LLMProtocolError(
                    f"The model's stream for the {self._purpose!r} call ended before it said it was done "
                    f"({len(''.join(received.visible))} characters arrived). The server may have restarted; try again."
                )
            tail = received.flush()
            if tail:
                yield tail
        except BaseException as exc:
            received.into(record)
            llm._finish(record, started, exc)
            raise
        received.into(record)
        record.prompt_tokens, record.completion_tokens = done.prompt_tokens, done.completion_tokens
        llm._finish(record, started)
        self.result = llm._result(record)
