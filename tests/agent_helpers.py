"""Helpers for tests that run whole agent sessions."""

from __future__ import annotations


async def collect(session, request: str, **kwargs) -> list:
    """Every event of one run, in order."""
    return [event async for event in session.run(request, **kwargs)]


def of(events, cls) -> list:
    """The events of one type."""
    return [e for e in events if isinstance(e, cls)]
