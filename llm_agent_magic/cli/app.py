"""The base of every ``llm-agent`` subcommand: config files, then command-line flags on top.

Each subcommand is a small traitlets ``Application`` so ``--LLMConfig.model=...``,
``--help-all`` and Jupyter config files work the same everywhere.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from traitlets.config import Application, Config, Configurable

from .. import __version__
from ..agents.manager import resolve_config
from ..config import CONFIG_CLASSES, AgentConfig, LLMConfig, PathsConfig, SandboxConfig, ToolsConfig, load_config_files

COMMON_ALIASES: dict[Any, Any] = {
    "host": "LLMConfig.host",
    "model": "LLMConfig.model",
    "num-ctx": "LLMConfig.num_ctx",
    "log-format": "LLMConfig.log_format",
    "data-root": "PathsConfig.data_root",
    "isolation": "SandboxConfig.isolation",
}


class LLMAgentApp(Application):
    """Shared start-up: read config files, apply command-line flags, make the configurables."""

    version = __version__
    classes = list(CONFIG_CLASSES)
    aliases = dict(COMMON_ALIASES)

    def initialize(self, argv: list[str] | None = None) -> None:
        self.parse_command_line(argv)
        self.cli_config: Config = copy.deepcopy(self.config)
        file_config, self.config_origin = load_config_files()
        # One order everywhere (agents/manager.py): files < environment < the command line.
        self.update_config(resolve_config(self.cli_config, files=file_config))
        self.llm_config = LLMConfig(parent=self)
        self.sandbox_config = SandboxConfig(parent=self)
        self.agent_config = AgentConfig(parent=self)
        self.paths_config = PathsConfig(parent=self)
        self.tools_config = ToolsConfig(parent=self)

    @property
    def configurables(self) -> list[Configurable]:
        return [self.llm_config, self.sandbox_config, self.agent_config, self.paths_config, self.tools_config]

    def source_of(self, cls_name: str, trait_name: str, env: str) -> str:
        """Where a setting's current value came from."""
        if trait_name in self.cli_config.get(cls_name, {}):
            return "command line"
        if env and os.environ.get(env, "").strip():
            return f"environment ${env}"
        if (cls_name, trait_name) in self.config_origin:
            return self.config_origin[(cls_name, trait_name)]
        return "default"
