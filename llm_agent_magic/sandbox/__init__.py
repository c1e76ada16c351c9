"""The sandbox: a sibling ipykernel per session that runs generated code, with isolation, variable
summaries and snapshots. Nothing here imports the agent, tools or front ends.

Map: ``kernel.py`` (SandboxKernel), ``results.py`` (ExecutionResult), ``isolation.py`` (levels, bubblewrap,
``probe`` for doctor), ``policy.py`` (the audit hook inside the kernel), ``launcher.py`` (the kernel's entry
point), ``summaries.py`` (variable summaries), ``snapshots.py`` (parquet/npy/JSON/PNG snapshots),
``paths.py`` (session folders), ``plumbing.py`` (private event loop, locks, state file).
"""

from __future__ import annotations

from typing import Any

from llm_agent_magic.config import PathsConfig

from .isolation import Check, IsolationReport, analysis_imports, probe
from .kernel import SandboxKernel
from .paths import SessionPaths
from .results import ExecutionResult
from .summaries import VariableSummary, render_summaries

__all__ = [
    "Check", "ExecutionResult", "IsolationReport", "SandboxKernel", "SessionPaths", "VariableSummary",
    "analysis_imports", "load_variable", "probe", "render_summaries",
]


def load_variable(session_id: str, name: str, paths: PathsConfig | None = None) -> Any:
    """Read variable ``name`` from a session's snapshots into this process (no kernel needed)."""
    from . import snapshots

    return snapshots.load(name, SessionPaths.for_session(session_id, paths).snapshots)
