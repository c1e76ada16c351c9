"""The diagnostics ``GET /llm-agent/api/status`` shows: the checks of ``agents/diagnostics.py``, as ``llm-agent
doctor`` and ``%agent status`` show them."""

from __future__ import annotations

from typing import Any

from traitlets.config import Config

from ..agents.diagnostics import run_checks
from ..config import LLMConfig, PathsConfig, SandboxConfig, ToolsConfig


async def diagnostics(config: Config) -> list[dict[str, Any]]:
    """Each check as ``{"name", "status": ok|warn|fail, "detail", "fix"}``; the probes that run programs run in
    a thread (``run_checks``), so the server's loop goes on serving meanwhile."""
    checks = await run_checks(
        LLMConfig(config=config), SandboxConfig(config=config), PathsConfig(config=config), ToolsConfig(config=config)
    )
    return [check.to_dict() for check in checks]
