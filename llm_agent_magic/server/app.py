"""``LLMAgentExtension``: the server extension's settings, its routes and the one ``SessionManager`` it holds."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Float, Int
from traitlets.config import Config

from ..agents.manager import SessionManager
from ..config import CONFIG_CLASSES

API = "/llm-agent/api"
SESSION = r"(?P<session_id>[^/]+)"
COLLECTION = r"(?P<name>[^/]+)"


class LLMAgentExtension(ExtensionApp):
    """The agent behind JupyterLab's side panel and OpenAI-style clients, on the server's own loop."""

    name = "llm_agent_magic"
    load_other_extensions = True

    max_upload_mb = Float(
        100.0, help="Largest file (MB) the files route accepts into a session's workspace; larger ones get 413."
    ).tag(config=True)
    preview_rows = Int(50, help="Rows of a variable's snapshot the variables route shows at most (its preview table).").tag(
        config=True
    )
    keep_runs = Int(200, help="Finished runs kept in memory for clients that reconnect; older ones are read from the store.").tag(
        config=True
    )
    stop_timeout = Float(30.0, help="Seconds the server waits for running runs to stop when it shuts down.").tag(config=True)

    #: The user's choices from JupyterLab's Settings editor (handlers_settings.py), over the server's config.
    user_settings: Config

    def _explicit(self) -> Config:
        """Our Configurable classes' settings from the server's own config (``c.LLMConfig.model = ...``), then
        what the user chose in JupyterLab's Settings editor."""
        source = self.serverapp.config if self.serverapp is not None else self.config
        explicit = copy.deepcopy(  # merging changes sub-configs in place: the server's and ours stay as they are
            Config({cls.__name__: source[cls.__name__] for cls in CONFIG_CLASSES if cls.__name__ in source})
        )
        explicit.merge(copy.deepcopy(self.user_settings))
        return explicit

    def initialize_settings(self) -> None:
        self.started_at = time.time()
        self.user_settings = Config()
        self.manager = SessionManager(
            explicit=self._explicit, front_end="panel", keep_runs=self.keep_runs, where="on this server"
        )
        self.interrupted = self._mark_interrupted()
        self.settings.update(llm_agent_manager=self.manager, llm_agent_app=self)

    def _mark_interrupted(self) -> list[str]:
        """Runs an earlier server left "running" can no longer finish: say so in the store (not those of sessions
        whose run lock a live process holds: a notebook's ``%%agent`` may be running them)."""
        try:
            run_ids = self.manager.mark_interrupted(self.started_at)
        except Exception as exc:  # noqa: BLE001  # a store that cannot be opened is reported by /status, not fatal here
            self.log.warning("llm-agent: could not check the store for interrupted runs: %s", exc)
            return []
        if run_ids:
            self.log.info("llm-agent: %d run(s) cut off by an earlier stop marked interrupted", len(run_ids))
        return run_ids

    def initialize_handlers(self) -> None:
        from . import (
            handlers_collections,
            handlers_files,
            handlers_runs,
            handlers_sessions,
            handlers_settings,
            openai_api,
        )

        routes: list[tuple[str, Any]] = [
            (rf"{API}/sessions", handlers_sessions.SessionsHandler),
            (rf"{API}/sessions/{SESSION}", handlers_sessions.SessionHandler),
            (rf"{API}/sessions/{SESSION}/messages", handlers_sessions.MessagesHandler),
            (rf"{API}/sessions/{SESSION}/export", handlers_sessions.ExportHandler),
            (rf"{API}/sessions/{SESSION}/files", handlers_files.FilesHandler),
            (rf"{API}/sessions/{SESSION}/variables", handlers_files.VariablesHandler),
            (rf"{API}/sessions/{SESSION}/variables/(?P<name>[^/]+)", handlers_files.VariableHandler),
            (rf"{API}/sessions/{SESSION}/ws", handlers_runs.SessionSocket),
            (rf"{API}/runs/(?P<run_id>[^/]+)/events", handlers_runs.RunEventsHandler),
            (rf"{API}/runs/(?P<run_id>[^/]+)/cells", handlers_runs.RunCellsHandler),
            (rf"{API}/output-cells", handlers_runs.OutputCellsHandler),
            (rf"{API}/notebook-session", handlers_sessions.NotebookSessionHandler),
            (rf"{API}/models", handlers_sessions.ModelsHandler),
            (rf"{API}/status", handlers_sessions.StatusHandler),
            (rf"{API}/settings", handlers_settings.SettingsHandler),
            (rf"{API}/collections", handlers_collections.CollectionsHandler),
            (rf"{API}/collections/{COLLECTION}", handlers_collections.CollectionHandler),
            (rf"{API}/collections/{COLLECTION}/learn", handlers_collections.LearnHandler),
            (rf"{API}/collections/{COLLECTION}/forget", handlers_collections.ForgetHandler),
            (r"/llm-agent/v1/chat/completions", openai_api.ChatCompletionsHandler),
            (r"/llm-agent/v1/models", openai_api.OpenAIModelsHandler),
        ]
        self.handlers.extend(routes)

    async def stop_extension(self) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.manager.runs.stop_all(), self.stop_timeout)
        await self.manager.close_all()
