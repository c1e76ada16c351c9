"""``%%agent`` on an OpenAI-compatible server: a CSV question end to end in a real kernel, against the scripted
server's ``/v1`` API, recorded to a cassette and replayed from it with the server answering nothing."""

from __future__ import annotations

import pytest
from magic_helpers import texts

from llm_agent_magic.cells import CELLS_MIME

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("own_session")]

KEY = "sk-team-4b8e2f6a1c9d3e7b5a0f2c4e6a8b1d3f"
CODE = "import pandas as pd\nsales = pd.read_csv('sales.csv')\nprint('mean price:', sales['price'].mean())"
SCRIPT = {
    "api_key": KEY,
    "rules": [
        {"purpose": "classify", "reply": {"mode": "react", "reason": "needs code"}},
        {
            "purpose": "react",
            "match_last": "Observation from python_coder",
            "reply": {"thought": "Done.", "action": "finish", "action_input": "see the output"},
        },
        {
            "purpose": "react",
            "reply": {"thought": "Run code.", "action": "python_coder", "action_input": "mean price of sales.csv"},
        },
        {"purpose": "code", "reply": f"```python\n{CODE}\n```", "thinking": "pandas will do"},
        {"purpose": "verify", "reply": {"answers_question": True, "issues": ""}},
        {"purpose": "answer", "reply": "<think>20, surely</think>The mean price is **20.0**."},
    ],
}
QUESTION = "%%agent --files sales.csv --session {}\nWhat is the mean price in sales.csv?"


def _check_answer(cell) -> None:
    answer, cells = cell.outputs
    assert answer.data["text/html"] == "<p>The mean price is <strong>20.0</strong>.</p>\n"
    generated = cells.data[CELLS_MIME]
    assert generated["status"] == "ok"
    assert generated["cells"][0]["outputs"][0]["text"] == "mean price: 20.0\n"


def test_a_csv_question_on_the_openai_provider_records_and_replays(kernel):
    kernel.script(SCRIPT)
    kernel.server.clear_requests()
    kernel.run(
        "import os\nos.environ['TEAM_LLM_KEY'] = " + repr(KEY) + "\n"
        "get_ipython().run_line_magic('config', 'LLMConfig.provider = \"openai\"')\n"
        f"get_ipython().run_line_magic('config', 'LLMConfig.base_url = \"{kernel.server.url}/v1\"')\n"
        "get_ipython().run_line_magic('config', 'LLMConfig.api_key_env = \"TEAM_LLM_KEY\"')"
    )
    try:
        assert kernel.run("%agent record openai.cassette.jsonl").outputs == []
        _check_answer(kernel.run(QUESTION.format("openai-live")))
        asked = kernel.server.requests
        assert {r.path for r in asked} == {"/v1/chat/completions"}
        assert {r.purpose for r in asked} == {"react", "code", "answer"}  # a table and a question: no classifier
        assert {r.headers["authorization"] for r in asked} == {f"Bearer {KEY}"}
        assert [r.body.get("stream_options") for r in asked if r.purpose == "answer"] == [{"include_usage": True}]

        # Replay: the same question in a new session is answered from the cassette; the server sees nothing.
        kernel.script({"rules": [{"fault": "http_500"}]})
        kernel.server.clear_requests()
        kernel.run("%agent replay openai.cassette.jsonl")
        _check_answer(kernel.run(QUESTION.format("openai-replay")))
        assert kernel.server.requests == []
        assert "cassette   replay " in texts(kernel.run("%agent status"))[0]
    finally:
        kernel.run(
            "%agent live\n"
            "get_ipython().run_line_magic('config', 'LLMConfig.provider = \"ollama\"')\n"
            "get_ipython().run_line_magic('config', 'LLMConfig.api_key_env = \"OPENAI_API_KEY\"')"
        )

    cassette = (kernel.folder / "openai.cassette.jsonl").read_text()
    logs = "".join(p.read_text() for p in kernel.folder.rglob("llm_calls*"))
    assert "/v1/chat/completions" in cassette and "surely" in cassette  # the answers are in it...
    assert "mean price" in logs and "pandas will do" in logs
    assert KEY not in cassette and KEY not in logs  # ...and the key is not
    assert "The mean price is **20.0**." in logs and "<think>20, surely</think>The mean" not in logs
