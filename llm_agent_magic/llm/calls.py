"""What every model call goes through, whole or streamed: the route to its provider, the context check, the
one retry loop, the call log, and the result its caller gets.

``LLMClient`` (``client.py``) makes one ``Calls`` and hands it to each ``ChatStream`` (``stream.py``): both
import this module, neither imports the other's insides. Everything here is on the path of every call, so it
does no work a call does not need: a route is worked out once per model name, tenacity's loop is entered only
after a first attempt failed, and the call log gets the redacted messages themselves (no copy per call).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import tenacity

from ..config import LLMConfig, split_model
from ..exceptions import ContextOverflow
from ..text import estimate_tokens as text_tokens
from .calllog import CallLog, CallRecord
from .transport import ModelTransport

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


def estimate_tokens(messages: Messages) -> int:
    return sum(text_tokens(str(m.get("content", ""))) for m in messages)


class Calls:
    """The bookkeeping of model calls against ``config``'s servers; ``provider(name)`` gives a provider's
    transport (``LLMClient.provider``: made on first use, one pool and cassette for all)."""

    def __init__(self, config: LLMConfig, call_log: CallLog, provider: Callable[[str], ModelTransport]):
        self.config = config
        self.call_log = call_log
        self._provider = provider
        # (configured model, default provider) -> (provider, the provider's own name for the model)
        self._routes: dict[tuple[str, str], tuple[str, str]] = {}

    def route(self, model: str, purpose: str = "") -> tuple[ModelTransport, str]:
        """The provider that serves ``model`` (a configured name, perhaps ``provider:name``) and its own name."""
        if purpose and purpose not in PURPOSES:
            raise ValueError(f"unknown call purpose {purpose!r}; expected one of {', '.join(PURPOSES)}")
        key = (model, self.config.provider)
        found = self._routes.get(key)
        if found is None:
            found = self._routes[key] = split_model(model, key[1])
        return self._provider(found[0]), found[1]

    def options(self, purpose: str, temperature: float | None = None) -> dict[str, Any]:
        config = self.config
        t = config.temperature_for(purpose) if temperature is None else temperature
        options: dict[str, Any] = {"num_ctx": config.num_ctx, "temperature": t}
        seed = config.seed
        if seed is not None:
            options["seed"] = seed
        return options

    def check_context(self, messages: Messages, purpose: str) -> None:
        needed = estimate_tokens(messages)
        num_ctx = self.config.num_ctx
        if needed > num_ctx:
            raise ContextOverflow(needed, num_ctx, purpose)

    def start(
        self, messages: Messages, purpose: str, model: str, temperature: float | None, *, stream: bool = False
    ) -> CallRecord:
        """The call log's record of a call about to be sent. ``messages`` must be redacted already; the record
        keeps them as they are (the log writes their roles and texts, off the call's path)."""
        record = CallRecord(purpose=purpose, model=model, messages=messages, stream=stream)
        record.options = self.options(purpose, temperature)
        return record

    def finish(self, record: CallRecord, started: float, error: BaseException | None = None) -> None:
        """Time the call, note how it failed if it did, and queue its record for the call log."""
        record.duration_ms = (time.perf_counter() - started) * 1000
        if error is not None:
            stopped = isinstance(error, (asyncio.CancelledError, GeneratorExit))
            record.error = "cancelled" if stopped else str(error)
        self.call_log.write(record)

    @staticmethod
    def result(record: CallRecord) -> ChatResult:
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

    def raise_translated(self, exc: BaseException, model: str, purpose: str, attempts: int) -> NoReturn:
        """Raise the user-facing error for a failure talking to ``model``'s server (a bug keeps its own)."""
        transport, name = self.route(model)
        translated = transport.translate(exc, name, purpose, attempts)
        if translated is None:
            raise transport.own_failure(exc)
        raise translated from exc

    async def with_retries(self, call: Callable[[], Awaitable[T]], record: CallRecord) -> T:
        """``call()`` (one request to the model's server), tried again after what a second try may cure: an HTTP
        5xx, a garbled or broken reply. At most ``max_retries`` more attempts, ``retry_backoff`` seconds apart,
        doubling each time; ``record.attempts`` counts them. A request with an optional part the server refuses
        (Ollama's think field for a model that cannot think, a JSON schema an OpenAI-compatible server does not
        take) is sent again without it, which is not an attempt (``ModelTransport.adapt``). Failures leave
        translated (``ModelTransport.translate``).

        The one retry loop of the client: ``chat``, ``embed``, and the opening of a stream (up to its first
        visible text, since text already shown cannot be taken back; ``stream.py``).
        """
        transport, name = self.route(record.model)

        async def attempt() -> T:
            for _ in range(3):  # each refused optional part is left out once; there are at most three
                try:
                    return await call()
                except Exception as exc:
                    if not transport.adapt(exc, name):
                        raise
            return await call()

        # Most calls succeed at once: the first attempt is made here, and tenacity (whose bookkeeping costs tens
        # of microseconds a call) takes over only after it failed, with that failure as its own first attempt,
        # so what is retried, how often and how long apart is decided in one place whatever happened.
        try:
            return await attempt()
        except Exception as exc:  # noqa: BLE001  # any failure: tenacity's rules decide whether it is tried again
            first: Exception | None = exc

        async def again() -> T:
            nonlocal first
            if first is not None:
                failure, first = first, None
                raise failure
            return await attempt()

        def count(state: tenacity.RetryCallState) -> None:
            record.attempts = state.attempt_number

        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception(transport.retryable),
            stop=tenacity.stop_after_attempt(self.config.max_retries + 1),
            wait=tenacity.wait_exponential(multiplier=self.config.retry_backoff),
            before=count,
            reraise=True,
        )
        try:
            return await retrying(again)
        except Exception as exc:  # noqa: BLE001  # translated into our errors, raised
            self.raise_translated(exc, record.model, record.purpose, record.attempts)
