"""Files into a session's workspace, and its variables (list; a bounded preview of a snapshot)."""

from __future__ import annotations

import tornado.web
from jupyter_server.auth.decorator import authorized

from ..agents.history import in_thread
from ..agents.workspace import check_name
from ..exceptions import BadName, LLMAgentError, SessionBusy, SessionNotFound
from .base import AgentAPIHandler, fail, query_number
from .handlers_sessions import not_found
from .preview import preview


class FilesHandler(AgentAPIHandler):
    @tornado.web.authenticated
    @authorized
    async def post(self, session_id: str) -> None:
        """Multipart (each part's file name) or a raw body with ``?name=``; 201 with what was written."""
        limit = int(self.app.max_upload_mb * 2**20)
        declared = self.request.headers.get("Content-Length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit + 2**16:  # room for multipart headers
            self._too_large(limit)
        if self.request.files:
            parts = [(f["filename"], f["body"]) for files in self.request.files.values() for f in files]
        else:
            # Read raw: tornado's get_argument turns control characters into spaces, hiding a hostile name.
            raw = self.request.query_arguments.get("name", [b""])[-1]
            try:
                name = raw.decode("utf-8")
            except UnicodeDecodeError:
                fail(400, "The file name is not valid UTF-8.")
            if not name:
                fail(400, "Send the file as multipart/form-data, or as the raw body with ?name=FILE.")
            parts = [(name, self.request.body)]
        for name, body in parts:
            try:
                check_name(name)
            except BadName as exc:
                fail(400, str(exc))
            if len(body) > limit:
                self._too_large(limit, name)
        uploads = self.manager.workspace
        try:
            written = await in_thread(lambda: uploads.upload(session_id, parts))
        except OSError as exc:
            fail(400, f"The file could not be written into the workspace: {getattr(exc, 'reason', '') or exc}")
        self.send_json({"session_id": session_id, "files": written}, 201)

    def _too_large(self, limit: int, name: str = "the upload") -> None:
        fail(
            413,
            f"{name} is larger than the limit of {self.app.max_upload_mb:g} MB "
            "(LLMAgentExtension.max_upload_mb); send a smaller file or raise the limit.",
        )


class VariablesHandler(AgentAPIHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        """The live sandbox's variables with their snapshots; without a live kernel, what its snapshots hold.

        Starts nothing. 404 for a session that does not exist; 409 at once while a run holds the session: its
        kernel is busy, and a request does not wait for it."""
        try:
            rows = await self.manager.variables(session_id, wait=0)
        except SessionNotFound:
            fail(404, not_found(session_id))
        except SessionBusy as exc:
            fail(409, str(exc))
        except LLMAgentError as exc:
            fail(503, f"The session's sandbox could not be reached: {exc}")
        self.send_json({"session_id": session_id, "variables": [row.to_dict() for row in rows]})


class VariableHandler(AgentAPIHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, session_id: str, name: str) -> None:
        """``?rows=N`` (at most the extension's ``preview_rows``): the snapshot's first rows as JSON and HTML."""
        rows = min(query_number(self, "rows", self.app.preview_rows), self.app.preview_rows)
        try:
            # Busy: the snapshot as it is on disk. A GET changes nothing, not even an unusable catalog.
            value = await self.manager.pull(session_id, name, wait=0, set_aside=False)
        except KeyError as exc:
            fail(404, str(exc.args[0]) if exc.args else f"No snapshot of {name!r} in this session.")
        except (LLMAgentError, OSError, ValueError) as exc:
            fail(422, f"The snapshot of {name!r} cannot be shown: {exc}")
        self.send_json({"session_id": session_id, **await in_thread(lambda: preview(name, value, rows))})
