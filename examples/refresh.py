"""Re-record the example notebooks' cassettes and outputs from their hand-written scripts.

Each example's model answers are scripted by hand in ``scripts/<name>.json`` (there is no
live model in CI). This serves the script with the scripted Ollama server, executes the
notebook in record mode (the cassette is written to ``cassettes/<name>.jsonl``), stores
the outputs in the notebook for nbval, and marks the cassette as scripted.

    python examples/refresh.py [NAME ...]          (make examples-cassettes)

The cassettes are protocol-neutral: recorded through Ollama's API, they replay through the openai
provider too (``LLM_AGENT_PROVIDER=openai``; docs/model-servers.md).

To record from a live model instead: ``llm-agent run examples/NAME.ipynb --record
examples/cassettes/NAME.jsonl`` with OLLAMA_HOST pointing at it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from llm_agent_magic.testing.fake_ollama import FakeOllama
from llm_agent_magic.testing.fake_tavily import FakeTavily

HERE = Path(__file__).resolve().parent
RECORDED_AT = "2026-11-21T08:57:00+00:00"


def refresh(name: str) -> None:
    notebook = HERE / f"{name}.ipynb"
    cassette = HERE / "cassettes" / f"{name}.jsonl"
    cassette.unlink(missing_ok=True)
    nb = nbformat.read(notebook, as_version=4)
    web_script = HERE / "scripts" / f"{name}.tavily.json"
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(FakeOllama(HERE / "scripts" / f"{name}.json"))
        data_root = stack.enter_context(tempfile.TemporaryDirectory())
        env = {
            **os.environ,
            "OLLAMA_HOST": server.url,
            "LLM_AGENT_CASSETTE_MODE": "record",
            "LLM_AGENT_CASSETTE_PATH": str(cassette),
            "LLM_AGENT_DATA_ROOT": data_root,
            # A fixed clock (a Saturday, in UTC): replays must not depend on when they were recorded.
            "LLM_AGENT_NOW": RECORDED_AT,
            "TZ": "UTC",
        }
        env.pop("TAVILY_API_KEY", None)
        if web_script.exists():
            tavily = stack.enter_context(FakeTavily(web_script))
            env.update(TAVILY_BASE_URL=tavily.url, TAVILY_API_KEY="tvly-scripted-stand-in")
        client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(HERE)}})
        client.execute(env=env)
        unused = server.unused_rules()
    if unused:
        raise SystemExit(f"{name}: script rules {unused} never fired; the notebook no longer asks what the script expects")
    lines = cassette.read_text().splitlines()
    header = json.loads(lines[0])
    header["source"] = (
        f"scripted by hand: examples/scripts/{name}.json, served by llm_agent_magic.testing.fake_ollama "
        f"and recorded by examples/refresh.py"
    )
    cassette.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    nbformat.write(nb, notebook)
    print(f"{name}: {len(lines) - 1} answers recorded in {cassette.relative_to(HERE.parent)}")


def main(names: list[str]) -> None:
    for name in names or sorted(p.stem for p in (HERE / "scripts").glob("*.json") if "." not in p.stem):
        refresh(name)


if __name__ == "__main__":
    main(sys.argv[1:])
