"""The IPython extension: ``%load_ext llm_agent_magic`` registers ``%%agent`` and ``%agent``.

Map: ``magics.py`` (parsing and dispatch), ``stream.py`` (one run, rendered live), ``render.py``
(events into MIME bundles), ``sessions.py`` (configuration, session ids, open sessions),
``status.py`` (``%agent status`` / ``models``), ``loop.py`` (the private event loop).
"""

from __future__ import annotations

import atexit
from typing import Any

from .magics import AgentMagics, interpolate
from .sessions import KernelAgent, default_session_id

__all__ = ["AgentMagics", "KernelAgent", "default_session_id", "interpolate", "load_ipython_extension",
           "unload_ipython_extension"]

_loaded: dict[int, tuple[KernelAgent, AgentMagics]] = {}


def load_ipython_extension(shell: Any) -> None:
    """Register the magics and the settings (``%config LLMConfig.model = ...``) with this shell."""
    if id(shell) in _loaded:
        return
    agent = KernelAgent(shell)
    magics = AgentMagics(shell, agent)
    shell.register_magics(magics)
    shell.configurables.extend(agent.configurables)
    atexit.register(agent.close)  # the sandboxes stop with the kernel
    _loaded[id(shell)] = (agent, magics)


def unload_ipython_extension(shell: Any) -> None:
    """Close the sessions (their sandboxes stop) and remove the magics and settings."""
    entry = _loaded.pop(id(shell), None)
    if entry is None:
        return
    agent, _ = entry
    atexit.unregister(agent.close)
    agent.close()
    for kind in ("line", "cell"):
        shell.magics_manager.magics[kind].pop("agent", None)
    shell.configurables[:] = [c for c in shell.configurables if c not in agent.configurables]
