"""``/llm-agent/api/settings``: the user's choices from JupyterLab's Settings editor, applied to the server's sessions.

JupyterLab stores them (the user's settings of the ``llm-agent-magic:plugin`` plugin); the panel sends them here
when it loads and whenever they change. The server keeps them in memory, over its own configuration (a Jupyter
server serves one user: these are that user's), so that the next run of every session uses them, without a
traitlets file to edit. Empty values leave the server's configuration in force.
"""

from __future__ import annotations

from typing import Any

import tornado.web
from jupyter_server.auth.decorator import authorized
from traitlets import TraitError
from traitlets.config import Config

from ..config import AgentConfig, LLMConfig
from .base import AgentAPIHandler, fail, json_body

#: What the Settings editor may set: its key, the trait it sets, and the type the value has.
USER_SETTINGS: dict[str, tuple[str, str, type]] = {
    "model": ("LLMConfig", "model", str),
    "host": ("LLMConfig", "host", str),
    "num_ctx": ("LLMConfig", "num_ctx", int),
    "history_messages": ("AgentConfig", "history_messages", int),
}


def user_config(body: dict[str, Any]) -> Config:
    """The traitlets settings these choices make; a 400 saying which value is wrong."""
    unknown = sorted(set(body) - set(USER_SETTINGS))
    if unknown:
        fail(400, f"Unknown settings {', '.join(unknown)}; the settings are {', '.join(USER_SETTINGS)}.")
    config = Config()
    for key, value in body.items():
        section, trait, kind = USER_SETTINGS[key]
        if value in ("", 0, None):
            continue  # the server's own setting
        if not isinstance(value, kind) or isinstance(value, bool) or (isinstance(value, int) and value < 0):
            fail(
                400,
                f"{key} is {'a positive whole number' if kind is int else 'a string'}, or empty for the server's own setting.",
            )
        config[section][trait] = value.strip() if isinstance(value, str) else value
    try:  # the traits' own checks (a host that is not a URL, a context too small)
        LLMConfig(config=config)
        AgentConfig(config=config)
    except TraitError as exc:
        fail(400, str(exc))
    return config


class SettingsHandler(AgentAPIHandler):
    def effective(self) -> dict[str, Any]:
        llm, _, agent, _ = self.manager.effective()
        return {"model": llm.model, "host": llm.host, "num_ctx": llm.num_ctx, "history_messages": agent.history_messages}

    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        """The settings in force, and the ones the user chose (``user``)."""
        chosen = self.app.user_settings
        user = {
            key: chosen[section][trait]
            for key, (section, trait, _) in USER_SETTINGS.items()
            if section in chosen and trait in chosen[section]
        }
        self.send_json({**self.effective(), "user": user})

    @tornado.web.authenticated
    @authorized
    async def put(self) -> None:
        """``{"model"?, "host"?, "num_ctx"?, "history_messages"?}``: all the user's choices (what is left out or
        empty goes back to the server's setting); open sessions use them from their next run."""
        self.app.user_settings = user_config(json_body(self))
        self.send_json(self.effective())
