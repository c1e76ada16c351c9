"""A run's events after N and its generated cells (REST), and the WebSocket of a session: requests in, events out.

WebSocket protocol (JSON text frames):

- in: ``{"type": "run", "request": str, "mode"?: auto|chat|react|plan, "model"?: str, "files"?: [names],
  "approval"?: bool}`` (approval left out: the server's ``AgentConfig.approval``), ``{"type": "stop", "run_id"?: str}``,
  ``{"type": "approval", "run_id", "cell_id", "action": run|edit|skip, "source"?: str}`` (the answer to an
  ``approval_requested`` event; ``source`` is the new code of an edit),
  ``{"type": "resume", "run_id": str, "after": N}`` (also as the query string ``?run_id=R&after=N``),
  ``{"type": "fix" | "explain", "source": str, "error": str, "outputs"?: str, "number"?: N, "context"?: {...},
  "notebook_path"?: str, "model"?: str}`` (a chat run about one of the user's cells; a fix ends with a
  ``fix_proposed`` event, the corrected cell and its diff, applied by the client only if the user accepts);
- out: each event's ``to_dict()`` with its ``seq`` (1, 2, ... per run, tokens included); ``{"type": "error",
  "message": str}`` for a message that cannot be carried out (the socket stays open); ``{"type": "stopping",
  "run_id"}``; after a replay from the store, ``{"type": "replayed", "run_id", "status", "last_seq"}``.

A socket addresses the runs of its own session only: a stop, approval or resume naming another session's run
(held here or stored) is refused with an ``error`` message, as a message that is not strict JSON or has a
malformed field is (``parsing.py``). Run state is the session service's (``agents/runs.py``: ``self.runs``); what is
here is the socket's: reading messages, and writing the events of the runs it follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path, PurePosixPath
from typing import Any

import tornado.web
from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from ..agents.fix import CELL_ACTIONS, cell_request
from ..agents.live_run import LiveRun
from ..cells import BUNDLE_VERSION, CELLS_MIME, INSERT_ORIGINS, insertable_cells, make_bundle, run_model, slim_cells_output
from ..exceptions import (
    BadName,
    BadRequest,
    NotWaitingForApproval,
    RunNotFound,
    RunNotRunning,
    RunOfAnotherSession,
    RunRefused,
    SessionBusy,
)
from ..run_requests import ApprovalReply, RunRequest, StopRequest, request_from_dict
from .base import AgentAPIHandler, AgentHandlerMixin, fail, json_body, query_number
from .parsing import parse_json, whole_number

_log = logging.getLogger(__name__)


def _after(raw: Any) -> int:
    return whole_number(raw, "after", default=0, meaning="the last seq you received")


def notebook_folder(root: Path, notebook_path: str) -> str:
    """The folder of the notebook at ``notebook_path`` (a path in the server's file browser) inside ``root``, whose
    file names the model is shown; "" for a path that leaves the root (``..``, an absolute path, a link)."""
    parts = PurePosixPath(notebook_path).parent.parts if notebook_path else ()
    if not notebook_path or any(p in ("..", "/", "") or "\\" in p for p in parts):
        return ""
    folder = os.path.realpath(root.joinpath(*parts))
    if os.path.commonpath([folder, str(root)]) != str(root) or not os.path.isdir(folder):
        return ""
    return folder


def another_session(run_id: str, action: str) -> str:
    return f"Run {run_id!r} belongs to another session; {action} it on that session's socket."


class RunEventsHandler(AgentAPIHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        """``?after=N``: the events with ``seq > N``, the run's status, and whether it is still going here."""
        after = query_number(self, "after", 0, meaning="the last seq you received")
        try:
            found = await self.runs.events_after(run_id, after)
        except RunNotFound:
            fail(404, f"There is no run {run_id!r}; a run's id comes in its run_started event.")
        self.send_json({"run_id": run_id, "status": found.status, "live": found.running, "events": found.events})


class RunCellsHandler(AgentAPIHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        """The run's generated cells, ready to insert: the bundle ``cells.make_bundle`` builds, as the magic and
        ``llm-agent run`` write them (``AgentConfig.include_failed_cells`` applied), so the panel only inserts.
        ``?origin=panel`` (or ``magic``, with ``from_cell``): as the panel inserts them (``cells.insertable_cells``)."""
        origin, from_cell = self.get_argument("origin", ""), self.get_argument("from_cell", "")
        if origin and origin not in INSERT_ORIGINS:
            fail(400, f"origin is one of {', '.join(INSERT_ORIGINS)}, or left out (the cells as the magic writes them).")
        try:
            typed, session_id = await self.runs.typed_events(run_id)
        except RunNotFound:
            fail(404, f"There is no run {run_id!r}; a run's id comes in its run_started event.")
        include_failed = self.manager.effective()[2].include_failed_cells
        bundle = make_bundle(typed, session_id=session_id, model=run_model(typed), include_failed=include_failed)
        if origin:
            bundle["cells"] = insertable_cells(bundle, origin=origin, from_cell=from_cell)
        self.send_json(bundle)


class OutputCellsHandler(AgentAPIHandler):
    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        """``{"output": <a %%agent output carrying the cells bundle>, "from_cell": <that cell's id>}``: the bundle's
        cells as the panel inserts them below that cell, and the output as it stays once they are there (its one
        line of text, ``cells.slim_cells_output``). Nothing is stored: the panel then only inserts and replaces."""
        body = json_body(self)
        output, from_cell = body.get("output"), body.get("from_cell", "")
        output = output if isinstance(output, dict) else {}
        data: dict[str, Any] = output["data"] if isinstance(output.get("data"), dict) else {}
        bundle = data.get(CELLS_MIME)
        if not isinstance(bundle, dict) or bundle.get("version") != BUNDLE_VERSION or not isinstance(bundle.get("cells"), list):
            fail(
                400,
                f"output is a notebook output whose data holds a {CELLS_MIME} bundle of version {BUNDLE_VERSION} "
                "(what %%agent displays).",
            )
        if not isinstance(from_cell, str):
            fail(400, "from_cell is the id (a string) of the cell whose output this is.")
        cells = insertable_cells(bundle, origin="magic", from_cell=from_cell)
        slim = {**output, "data": dict(data), "metadata": dict(output.get("metadata") or {})}
        slim_cells_output(slim, len(cells))
        self.send_json({"run_id": bundle.get("run_id", ""), "cells": cells, "output": slim})


class SessionSocket(WebSocketMixin, WebSocketHandler, AgentHandlerMixin, JupyterHandler):
    """The WebSocket of one session (``/llm-agent/api/sessions/<id>/ws``)."""

    session_id = ""

    @ws_authenticated
    @authorized("execute")
    async def get(self, session_id: str) -> None:  # type: ignore[override]  # tornado's get takes *args
        self.session_id = session_id
        self._followers: set[asyncio.Task[None]] = set()
        await super().get(session_id=session_id)

    async def open(self, session_id: str) -> None:
        super().open()
        # Events are small frames sent one by one: without TCP_NODELAY, Nagle's algorithm holds each one behind the
        # peer's delayed ACK (40 ms on Linux), so a token would reach the client up to 40 ms late.
        self.set_nodelay(True)
        try:
            run_id, after = self.get_argument("run_id", ""), self.get_argument("after", "0")
        except tornado.web.HTTPError as exc:  # not UTF-8: the socket is open, so the client hears why on it
            return self.refuse(f"The query string cannot be read ({exc.log_message}); send ?run_id=R&after=N.")
        if run_id:
            await self.on_message(json.dumps({"type": "resume", "run_id": run_id, "after": after}))

    def on_close(self) -> None:
        super().on_close()
        for task in getattr(self, "_followers", ()):
            task.cancel()  # the runs themselves go on: they belong to the server

    def send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(WebSocketClosedError):
            self.write_message(json.dumps(message, default=str))

    def refuse(self, message: str, **extra: Any) -> None:
        self.send({"type": "error", "message": message, **extra})

    async def on_message(self, raw: str | bytes) -> None:
        try:
            data = parse_json(raw, "This message")
        except BadRequest as exc:
            return self.refuse(f"A message is one JSON object. {exc}")
        kind = data.get("type") if isinstance(data, dict) else None
        try:
            if isinstance(data, dict) and data.get("type") == "resume":
                run_id = data.get("run_id") or ""
                if not isinstance(run_id, str):
                    raise BadRequest("A resume's run_id is the id (a string) of the run to follow.")
                return await self.resume(run_id, _after(data.get("after")))
            if isinstance(data, dict) and data.get("type") in CELL_ACTIONS:  # a cell's Fix / Explain: a chat run
                return await self.start(cell_request(data))
            request = request_from_dict(data)
            if isinstance(request, RunRequest):
                await self.start(request)
            elif isinstance(request, StopRequest):
                self.stop(request)
            elif isinstance(request, ApprovalReply):
                self.approve(request)
        except RunOfAnotherSession as exc:  # the service's words, said of this socket
            self.refuse(another_session(exc.run_id, exc.action), request=kind)
        except (BadRequest, BadName, RunRefused, SessionBusy, RunNotRunning, NotWaitingForApproval) as exc:
            self.refuse(str(exc), request=kind)
        except Exception:  # noqa: BLE001  # a bug, not the client's mistake: the client hears of it, the socket stays open
            _log.exception("message %.200r on the socket of session %s", raw, self.session_id)
            self.refuse("The server failed to carry out this message (its log says why); the socket stays open.", request=kind)

    async def start(self, request: RunRequest) -> None:
        request.folder = ""  # files come from this session's workspace (uploads), never from a folder a client names
        request.context_folder = notebook_folder(self.root_dir, request.notebook_path)
        if request.files:
            request.files = self.manager.workspace.attached(self.session_id, request.files)
        request.origin = request.origin or "panel"
        live = await self.runs.start(self.session_id, request)
        self.follow(live, 0)

    def stop(self, request: StopRequest) -> None:
        stopped = self.runs.stop(self.session_id, request.run_id)
        self.send({"type": "stopping", "run_id": stopped})

    def approve(self, reply: ApprovalReply) -> None:
        """Pass Run / Edit / Skip to the cell of this session's run that waits for it; what follows (the cell
        sent again, its output, or a skipped cell_output) comes as the run's events."""
        self.runs.approve(self.session_id, reply)

    async def resume(self, run_id: str, after: int) -> None:
        if not run_id:
            raise BadRequest("A resume needs the run_id of the run to follow.")
        try:
            found = await self.runs.events_after(run_id, after, session_id=self.session_id)
        except RunNotFound:
            raise BadRequest(f"There is no run {run_id!r}.") from None
        if found.live is not None:
            self.follow(found.live, after)
            return
        for event in found.events:
            self.send(event)
        self.send(
            {
                "type": "replayed",
                "run_id": run_id,
                "status": found.status,
                "last_seq": found.events[-1]["seq"] if found.events else after,
            }
        )

    def follow(self, live: LiveRun, after: int) -> None:
        # What the run has now goes out at once, the rest from a task: a new run's first event does not wait
        # for that task's first turn of the loop.
        seen = max(after, 0)
        for event in live.wire[seen:]:
            self.send(event)
        task = asyncio.create_task(self._forward(live, max(seen, len(live.wire))))
        self._followers.add(task)
        task.add_done_callback(self._followers.discard)

    async def _forward(self, live: LiveRun, after: int) -> None:
        # A burst (a fast model's tokens) is written frame by frame without a wait between frames; the wait for
        # the socket to take it comes once per burst, so a slow client slows only its own run's stream.
        async for batch in live.batches(after):
            try:
                written = None
                for event in batch:
                    written = self.write_message(json.dumps(event, default=str))
                if written is not None:
                    await written
            except WebSocketClosedError:
                return
