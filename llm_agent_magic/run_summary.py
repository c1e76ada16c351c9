"""``RunSummary``: what a run came to, read from its events once (answer, status, errors, usage, model).

Every front end needs the same few facts of a finished (or cut-off) run: the notebook cells' bundle, the
magic's last output, the OpenAI-style reply and the eval harness's record. They read them here, so a rule
(which answer counts, what an unfinished run's status is, how tokens add up) is written once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .events import Answer, Error, Event, RunFinished, RunStarted, Token, Usage, events_from_store


@dataclass(frozen=True)
class RunSummary:
    run_id: str = ""
    request: str = ""
    #: ``RunFinished.status`` ("ok", "error", "cancelled"); None while the run has not finished (or was cut off).
    finished: str | None = None
    #: The last ``Answer``'s markdown; None when the run gave none.
    answer: str | None = None
    #: The text streamed as tokens (what a run stopped mid-answer had said).
    streamed: str = ""
    errors: list[Error] = field(default_factory=list)
    #: Model calls, and their tokens and seconds summed.
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    call_seconds: float = 0.0
    #: The model the run's last model call used ("" when it made none).
    model: str = ""

    @classmethod
    def of(cls, events: Iterable[Event]) -> RunSummary:
        started: RunStarted | None = None
        finished: str | None = None
        answer: str | None = None
        errors: list[Error] = []
        usage: list[Usage] = []
        tokens: list[str] = []
        for event in events:
            if isinstance(event, RunStarted) and started is None:
                started = event
            elif isinstance(event, RunFinished) and finished is None:  # always the last event of a run
                finished = event.status
            elif isinstance(event, Answer):
                answer = event.markdown
            elif isinstance(event, Error):
                errors.append(event)
            elif isinstance(event, Usage):
                usage.append(event)
            elif isinstance(event, Token):
                tokens.append(event.text)
        return cls(
            run_id=started.run_id if started else "",
            request=started.request if started else "",
            finished=finished,
            answer=answer,
            streamed="".join(tokens),
            errors=errors,
            calls=len(usage),
            prompt_tokens=sum(u.prompt_tokens for u in usage),
            completion_tokens=sum(u.completion_tokens for u in usage),
            call_seconds=sum(u.duration for u in usage),
            model=next((u.model for u in reversed(usage) if u.model), ""),
        )

    @classmethod
    def of_dicts(cls, events: Iterable[Mapping[str, Any]]) -> RunSummary:
        """From events in their wire form (a socket's, the store's)."""
        return cls.of(events_from_store(events))

    def status(self, unfinished: str = "unknown") -> str:
        """The run's status, ``unfinished`` when it has no ``RunFinished``."""
        return self.finished if self.finished is not None else unfinished

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def usage(self) -> dict[str, int]:
        """Tokens as the OpenAI format counts them."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }

    def error_dicts(self) -> list[dict[str, str]]:
        return [{"kind": e.kind, "message": e.message} for e in self.errors]

    def error_lines(self) -> list[str]:
        """``kind: message`` of each error, in order."""
        return [f"{e.kind}: {e.message}" for e in self.errors]
