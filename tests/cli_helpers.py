"""``llm-agent`` as a user runs it: a real subprocess of this Python, in a folder, with an environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from llm_agent_magic.magic import env as kernel_env

#: Variables of ours that a developer's shell may have set; tests start without them.
OUR_ENV = (*kernel_env.ALL, "JPY_SESSION_NAME")
#: The test being run (set by tests/conftest.py).
current_test: Any = None


def run_cli(
    *args: str, cwd: Path | str, env: dict[str, str] | None = None, timeout: float = 120, clean: bool = False
) -> subprocess.CompletedProcess:
    """``llm-agent ARGS`` in ``cwd``; ``env`` adds to (or overrides) this process's environment, from which
    ``clean`` first drops this package's own variables."""
    if current_test is not None and current_test.get_closest_marker("slow") is None:
        raise AssertionError(f"{current_test.nodeid} starts a process: mark it @pytest.mark.slow")
    base = {k: v for k, v in os.environ.items() if not (clean and k in OUR_ENV)}
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "llm_agent_magic.cli", *args], cwd=cwd, env=base, capture_output=True, text=True, timeout=timeout
    )
