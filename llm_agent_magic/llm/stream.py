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
from typing import Any

from ..exceptions import LLMProtocolError
from ..redaction import redact_messages_off_loop
from .calllog import CallRecord
from .calls import Calls, ChatResult, Messages
from .thinking import ThinkFilter
from .transport import Piece, PieceStream

#: Seconds of streamed pieces, with no other task of the event loop run meanwhile, after which a stream lets
#: them run.
YIELD_AFTER = 0.0005


class _Received:
    """What a stream has brought so far, across attempts: visible text, thinking, the closing part."""

    def __init__(self) -> None:
        self.filter = ThinkFilter()
        self.visible: list[str] = []
        self.thinking: list[str] = []
        self.done: Piece | None = None

    def text(self, content: str) -> str:
        """The visible part of answer text (often all of it; none of it inside thinking or the start of a tag)."""
        piece = self.filter.feed(content) if content else ""
        if piece:
            self.visible.append(piece)
        return piece

    def take(self, part: str | Piece | None) -> str:
        """The visible text in what ``PieceStream.read`` made of a part."""
        if part is None:
            return ""
        if isinstance(part, str):
            return self.text(part)
        if part.thinking:
            self.thinking.append(part.thinking)
        piece = self.text(part.content)
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

    def __init__(self, calls: Calls, messages: Messages, *, purpose: str, model: str, temperature: float | None) -> None:
        self._calls = calls
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

    async def _open(self, record: CallRecord, received: _Received) -> tuple[PieceStream, str]:
        """Send the request and read up to the first visible text (or the end); the rest is left to read."""
        calls = self._calls
        transport, name = calls.route(self._model, self._purpose)
        stream = await transport.stream(
            self._purpose, name, self._messages, options=record.options, think=bool(calls.config.think)
        )
        try:
            async for part in stream.parts:
                got = stream.read(part)
                piece = received.take(got)
                if piece or isinstance(got, Piece) and got.done:
                    return stream, piece
            received.take(stream.end())
        except BaseException:
            await stream.aclose()
            raise
        return stream, ""

    async def _run(self) -> AsyncIterator[str]:  # noqa: C901  # one stream's life: open, retry until text, read, end
        calls = self._calls
        self._messages = await redact_messages_off_loop(self._messages)
        record = calls.start(self._messages, self._purpose, self._model, self._temperature, stream=True)
        started = time.perf_counter()
        received = _Received()
        try:
            calls.check_context(self._messages, self._purpose)
            stream, first = await calls.with_retries(functools.partial(self._open, record, received), record)
            try:
                if first:
                    yield first
                # A burst (a fast model, a buffered read) arrives without the stream waiting on the socket, so
                # it would keep the loop from other tasks (other runs, new requests) until it ends. After
                # YIELD_AFTER seconds of pieces the stream gives them a turn, unless the loop already ran
                # (``ran``, set by a callback it runs at its next turn): then the turn cost nothing extra.
                loop = asyncio.get_running_loop()
                ran = False

                def mark() -> None:
                    nonlocal ran
                    ran = True

                loop.call_soon(mark)
                # What runs per token is kept to local names: no global or attribute look-up on the way.
                clock, wait = time.perf_counter, YIELD_AFTER
                due = clock() + wait
                read, plain, visible = stream.read, received.filter, received.visible
                async for part in stream.parts:
                    got = read(part)
                    if type(got) is str:  # answer text only: ``received.text`` unrolled
                        piece = got if plain.clear and "<" not in got else plain.feed(got) if got else ""
                        if piece:
                            visible.append(piece)
                    else:
                        piece = received.take(got)
                    if piece:
                        yield piece
                        now = clock()
                        if now > due:
                            if not ran:
                                await asyncio.sleep(0)
                            ran = False
                            loop.call_soon(mark)
                            due = now + wait
                received.take(stream.end())
            except Exception as exc:  # noqa: BLE001  # translated into our errors, raised
                calls.raise_translated(exc, self._model, self._purpose, record.attempts)
            finally:
                # Close the HTTP response now, not whenever the garbage collector gets to it.
                await stream.aclose()
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
            calls.finish(record, started, exc)
            raise
        received.into(record)
        record.prompt_tokens, record.completion_tokens = done.prompt_tokens, done.completion_tokens
        calls.finish(record, started)
        self.result = calls.result(record)
