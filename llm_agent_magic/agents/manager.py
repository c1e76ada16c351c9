"""``SessionManager``: where every front end opens, finds and closes sessions, and where settings are resolved.

The magic, ``llm-agent run`` and the server extension all hold one. Settings are resolved here, in one
order, lowest first:

1. the traits' defaults;
2. Jupyter config files (``llm_agent_config.py``/``.json`` on Jupyter's config path and in the cwd);
3. the environment (each trait tagged with an ``env`` name, e.g. ``OLLAMA_HOST``, ``LLM_AGENT_DATA_ROOT``);
4. explicit settings (``%config`` in a notebook, ``--Class.trait=`` on a command line, the server's config);
5. what a runner imposes on the notebooks it runs (``llm-agent run --replay``, ``--model``).

Its ``runs`` (``runs.RunRegistry``) hold the runs of its sessions: front ends start, follow, stop and answer them
there, by session and run. Besides opening sessions it answers what front ends ask about one: its history, its variables
(summaries merged with the snapshot catalog), a snapshot pulled into this process, a DataFrame pushed
into the sandbox, whether another run holds the session, and which runs an earlier process left cut off.
Whatever of these executes in the sandbox kernel holds the session's run lock (``AgentSession.using_sandbox``).
Listing variables and reading snapshots start nothing and create nothing: a session without a live kernel
answers from its snapshots' catalog. How long kernels and idle sessions live is ``kernels.KernelKeeper``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from traitlets import TraitError
from traitlets.config import Config, Configurable

from ..config import (
    CONFIG_CLASSES,
    CONFIG_FILE_NAME,
    AgentConfig,
    LLMConfig,
    PathsConfig,
    SandboxConfig,
    config_search_path,
    load_config_files,
)
from ..events import Event
from ..exceptions import LLMAgentError, SessionBusy, SessionNotFound, SetupError
from ..llm import LLMClient
from ..run_requests import RunRequest
from ..sandbox import SessionPaths, VariableSummary, load_variable
from ..sandbox.hold import lock_taken, read_holder
from ..sandbox.inside.snapshots import read_catalog
from ..sandbox.results import ExecutionResult as ExecutionResult  # what execute_cell returns, for front ends
from ..store import ConversationStore
from .history import Conversations
from .kernels import KernelKeeper
from .library import Library
from .runs import RunRegistry
from .session import AgentSession
from .workspace import Workspace

#: Most variables a listing shows from a snapshots' catalog (written by the sandbox, so of any length).
MAX_LISTED = 500
#: Longest type name or reason a listing shows from that catalog.
MAX_LISTED_TEXT = 200


def environment_config(environ: Mapping[str, str] | None = None) -> Config:
    """The settings the environment gives: every trait tagged ``env=NAME`` whose variable is set."""
    environ = os.environ if environ is None else environ
    cfg = Config()
    for cls in CONFIG_CLASSES:
        for name, trait in cls.class_traits(config=True).items():
            var = trait.metadata.get("env", "")
            value = environ.get(var, "").strip() if var else ""
            if value:
                cfg[cls.__name__][name] = value
    return cfg


def resolve_config(
    explicit: Config | None = None,
    imposed: Config | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    files: Config | None = None,
) -> Config:
    """Defaults < config files < environment < explicit settings < imposed (see the module docstring)."""
    cfg = Config()
    cfg.merge(load_config_files()[0] if files is None else files)
    cfg.merge(environment_config(environ))
    for layer in (explicit, imposed):
        if layer:
            cfg.merge(layer)
    return cfg


def values_of(configurable: Configurable) -> dict[str, Any]:
    return {name: getattr(configurable, name) for name in type(configurable).class_trait_names(config=True)}


@dataclass
class VariableRow:
    """One variable as a front end lists it: what the live sandbox says, and what its snapshot holds."""

    name: str
    type: str
    size: str
    snapshot: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type, "size": self.size, "snapshot": self.snapshot}


class SessionManager:
    """Open sessions by id, each opened once and kept until closed or idle (``kernels.KernelKeeper``).

    ``explicit`` returns the explicit settings of the moment (``%config`` can change between cells);
    ``imposed`` what a runner imposes. Both are read again whenever a session is opened or refreshed.
    ``front_end`` ("magic", "panel", "batch") is who opened the sessions, as other runs waiting for one are told.
    ``clock`` (seconds, ``time.monotonic`` by default) measures how long sessions are idle. ``keep_runs`` finished
    runs stay in memory for clients that come back; ``where`` says where runs run ("on this server").
    """

    def __init__(
        self,
        explicit: Callable[[], Config] | None = None,
        imposed: Callable[[], Config] | None = None,
        *,
        front_end: str = "",
        clock: Callable[[], float] = time.monotonic,
        keep_runs: int = 20,
        where: str = "in this process",
    ):
        self._explicit = explicit or Config
        self._imposed = imposed or Config
        self.front_end = front_end
        self.sessions: dict[str, AgentSession] = {}
        self.runs = RunRegistry(self, keep=keep_runs, where=where)
        self._files: tuple[tuple[Any, ...], Config] | None = None
        self.kernels = KernelKeeper(self.sessions, lambda: SandboxConfig(config=self.config()), clock)

    def _config_files(self) -> Config:
        """The config files' settings, read again only when a file appeared, went or changed: every run on the
        server resolves the settings, and parsing the files each time is the bulk of that work."""
        signature = []
        for folder in config_search_path():
            for ext in (".py", ".json"):
                path = os.path.join(folder, CONFIG_FILE_NAME + ext)
                with contextlib.suppress(OSError):
                    st = os.stat(path)
                    signature.append((path, st.st_mtime_ns, st.st_size, st.st_ino))
        key = tuple(signature)
        if self._files is None or self._files[0] != key:
            self._files = (key, load_config_files()[0])
        return copy.deepcopy(self._files[1])  # merging shares sub-configs: the cached one must stay as read

    # --- settings -------------------------------------------------------------------------------------
    def config(self) -> Config:
        return resolve_config(self._explicit(), self._imposed(), files=self._config_files())

    def effective(self) -> tuple[LLMConfig, SandboxConfig, AgentConfig, PathsConfig]:
        cfg = self.config()
        return LLMConfig(config=cfg), SandboxConfig(config=cfg), AgentConfig(config=cfg), PathsConfig(config=cfg)

    def paths(self) -> PathsConfig:
        return PathsConfig(config=self.config())

    # --- what front ends use besides sessions (each in its module, under the settings in force) -------------
    @property
    def library(self) -> Library:
        """The retrieval collections: learn, forget, list (``agents/library.py``)."""
        return Library(self.config)

    @property
    def conversations(self) -> Conversations:
        """Sessions' records: list, rename, delete, messages, runs and their events, export (``agents/history.py``)."""
        return Conversations(self.paths)

    @property
    def workspace(self) -> Workspace:
        """Files into sessions' workspaces, checked and confined (``agents/workspace.py``)."""
        return Workspace(self.paths)

    # --- sessions -------------------------------------------------------------------------------------
    def find(self, session_id: str) -> AgentSession | None:
        return self.sessions.get(session_id)

    async def open(self, session_id: str, *, fresh: bool = False) -> AgentSession:
        """The open session with this id, opened now if it is not open yet (its kernel starts with its first
        execution).

        ``fresh``: a new session starts empty (no conversation, no snapshots). Settings that changed since
        an open session was opened apply to it from now on.
        """
        self.kernels.start_sweeping()
        session = self.sessions.get(session_id)
        if session is not None:
            session.touch()
            await self.refresh(session)
            return session
        try:
            session = AgentSession.open(
                session_id, config=self.config(), front_end=self.front_end, before_start=self.kernels.admit
            )
        except (LLMAgentError, TraitError, OSError) as exc:  # e.g. a replay cassette that does not exist
            raise SetupError(str(exc)) from exc
        session.clock = self.kernels.clock
        session.touch()
        try:
            if fresh:
                await session.reset(restart_sandbox=False)  # waits for, or refuses, a session another process uses
        except BaseException as exc:
            await session.close()
            if isinstance(exc, LLMAgentError):  # e.g. the isolation asked for is not available here
                raise SetupError(str(exc)) from exc
            raise
        self.sessions[session_id] = session
        return session

    async def refresh(self, session: AgentSession) -> None:
        """Apply changed settings (``%config``, a cassette) to an open session, between runs."""
        llm_config, _, agent_config, paths = self.effective()
        session.config = agent_config
        if values_of(llm_config) == values_of(session.llm.config):
            return
        try:
            client = LLMClient(llm_config, paths=paths)
        except (LLMAgentError, OSError) as exc:  # a cassette that cannot be read, a log folder that cannot be made
            raise SetupError(str(exc)) from exc
        old, session.llm = session.llm, client
        await old.aclose()

    async def reset(self, session_id: str) -> None:
        """A new conversation and a fresh sandbox without restoring, no snapshots."""
        await (await self.open(session_id)).reset()

    async def close(self, session_id: str) -> None:
        session = self.sessions.pop(session_id, None)
        if session is not None:
            await session.close()

    async def close_all(self) -> None:
        await self.kernels.stop_sweeping()
        sessions = list(self.sessions.values())
        self.sessions.clear()  # the same dict the keeper holds
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)

    def live_kernels(self) -> list[str]:
        """Ids of the sessions whose sandbox kernel is running (or starting) in this process, least recently used
        first."""
        return self.kernels.live()

    async def sweep(self) -> None:
        """Stop the kernels and close the sessions idle past ``SandboxConfig.idle_timeout`` now (this also
        happens in the background)."""
        await self.kernels.sweep()

    def exists(self, session_id: str) -> bool:
        """Is there such a session: open here, or in the store? (Creates nothing.)"""
        if session_id in self.sessions:
            return True
        paths = self.paths()
        if not os.path.exists(paths.store_path):
            return False
        with ConversationStore.from_config(paths) as store:
            try:
                store.get_session(session_id)
            except SessionNotFound:
                return False
        return True

    # --- what front ends ask about a session ---------------------------------------------------------------
    def history(self, session_id: str, limit: int = 20) -> list[dict[str, str]]:
        """The session's last ``limit`` messages, oldest first (empty for a session never used)."""
        with ConversationStore.from_config(self.paths()) as store:
            with contextlib.suppress(SessionNotFound):
                return [{"role": m.role, "content": m.content} for m in store.recent_messages(session_id, limit)]
        return []

    def busy(self, session_id: str) -> str | None:
        """Who holds the session's run lock now ("a run started from the side panel (pid 1, since ...)"), or None."""
        paths = SessionPaths.for_session(session_id, self.paths())
        if not lock_taken(paths):
            return None
        holder = read_holder(paths)
        return holder.describe() if holder else "another run"

    def mark_interrupted(self, started_before: float) -> list[str]:
        """Mark runs left "running" before ``started_before`` interrupted; returns their ids.

        A process that drives runs (the server) calls this when it starts: what an earlier one was running when
        it stopped can no longer finish. Sessions whose run lock a live process holds are left alone: that
        process (a notebook's ``%%agent``, ``llm-agent run``) may be running them right now.
        """
        paths = self.paths()
        with ConversationStore.from_config(paths) as store:
            free = [s.id for s in store.list_sessions() if not lock_taken(SessionPaths.for_session(s.id, paths))]
            return store.mark_interrupted(started_before, free)

    async def variables(self, session_id: str, *, wait: float | None = None) -> list[VariableRow]:
        """The live sandbox's variables with their snapshots, then variables kept only as snapshots.

        ``SessionNotFound`` for a session that does not exist. Starts no kernel: without a live one here the
        rows come from the snapshots' catalog. With one, holds the session's run lock, waiting up to ``wait``
        seconds (default: the session's wait timeout) for a run that holds it; ``SessionBusy`` after that.
        """
        loop = asyncio.get_running_loop()
        session = self.find(session_id)
        if session is None and not await loop.run_in_executor(None, self.exists, session_id):
            raise SessionNotFound(session_id, self.paths().store_path)
        summaries: list[VariableSummary] | None = None
        sandbox = session.sandbox if session is not None else None
        if session is not None and sandbox is not None and sandbox.started:
            async with session.using_sandbox("a variable listing", wait=wait):
                summaries = await sandbox.async_live_variables()  # None: it stopped while we waited
        folder = SessionPaths.for_session(session_id, self.paths()).snapshots
        catalog = await loop.run_in_executor(None, lambda: read_catalog(folder, set_aside=False))
        return variable_rows(summaries, catalog)

    async def pull(self, session_id: str, name: str, *, wait: float | None = None, set_aside: bool = True) -> Any:
        """The snapshot of ``name`` loaded into this process (``KeyError`` saying what exists when there is none).

        Snapshots still being written are waited for first, under the session's run lock; when a run keeps the
        lock past ``wait`` seconds, the snapshot is read as it is on disk (each is written whole, then renamed).
        Starts no kernel. ``set_aside=False`` (a GET) leaves an unusable catalog where it is.
        """
        session = self.sessions.get(session_id)
        if session is not None and session.sandbox is not None and session.sandbox.started:
            with contextlib.suppress(SessionBusy):
                async with session.using_sandbox("a pull", wait=wait):
                    await session.sandbox.async_flush_snapshots()
        _, sandbox_config, _, paths = self.effective()
        return load_variable(session_id, name, paths, sandbox_config, set_aside=set_aside)

    async def stored_answer(self, session_id: str, request: RunRequest, *, any_session: bool = False) -> list[Event] | None:
        """The stored events of this same request answered before (``AgentSession.stored_answer``), or None."""
        session = self.find(session_id) or await self.open(session_id)
        return await session.stored_answer(request, any_session=any_session)

    async def execute_cell(self, session_id: str, source: str) -> ExecutionResult:
        """A ``%%sandbox`` cell run in the session's sandbox (``AgentSession.execute_cell``); opens the session."""
        session = self.find(session_id) or await self.open(session_id)
        return await session.execute_cell(source, front_end=self.front_end)

    async def push(self, session_id: str, name: str, dataframe: Any) -> None:
        """Put a pandas DataFrame into the session's sandbox as ``name``, under the session's run lock."""
        session = self.find(session_id) or await self.open(session_id)
        if session.sandbox is None:
            raise LLMAgentError(f"Session {session_id!r} has no sandbox to push {name!r} into.")
        session.touch()
        async with session.using_sandbox("a push of a DataFrame"):
            await session.sandbox.async_push(name, dataframe)


