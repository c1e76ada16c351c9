"""Sessions (list, create, rename, delete, messages, export), the models Ollama has, and the diagnostics."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import tornado.web
from jupyter_server.auth.decorator import authorized

from ..agents.history import Session
from ..exceptions import SessionNotFound
from ..text import is_embedding_model
from .base import AgentAPIHandler, fail, json_body, query_number
from .status import diagnostics


def session_json(session: Session) -> dict[str, object]:
    return {
        "id": session.id,
        "title": session.title,
        "created_at": session.created_at,
        "updated_at": session.updated_at,
        "message_count": session.message_count,
    }


def not_found(session_id: str) -> str:
    return f"There is no session {session_id!r}; GET /llm-agent/api/sessions lists them."


class SessionsHandler(AgentAPIHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        sessions = await self.in_store(lambda records: records.sessions())
        self.send_json({"sessions": [session_json(s) for s in sessions]})

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        """``{"id"?: str, "title"?: str}``: 201 with the new session, 200 with the existing one of that id."""
        body = json_body(self)
        session_id, title = body.get("id") or uuid.uuid4().hex[:12], body.get("title", "")
        if not isinstance(session_id, str) or not isinstance(title, str):
            fail(400, "A session's id and title are strings.")

        session, created = await self.in_store(lambda records: records.create(session_id, title))
        self.send_json(session_json(session), 201 if created else 200)


class SessionHandler(AgentAPIHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        try:
            session = await self.in_store(lambda records: records.get(session_id))
        except SessionNotFound:
            fail(404, not_found(session_id))
        current = self.runs.current(session_id)
        self.send_json({**session_json(session), "running": current.run_id if current else None})

    @tornado.web.authenticated
    @authorized
    async def patch(self, session_id: str) -> None:
        """``{"title": str}`` renames the session."""
        title = json_body(self).get("title")
        if not isinstance(title, str):
            fail(400, 'Send {"title": "..."} to rename a session.')
        try:
            session = await self.in_store(lambda records: records.rename(session_id, title))
        except SessionNotFound:
            fail(404, not_found(session_id))
        self.send_json(session_json(session))

    @tornado.web.authenticated
    @authorized
    async def delete(self, session_id: str) -> None:
        """Deletes the conversation (messages, runs, events) and closes the session's sandbox."""
        if self.runs.current(session_id) is not None:
            fail(409, f"Session {session_id!r} is running a request; stop it before deleting the session.")
        await self.manager.close(session_id)
        try:
            await self.in_store(lambda records: records.delete(session_id))
        except SessionNotFound:
            fail(404, not_found(session_id))
        self.set_status(204)
        self.finish()


class MessagesHandler(AgentAPIHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        """``?limit=N`` (default all): the last N messages, oldest first."""
        limit = query_number(self, "limit", -1, meaning="how many of the last messages; leave it out for all")
        try:
            messages = await self.in_store(lambda records: records.messages(session_id, None if limit < 0 else limit))
        except SessionNotFound:
            fail(404, not_found(session_id))
        self.send_json(
            {
                "session_id": session_id,
                "messages": [
                    {
                        "id": m.id,
                        "role": m.role,
                        "content": m.content,
                        "mode": m.mode,
                        "run_id": m.run_id,
                        "created_at": m.created_at,
                    }
                    for m in messages
                ],
            }
        )


class ExportHandler(AgentAPIHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        try:
            text = await self.in_store(lambda records: records.export(session_id))
        except SessionNotFound:
            fail(404, not_found(session_id))
        self.finish(text, set_content_type="text/markdown; charset=utf-8")


class NotebookSessionHandler(AgentAPIHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        """``?path=dir/nb.ipynb`` (a contents path): the session id ``%%agent`` uses in that notebook's kernel.

        The kernel's id is ``$JPY_SESSION_NAME``, which Jupyter Server sets when it starts the kernel of a
        notebook; asking the same function here gives the panel the very same id, whatever the root folder.
        """
        path = self.contents_path(self.get_argument("path", ""))
        name = path.rsplit("/", 1)[-1]
        env = self.settings["session_manager"].get_kernel_env(path, name)
        self.send_json({"path": path, "session_id": env["JPY_SESSION_NAME"]})

    def contents_path(self, raw: str) -> str:
        """``raw`` as a path relative to the server's root folder, or a 400: no ``..``, and neither an absolute
        path nor a link may lead out of the root (the session id names a notebook under it)."""
        usage = "Send ?path=<the notebook's path in the file browser>, such as ?path=work/sales.ipynb."
        if not raw.strip("/") or "\x00" in raw:
            fail(400, usage)
        if ".." in raw.replace("\\", "/").split("/"):
            fail(400, f"{raw!r} holds '..'; {usage}")
        root = self.root_dir
        # The id is made from the path as given (as Jupyter makes the kernel's): links are resolved only to check.
        relative = os.path.relpath(raw, root) if os.path.isabs(raw) else raw.strip("/")
        full = Path(os.path.realpath(root / relative))
        if full == root or not full.is_relative_to(root):
            fail(400, f"{raw!r} is outside the server's root folder {root} (as an absolute path or through a link); {usage}")
        return relative


class ModelsHandler(AgentAPIHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        """The chat models of every configured provider (``provider:name`` for those of a provider other than
        the default; the embedding ones apart: they cannot answer), the configured default, and where each
        provider's server is."""
        llm_config, _, _ = self.configs()
        models = await self.ollama_models()
        embedding = [m for m in models if is_embedding_model(m, llm_config.embedding_model)]
        where = {"ollama": llm_config.host, "openai": llm_config.base_url}
        providers = {p: where[p] for p in llm_config.providers_in_use()}
        self.send_json(
            {
                "models": [m for m in models if m not in embedding],
                "embedding_models": embedding,
                "default": llm_config.model,
                "host": llm_config.host,
                "providers": providers,
            }
        )


class StatusHandler(AgentAPIHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        """The checks of ``llm-agent doctor``; ``ok`` is false when a required one fails."""
        running = self.runs.running()
        checks = await diagnostics(self.manager.config())
        self.send_json({"ok": not any(c["status"] == "fail" for c in checks), "checks": checks, "running_runs": running})
