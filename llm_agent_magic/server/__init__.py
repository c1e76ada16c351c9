"""The Jupyter Server extension: REST, a WebSocket per session and an OpenAI-compatible endpoint.

Enabled on ``pip install`` by ``jupyter-config/jupyter_server_config.d/llm_agent_magic.json``.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import LLMAgentExtension

    return [{"module": "llm_agent_magic.server", "app": LLMAgentExtension}]
