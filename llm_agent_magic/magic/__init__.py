"""The IPython extension: ``%load_ext llm_agent_magic`` registers ``%%agent``, ``%agent`` and ``%%sandbox``.

Map: ``magics.py`` (parsing and dispatch), ``stream.py`` (one run, rendered live), ``render.py``
(events into MIME bundles), ``sandbox_cell.py`` (``%%sandbox``: a cell run in the sandbox),
``sessions.py`` (configuration, session ids, open sessions),
``status.py`` (``%agent status`` / ``models``), ``loop.py`` (the private event loop),
``env.py`` (the environment variables ``llm-agent run`` steers kernels with).

The agent is imported when the extension loads, not when this package is imported, so
``llm-agent run`` can read ``env`` without paying for it.
"""

from __future__ import annotations

import atexit
import importlib
from typing import Any

__all__ = [
    "AgentMagics",
    "ShellSessions",
    "default_session_id",
    "interpolate",
    "load_ipython_extension",
    "unload_ipython_extension",
]

_loaded: dict[int, Any] = {}


def load_ipython_extension(shell: Any) -> None:
    """Register the magics and the settings (``%config LLMConfig.model = ...``) with this shell."""
    if id(shell) in _loaded:
        return
    from .magics import AgentMagics
    from .sessions import ShellSessions

    agent = ShellSessions(shell)
    shell.register_magics(AgentMagics(shell, agent))
    shell.configurables.extend(agent.configurables)
    atexit.register(agent.close)  # the sandboxes stop with the kernel
    _loaded[id(shell)] = agent


def unload_ipython_extension(shell: Any) -> None:
    """Close the sessions (their sandboxes stop) and remove the magics and settings."""
    agent = _loaded.pop(id(shell), None)
    if agent is None:
        return
    atexit.unregister(agent.close)
    agent.close()
    magics = shell.magics_manager.registry.get("AgentMagics")
    if magics is not None:  # %agent fix stops watching for failed cells
        shell.events.unregister("post_run_cell", magics.remember_failure)
    for kind in ("line", "cell"):
        shell.magics_manager.magics[kind].pop("agent", None)
    shell.magics_manager.magics["cell"].pop("sandbox", None)
    shell.configurables[:] = [c for c in shell.configurables if c not in agent.configurables]


def __getattr__(name: str) -> Any:
    if name in ("AgentMagics", "interpolate"):
        return getattr(importlib.import_module(".magics", __name__), name)
    if name in ("ShellSessions", "default_session_id"):
        return getattr(importlib.import_module(".sessions", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
