"""The kernel's side of the agent: the shell's settings, its session ids, and the loop sessions live on.

One ``ShellSessions`` per IPython shell; its ``SessionManager`` (``agents/manager.py``) opens sessions once
per id and keeps them (their sandbox stays warm across cells) until the kernel shuts down or the
extension is unloaded, and resolves settings. What ``llm-agent run`` imposes through the environment
(``env.py``) wins over what the notebook says.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from traitlets.config import Config, Configurable

from ..agents.manager import SessionManager
from ..agents.session import AgentSession
from ..config import CONFIG_CLASSES, AgentConfig, LLMConfig, PathsConfig, SandboxConfig
from ..exceptions import SetupError
from . import env
from .loop import AgentLoop

CASSETTE_MODES = ("live", "record", "replay")
CLASS_NAMES = tuple(cls.__name__ for cls in CONFIG_CLASSES)
_PROCESS_ID = uuid.uuid4().hex[:12]


def kernel_session_id() -> str:
    """A stable id for this kernel: its connection file's name, else one for this process."""
    try:
        from ipykernel.connect import get_connection_file

        name = Path(get_connection_file()).stem
        if name:
            return name
    except (ImportError, RuntimeError, OSError):  # not inside a kernel (plain IPython, tests), or its file is gone
        pass
    return f"ipython-{_PROCESS_ID}"


def default_session_id(user_ns: dict[str, Any]) -> str:
    """``$LLM_AGENT_SESSION``, else the notebook's path (Jupyter server, VS Code), else this kernel's id."""
    for candidate in (os.environ.get(env.SESSION), os.environ.get("JPY_SESSION_NAME"), user_ns.get("__vsc_ipynb_file__")):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return kernel_session_id()


def notebook_known(user_ns: dict[str, Any]) -> bool:
    """Whether the session id says which notebook this is (set by ``llm-agent run``, Jupyter server, VS Code),
    rather than being this kernel's own id (plain nbclient, ``jupyter nbconvert --execute``)."""
    return default_session_id(user_ns) != kernel_session_id()


def env_cassette() -> tuple[str, str] | None:
    """The cassette mode and path the environment imposes, or None."""
    mode = os.environ.get(env.CASSETTE_MODE, "").strip().lower()
    if not mode:
        return None
    if mode not in CASSETTE_MODES:
        raise SetupError(f"{env.CASSETTE_MODE}={mode!r} is not one of {', '.join(CASSETTE_MODES)}.")
    path = os.environ.get(env.CASSETTE_PATH, "").strip()
    if mode != "live" and not path:
        raise SetupError(f"{env.CASSETTE_MODE}={mode} needs {env.CASSETTE_PATH} (the cassette file).")
    return mode, os.path.abspath(path) if path else ""


class ShellSessions:
    """What the magic keeps per IPython shell: the shell's own settings (``%config``), the settings a runner
    imposes through the environment, the private loop, and the ``SessionManager`` that does the rest."""

    def __init__(self, shell: Any = None) -> None:
        self.shell = shell
        self.llm_config = LLMConfig(parent=shell)
        self.sandbox_config = SandboxConfig(parent=shell)
        self.agent_config = AgentConfig(parent=shell)
        self.paths_config = PathsConfig(parent=shell)
        self.loop = AgentLoop()
        self.manager = SessionManager(explicit=self.explicit, imposed=imposed_by_runner, front_end=front_end())
        self._fresh_done: set[str] = set()

    @property
    def configurables(self) -> list[Configurable]:
        return [self.llm_config, self.sandbox_config, self.agent_config, self.paths_config]

    @property
    def sessions(self) -> dict[str, AgentSession]:
        return self.manager.sessions

    # --- configuration ---------------------------------------------------------------------------

    def explicit(self) -> Config:
        """``%config`` (and IPython's own config) of this shell."""
        cfg = Config()
        for configurable in self.configurables:
            for name in CLASS_NAMES:
                if name in configurable.config:
                    cfg.merge(Config({name: configurable.config[name]}))
        return cfg

    def config(self) -> Config:
        return self.manager.config()

    def effective(self) -> tuple[LLMConfig, SandboxConfig, AgentConfig, PathsConfig]:
        return self.manager.effective()

    def set_cassette(self, mode: str, path: str = "") -> None:
        """``%agent record/replay/live``: the cassette for sessions from now on.

        The environment (``llm-agent run --replay ...``, ``make test``) wins; ``%agent status`` says which is in force.
        """
        if env_cassette() is not None:
            return
        path = os.path.abspath(path) if path else ""
        if mode == "record" and path and os.path.exists(path):
            os.unlink(path)  # a new recording starts empty; stale answers would be replayed first
        self.llm_config.update_config(Config({"LLMConfig": {"cassette_mode": mode, "cassette_path": path}}))
        for session in list(self.sessions.values()):
            self.loop.call(self.manager.refresh(session))

    # --- sessions -----------------------------------------------------------------------------------

    def resets_on_open(self, session_id: str) -> bool:
        """Does opening this session now start it empty (``llm-agent run`` without ``--continue``)? That waits
        for a run of another process that holds the session."""
        return (
            os.environ.get(env.FRESH_SESSION, "") not in ("", "0")
            and session_id not in self._fresh_done
            and session_id not in self.sessions
        )

    def session(self, session_id: str) -> AgentSession:
        """The open session with this id (opened now, sandbox starting in the background, if new)."""
        fresh = os.environ.get(env.FRESH_SESSION, "") not in ("", "0") and session_id not in self._fresh_done
        session = self.loop.call(self.manager.open(session_id, fresh=fresh))
        self._fresh_done.add(session_id)
        return session

    def reset(self, session_id: str) -> None:
        """``%agent reset``: new conversation, fresh sandbox without restoring, no snapshots."""
        self.loop.call(self.manager.reset(session_id))

    def close(self, timeout: float = 60.0) -> None:
        """Close every session (their sandboxes stop) and the loop."""
        if self.sessions and self.loop.alive:
            try:
                self.loop.call(self.manager.close_all(), timeout=timeout)
            except Exception:  # noqa: BLE001  # shutting down anyway
                pass
        self.loop.stop()


def front_end() -> str:
    """ "batch" in a kernel ``llm-agent run`` started (it always sets ``LLM_AGENT_FRESH_SESSION``), else "magic"."""
    return "batch" if env.FRESH_SESSION in os.environ else "magic"


def imposed_by_runner() -> Config:
    """What ``llm-agent run`` imposes on the notebook through the environment: its settings, its cassette."""
    cfg = Config()
    forwarded = os.environ.get(env.CONFIG_JSON, "").strip()
    if forwarded:
        try:
            cfg.merge(Config(json.loads(forwarded)))
        except (ValueError, TypeError) as exc:
            raise SetupError(f"{env.CONFIG_JSON} is not a JSON object of settings: {exc}") from None
    imposed = env_cassette()
    if imposed is not None:
        cfg.LLMConfig.cassette_mode, cfg.LLMConfig.cassette_path = imposed
    return cfg
