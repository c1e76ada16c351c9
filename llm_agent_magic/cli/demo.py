"""``llm-agent demo``: the main job end to end. ``examples/quickstart.ipynb`` through ``llm-agent run``.

A live Ollama is used when one answers at the configured host and has the model; otherwise the
notebook replays its recorded cassette. The demo says which, and where the executed notebook is.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ..config import LLMConfig, PathsConfig
from ..exceptions import LLMError
from ..llm import LLMClient
from ..text import full_model_name


async def live_model_available(config: LLMConfig, paths: PathsConfig) -> str | None:
    """Why a live Ollama cannot serve the demo, or None when it can."""
    async with LLMClient(config.probe(5.0), paths=paths) as client:
        try:
            models = await client.list_models()
        except LLMError as exc:
            return str(exc).split(". ")[0]
    return None if full_model_name(config.model) in models else f"model {config.model} is not pulled there"


def run_demo(notebook: Path, output: Path, why_not_live: str | None, host: str) -> int:
    if not notebook.is_file():
        print(f"llm-agent demo: {notebook} not found; run it from the project's folder (where examples/ is).", file=sys.stderr)
        return 2
    command = [sys.executable, "-m", "llm_agent_magic.cli", "run", str(notebook), "-o", str(output), f"--host={host}"]
    if why_not_live is None:
        print(f"Running {notebook} against the live Ollama at {host}.", flush=True)
        command.append("--live")
    else:
        print(
            f"No live model ({why_not_live}); running {notebook} by replaying its recorded cassette "
            f"(set OLLAMA_HOST to a running Ollama to use a real model).",
            flush=True,
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    status = subprocess.run(command).returncode
    if status == 0:
        print(f"\nThe executed notebook, with the agent's cells, is {output.resolve()}")
        print(
            f"Open it in JupyterLab with the agent's panel: `make lab` in the project's folder "
            f"(or `.venv/bin/jupyter lab {output}`)"
        )
    return status
