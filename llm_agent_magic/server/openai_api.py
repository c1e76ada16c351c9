"""``/llm-agent/v1/chat/completions`` and ``/llm-agent/v1/models`` in OpenAI's chat-completions format.

The last user message is the request. Extra fields: ``agent_type`` (auto, chat, react, plan),
``session_id`` (continue that session; without it a new one is made and its id returned), ``files``
(names uploaded through the files route). The answer is ``choices[0].message.content``; the cells the
agent ran come in ``llm_agent`` (``session_id``, ``run_id``, ``status``, ``cells``); ``usage`` sums
Ollama's token counts. ``stream: true`` sends ``chat.completion.chunk`` server-sent events, then
``data: [DONE]``. Authentication is Jupyter's: ``Authorization: token T`` or ``Authorization: Bearer T``.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import tornado.web
from jupyter_server.auth.decorator import authorized
from tornado.iostream import StreamClosedError

from ..agents.live_run import LiveRun
from ..cells import make_bundle
from ..events import Answer, Error, Token, events_from_store
from ..exceptions import BadName, BadRequest, RunRefused, SessionBusy
from ..run_requests import MODE_ALIASES, RunRequest
from ..run_summary import RunSummary
from .base import AgentAPIHandler, fail, json_body

#: The model name meaning "the agent's configured model"; any model Ollama has may be named instead.
AGENT_MODEL = "llm-agent"
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "invalid_request_error",
}


def _text(content: Any) -> str:
    """An OpenAI message's content: a string, or a list of parts of which the text ones count."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p["text"] for p in content if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        )
    return ""


class OpenAIHandler(AgentAPIHandler):
    """Errors in OpenAI's shape: ``{"error": {"message", "type", "code"}}``."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "reason", None) or getattr(exc, "log_message", None) or self._reason
        kind = ERROR_TYPES.get(status_code, "server_error" if status_code >= 500 else "invalid_request_error")
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": {"message": message, "type": kind, "code": status_code}}))


class OpenAIModelsHandler(OpenAIHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        models = await self.ollama_models()
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": owner}
            for name, owner in [(AGENT_MODEL, "llm-agent")] + [(m, "ollama") for m in models]
        ]
        self.send_json({"object": "list", "data": data})


class ChatCompletionsHandler(OpenAIHandler):
    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        body = json_body(self)
        try:
            request, session_id, earlier = self._request(body)
        except (BadRequest, BadName) as exc:
            fail(400, str(exc))
        if earlier:  # a new session: the client's earlier turns become its history
            await self.in_store(lambda records: records.seed(session_id, earlier))
        try:
            live = await self.runs.start(session_id, request)
        except SessionBusy as exc:
            fail(409, str(exc))
        except RunRefused as exc:
            fail(503, f"The run could not start: {exc}")
        model = str(body.get("model") or AGENT_MODEL)
        created = int(time.time())
        if body.get("stream"):
            await self._stream(live, session_id, model, created)
        else:
            events = [e async for e in live.follow(0)]
            self.send_json(self._completion(events, live, session_id, model, created))

    def _request(self, body: dict[str, Any]) -> tuple[RunRequest, str, list[tuple[str, str]]]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("messages must be a non-empty list of {role, content} objects.")
        users = [i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"]
        if not users:
            raise BadRequest("messages holds no user message: the last user message is the request.")
        text = _text(messages[users[-1]].get("content"))
        agent_type = body.get("agent_type") or "auto"
        if not isinstance(agent_type, str) or agent_type not in MODE_ALIASES:
            raise BadRequest(f"Unknown agent_type {agent_type!r}; use auto, chat, react or plan.")
        given = body.get("session_id")
        if given is not None and (not isinstance(given, str) or not given):
            raise BadRequest("session_id must be the id of a session (a string), or left out for a new one.")
        session_id = given or f"openai-{uuid.uuid4().hex[:12]}"
        earlier: list[tuple[str, str]] = []
        if not given:
            earlier = [
                (m["role"], _text(m.get("content")))
                for m in messages[: users[-1]]
                if isinstance(m, dict) and m.get("role") in ("user", "assistant", "system")
            ]
        files = body.get("files") or []
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise BadRequest("files must be a list of names uploaded through the files route.")
        model = body.get("model")
        if model is not None and not isinstance(model, str):
            raise BadRequest(f"model must be a model name (a string) such as {AGENT_MODEL!r}, or left out.")
        if not isinstance(body.get("stream", False), (bool, type(None))):
            raise BadRequest("stream must be true or false.")
        request = RunRequest(
            text,
            mode=agent_type,
            model=None if model in (None, "", AGENT_MODEL) else model,
            files=self.manager.workspace.attached(session_id, files),
            origin="openai",
            approval=False,  # an OpenAI client has no way to answer Run / Edit / Skip: never wait for one
        )
        return request, session_id, earlier

    def _extra(self, events: list[dict[str, Any]], live: LiveRun, session_id: str) -> dict[str, Any]:
        typed = events_from_store(events)
        summary = RunSummary.of(typed)
        include_failed = self.manager.effective()[2].include_failed_cells
        bundle = make_bundle(typed, session_id=session_id, model=summary.model, include_failed=include_failed)
        return {
            "session_id": session_id,
            "run_id": live.run_id,
            "status": live.status,
            "cells": bundle["cells"],
            "errors": summary.error_dicts(),
        }

    def _completion(
        self, events: list[dict[str, Any]], live: LiveRun, session_id: str, model: str, created: int
    ) -> dict[str, Any]:
        summary = RunSummary.of_dicts(events)
        if summary.answer is None and live.status == "error":
            errors = "; ".join(e.message for e in summary.errors) or "the run failed"
            fail(502, f"The agent could not answer: {errors}")
        return {
            "id": f"chatcmpl-{live.run_id}",
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": summary.answer or ""}, "finish_reason": "stop"}],
            "usage": summary.usage(),
            "session_id": session_id,
            "llm_agent": self._extra(events, live, session_id),
        }

    async def _stream(self, live: LiveRun, session_id: str, model: str, created: int) -> None:
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")  # finish() keeps it (see below)
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        base = {
            "id": f"chatcmpl-{live.run_id}",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "session_id": session_id,
        }
        events: list[dict[str, Any]] = []
        streamed = False
        try:
            await self._send(
                {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
            )
            async for event in live.follow(0):
                events.append(event)
                text = ""
                if event["type"] == Token.type:
                    text, streamed = event["text"], True
                elif event["type"] == Answer.type and not streamed:
                    text = event["markdown"]
                elif event["type"] == Error.type and not event.get("recoverable"):
                    text = f"\n\n[error] {event['message']}"
                if text:
                    await self._send({**base, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})
            await self._send(
                {
                    **base,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                    "usage": RunSummary.of_dicts(events).usage(),
                    "llm_agent": self._extra(events, live, session_id),
                }
            )
            self.write("data: [DONE]\n\n")
            await self.flush()
        except StreamClosedError:
            return  # the client went away; the run goes on and is stored
        self.finish(set_content_type="text/event-stream; charset=utf-8")

    async def _send(self, chunk: dict[str, Any]) -> None:
        self.write(f"data: {json.dumps(chunk, default=str)}\n\n")
        await self.flush()