def variable_rows(live: list[VariableSummary] | None, catalog: dict[str, Any]) -> list[VariableRow]:
    """Rows of a listing: the live kernel's variables (``live``; None when there is no kernel) with their
    snapshots, then what only the catalog holds, then what the catalog had that is refused. The catalog was
    written by the sandbox: what it says is cut to ``MAX_LISTED_TEXT`` and its rows to ``MAX_LISTED``."""
    saved, failed = catalog["variables"], catalog["not_persisted"]

    def short(value: object) -> str:
        return str(value)[:MAX_LISTED_TEXT]

    def stored(entry: dict[str, Any]) -> str:
        return f"{entry['kind']} ({int(entry.get('bytes', 0)):,} bytes)"

    rows = []
    for s in live or []:
        size = "x".join(str(n) for n in s.shape) if s.shape is not None else (str(s.length) if s.length is not None else "")
        if s.name in saved:
            snap = stored(saved[s.name])
        elif s.name in failed:
            snap = f"not saved: {short(failed[s.name]['reason'])}"
        else:
            snap = "not saved"
        rows.append(VariableRow(s.name, s.type, size, snap))
    names = {s.name for s in live or []}
    only: list[VariableRow] = []
    for name, entry in sorted(saved.items()):
        if name not in names:
            shape = entry.get("shape")
            size = short("x".join(str(n) for n in shape[:8])) if isinstance(shape, list) else ""
            where = "snapshot only" if live is not None else "snapshot; restored when the sandbox starts"
            only.append(VariableRow(short(name), short(entry.get("type", "")), size, f"{entry['kind']} ({where})"))
    if live is None:  # no live kernel here to ask: the catalog also says what could not be saved
        for name, info in sorted(failed.items()):
            only.append(VariableRow(short(name), short(info["type"]), "", f"not saved: {short(info['reason'])}"))
    for name, why in sorted(catalog["problems"].items()):
        only.append(VariableRow(short(name), "", "", f"refused: {short(why)}"))
    room = max(MAX_LISTED - len(rows), 1)
    if len(only) > room:
        left = len(only) - room + 1
        only = only[: room - 1] + [VariableRow("...", "", "", f"{left} more not listed")]
    return rows + only
