"""The diagnostics ``GET /llm-agent/api/status`` shows: the same checks as ``llm-agent doctor``.

One function, so that moving the checks into ``llm_agent_magic/diagnostics.py`` is a one-line change here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..cli.doctor import run_checks
from ..config import LLMConfig, PathsConfig, SandboxConfig


async def diagnostics(llm: LLMConfig, sandbox: SandboxConfig, paths: PathsConfig) -> list[dict[str, Any]]:
    """Each check as ``{"name", "status": ok|warn|fail, "detail", "fix"}``.

    The sandbox checks probe the machine synchronously (starting bubblewrap, reading /proc), so they run in
    a worker thread with a loop of its own: the server's loop goes on serving meanwhile.
    """
    checks = await asyncio.get_running_loop().run_in_executor(None, asyncio.run, run_checks(llm, sandbox, paths))
    return [check.to_dict() for check in checks]
