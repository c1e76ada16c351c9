"""What every handler of the extension shares: authorization resource, JSON errors, the manager and its services."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from ..agents.history import Conversations, in_thread
from ..agents.manager import SessionManager
from ..agents.runs import RunRegistry
from ..config import LLMConfig, PathsConfig, SandboxConfig
from ..exceptions import BadRequest, LLMError
from ..llm import LLMClient
from .parsing import MAX_WHOLE, TooLarge, parse_json_object, whole_number

AUTH_RESOURCE = "llm-agent"
T = TypeVar("T")


def fail(status: int, message: str) -> NoReturn:
    """Raise ``HTTPError(status)`` whose reason is ``message`` (one line: it is also the HTTP status line)."""
    line = " ".join(message.split()).encode("ascii", "backslashreplace").decode("ascii")
    raise web.HTTPError(status, reason=line)


def json_body(handler: web.RequestHandler) -> dict[str, Any]:
    """The request's JSON object (bounded in size and depth), or a 400 (413) saying what is wrong with it."""
    try:
        return parse_json_object(handler.request.body or b"{}")
    except TooLarge as exc:
        fail(413, str(exc))
    except BadRequest as exc:
        fail(400, str(exc))


def query_number(handler: web.RequestHandler, name: str, default: int, *, high: int = MAX_WHOLE, meaning: str = "") -> int:
    """The query argument ``name`` as a whole number in ``0..high`` (``default`` when absent), else a 400."""
    try:
        return whole_number(handler.get_argument(name, ""), name, default=default, high=high, meaning=meaning)
    except BadRequest as exc:
        fail(400, str(exc))


class AgentHandlerMixin(ExtensionHandlerMixin):
    """Gives handlers the extension's ``SessionManager``, its runs and the sessions' records read off the loop."""

    auth_resource = AUTH_RESOURCE

    @property
    def manager(self) -> SessionManager:
        manager: SessionManager = self.settings["llm_agent_manager"]
        return manager

    @property
    def runs(self) -> RunRegistry:
        """The runs of the manager's sessions: start, follow, stop, approve (``agents/runs.py``)."""
        return self.manager.runs

    @property
    def app(self) -> Any:
        return self.settings["llm_agent_app"]

    async def ollama_models(self) -> list[str]:
        """The models of every configured provider (Ollama's pulled ones, an OpenAI-compatible server's served
        ones); 502 saying which server failed and why when one cannot be asked."""
        llm_config, _, paths = self.configs()
        client = LLMClient(llm_config, paths=paths)
        try:
            return await client.list_models()
        except LLMError as exc:
            fail(502, str(exc))
        finally:
            await client.aclose()

    @property
    def root_dir(self) -> Path:
        """The server's root folder (as its file browser shows it), links resolved."""
        server = getattr(self.app, "serverapp", None)
        root = getattr(server, "root_dir", "") or os.path.expanduser(self.settings.get("server_root_dir") or "")
        return Path(os.path.realpath(root or os.getcwd()))

    def configs(self) -> tuple[LLMConfig, SandboxConfig, PathsConfig]:
        llm, sandbox, _, paths = self.manager.effective()
        return llm, sandbox, paths

    async def in_store(self, action: Callable[[Conversations], T]) -> T:
        """Run ``action(conversations)`` (the service's records of sessions) in a worker thread: SQLite never
        blocks the server's loop."""
        conversations = self.manager.conversations
        return await in_thread(lambda: action(conversations))


class AgentAPIHandler(AgentHandlerMixin, APIHandler):
    """A REST handler: errors are JSON ``{"message": ...}`` with the reason a person can act on."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "reason", None) or getattr(exc, "log_message", None) or self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message, "status": status_code}))

    def send_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data, default=str))
