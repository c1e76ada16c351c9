"""What front ends ask of a session whose sandbox is a gateway's kernel: its variables, a pulled snapshot,
the server's preview of it, and the state ``%agent status`` shows."""

from __future__ import annotations

from pathlib import Path

import pytest
from gateway_helpers import Gateway
from traitlets.config import Config

from llm_agent_magic.agents.diagnostics import describe_sandbox
from llm_agent_magic.agents.manager import SessionManager
from llm_agent_magic.run_requests import RunRequest
from llm_agent_magic.server.preview import preview
from llm_agent_magic.testing.fake_ollama import FakeOllama


@pytest.mark.slow
async def test_variables_pull_and_preview_come_over_the_kernel_protocol(tmp_path: Path, gateway_env: Gateway) -> None:
    (tmp_path / "sales.csv").write_text("region,price\nnorth,10\nsouth,30\n")
    script = {
        "rules": [
            {
                "purpose": "react",
                "match_last": "Observation from python_coder",
                "reply": {"thought": "done", "action": "finish", "action_input": "20"},
            },
            {"purpose": "react", "reply": {"thought": "load", "action": "python_coder", "action_input": "load sales"}},
            {
                "purpose": "code",
                "reply": "```python\nimport pandas as pd\nsales = pd.read_csv('sales.csv')\n"
                "sales['double'] = sales['price'] * 2\nprint(len(sales))\n```",
            },
            {"purpose": "verify", "reply": {"answers_question": True, "issues": ""}},
            {"purpose": "answer", "reply": "Two rows."},
        ]
    }
    with FakeOllama(script) as server:
        explicit = Config(
            {
                "LLMConfig": {"host": server.url},
                "PathsConfig": {"data_root": str(tmp_path / "data")},
                "SandboxConfig": {"gateway_url": gateway_env.url},
            }
        )
        manager = SessionManager(explicit=lambda: explicit)
        try:
            session = await manager.open("nb.ipynb")
            run = RunRequest("How many rows?", mode="react", files=[str(tmp_path / "sales.csv")])
            events = [e async for e in session.run(run)]
            assert events[-1].status == "ok", [e.to_dict() for e in events if e.type == "error"]
            rows = {r.name: r for r in await manager.variables("nb.ipynb")}
            assert rows["sales"].size == "2x3" and rows["sales"].snapshot.startswith("dataframe")
            pulled = await manager.pull("nb.ipynb", "sales")
            assert list(pulled["double"]) == [20, 60]
            shown = preview("sales", pulled, 1)
            assert shown["rows"] == [{"region": "north", "price": 10, "double": 20}] and shown["truncated"] is True
            assert session.sandbox is not None
            state = await describe_sandbox(session.sandbox, session.sandbox.config)
            assert state.state.startswith("running on the gateway") and state.isolation.startswith("gateway:")
        finally:
            await manager.close_all()
