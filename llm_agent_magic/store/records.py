"""Rows of the conversation store as small frozen dataclasses. Times are seconds since the epoch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROLES = ("user", "assistant", "system", "tool")
#: "interrupted": the process running it ended (a server restart) before the run could finish.
RUN_STATUSES = ("running", "ok", "error", "cancelled", "interrupted")


@dataclass(frozen=True)
class Session:
    """One conversation; ``message_count`` is filled where the store counts them."""

    id: str
    title: str
    created_at: float
    updated_at: float
    metadata: dict[str, Any] = field(default_factory=dict)
    message_count: int = 0


@dataclass(frozen=True)
class Message:
    """One turn; ``run_id`` links an agent's messages to the run that produced them."""

    id: int
    session_id: str
    role: str
    content: str
    mode: str | None
    run_id: str | None
    created_at: float


@dataclass(frozen=True)
class Run:
    """One request handled by the agent; ``status`` stays "running" until ``finish_run``."""

    id: str
    session_id: str
    request: str
    mode: str | None
    status: str
    started_at: float
    finished_at: float | None
