"""The kernel's side of the agent: its configuration, its session ids and its open sessions.

One ``KernelAgent`` per IPython shell. Sessions are opened once per id and kept (their
sandbox stays warm across cells) until the kernel shuts down or the extension is unloaded.
The environment (``env.py``; ``llm-agent run`` sets it) wins over what the notebook says.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path
from typing import Any

from traitlets import TraitError
from traitlets.config import Config, Configurable

from ..agents.session import AgentSession
from ..config import CONFIG_CLASSES, AgentConfig, LLMConfig, PathsConfig, SandboxConfig, load_config_files
from ..exceptions import LLMAgentError, SetupError
from ..llm import LLMClient
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
    except Exception:  # not inside a kernel (plain IPython, tests)
        pass
    return f"ipython-{_PROCESS_ID}"


def default_session_id(user_ns: dict[str, Any]) -> str:
    """``$LLM_AGENT_SESSION``, else the notebook's path (Jupyter server, VS Code), else this kernel's id."""
    for candidate in (os.environ.get(env.SESSION), os.environ.get("JPY_SESSION_NAME"), user_ns.get("__vsc_ipynb_file__")):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return kernel_session_id()


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


def _values(configurable: Configurable) -> dict[str, Any]:
    return {name: getattr(configurable, name) for name in type(configurable).class_trait_names(config=True)}


class KernelAgent:
    """Configuration, sessions and the private loop of one IPython shell."""

    def __init__(self, shell: Any = None) -> None:
        self.shell = shell
        self.llm_config = LLMConfig(parent=shell)
        self.sandbox_config = SandboxConfig(parent=shell)
        self.agent_config = AgentConfig(parent=shell)
        self.paths_config = PathsConfig(parent=shell)
        self.loop = AgentLoop()
        self.sessions: dict[str, AgentSession] = {}
        self._fresh_done: set[str] = set()

    @property
    def configurables(self) -> list[Configurable]:
        return [self.llm_config, self.sandbox_config, self.agent_config, self.paths_config]

    # --- configuration ---------------------------------------------------------------------------

    def config(self) -> Config:
        """Config files, then ``%config`` (and IPython's own config), then the runner's command line,
        then the cassette the environment imposes."""
        cfg, _ = load_config_files()
        for configurable in self.configurables:
            for name in CLASS_NAMES:
                if name in configurable.config:
                    cfg.merge(Config({name: configurable.config[name]}))
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

    def effective(self) -> tuple[LLMConfig, SandboxConfig, AgentConfig, PathsConfig]:
        cfg = self.config()
        return LLMConfig(config=cfg), SandboxConfig(config=cfg), AgentConfig(config=cfg), PathsConfig(config=cfg)

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
            self.refresh(session)

    # --- sessions -----------------------------------------------------------------------------------

    def session(self, session_id: str) -> AgentSession:
        """The open session with this id (opened now, sandbox starting in the background, if new)."""
        session = self.sessions.get(session_id)
        if session is None:
            fresh = os.environ.get(env.FRESH_SESSION, "") not in ("", "0") and session_id not in self._fresh_done
            session = self.loop.call(self._open(session_id, self.config(), fresh))
            self._fresh_done.add(session_id)
            self.sessions[session_id] = session
        else:
            self.refresh(session)
        return session

    async def _open(self, session_id: str, cfg: Config, fresh: bool) -> AgentSession:
        try:
            session = AgentSession.open(session_id, config=cfg)
        except (LLMAgentError, TraitError, OSError) as exc:  # e.g. a replay cassette that does not exist
            raise SetupError(str(exc)) from exc
        try:
            if fresh:
                await session.reset(restart_sandbox=False)  # waits for, or refuses, a session another process uses
            await session.start()
            if fresh and session.sandbox is not None and session.sandbox.attached:
                await session.sandbox.async_restart(restore=False)  # someone else's warm kernel: start clean
        except BaseException as exc:
            await session.close()
            if isinstance(exc, LLMAgentError):  # e.g. the isolation asked for is not available here
                raise SetupError(str(exc)) from exc
            raise
        return session

    def reset(self, session_id: str) -> None:
        """``%agent reset``: new conversation, fresh sandbox without restoring, no snapshots."""
        session = self.session(session_id)
        self.loop.call(session.reset())

    def refresh(self, session: AgentSession) -> None:
        """Apply configuration changes (``%config``, a cassette) to an open session between runs."""
        llm_config, _, agent_config, paths = self.effective()
        session.config = agent_config
        if _values(llm_config) == _values(session.llm.config):
            return
        try:
            client = LLMClient(llm_config, paths=paths)
        except (LLMAgentError, OSError) as exc:  # a cassette that cannot be read, a log folder that cannot be made
            raise SetupError(str(exc)) from exc
        old, session.llm = session.llm, client
        self.loop.call(old.aclose())

    def close(self, timeout: float = 60.0) -> None:
        """Close every session (their sandboxes stop) and the loop."""
        sessions, self.sessions = list(self.sessions.values()), {}
        if sessions and self.loop.alive:

            async def close_all() -> None:
                await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)

            try:
                self.loop.call(close_all(), timeout=timeout)
            except Exception:  # shutting down anyway
                pass
        self.loop.stop()
