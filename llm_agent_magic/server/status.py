"""The diagnostics ``GET /llm-agent/api/status`` shows: the same checks as ``llm-agent doctor``.

One function, so that moving the checks into ``llm_agent_magic/diagnostics.py`` is a one-line change here.
"""

from __future__ import annotations

from typing import Any

from ..cli.doctor import run_checks
from ..config import LLMConfig, PathsConfig, SandboxConfig


async def diagnostics(llm: LLMConfig, sandbox: SandboxConfig, paths: PathsConfig) -> list[dict[str, Any]]:
    """Each check as ``{"name", "status": ok|warn|fail, "detail", "fix"}``."""
    return [check.to_dict() for check in await run_checks(llm, sandbox, paths)]
