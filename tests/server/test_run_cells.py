"""``GET /llm-agent/api/runs/{id}/cells``: a run's generated cells, ready to insert, built as the magic's are;
``AgentConfig.include_failed_cells`` applies to them and to the OpenAI endpoint alike."""

from __future__ import annotations

import openai
import pytest
from conftest import body, scenario

pytestmark = pytest.mark.slow  # real sandbox kernels
QUESTION = [{"role": "user", "content": "Print the first score."}]


async def test_the_panel_gets_ready_cells_without_the_failed_attempts(api, ollama, server_url, token):
    ollama.load(scenario("retry_rethink"))
    client = openai.AsyncOpenAI(base_url=f"{server_url}/llm-agent/v1", api_key=token, max_retries=0)
    reply = await client.chat.completions.create(model="llm-agent", messages=QUESTION, extra_body={"agent_type": "react"})
    agent = reply.model_extra["llm_agent"]
    assert agent["status"] == "ok"
    (cell,) = agent["cells"]  # two failed attempts ran before it: not cells by default
    assert cell["source"] == "%%sandbox\nscores = [1, 2, 3]\nprint(scores[0])"
    ready = body(await api(f"/llm-agent/api/runs/{agent['run_id']}/cells"))
    assert ready["run_id"] == agent["run_id"] and ready["session_id"] == agent["session_id"]
    assert ready["cells"] == agent["cells"] and ready["status"] == "ok"
    assert ready["cells"][0]["metadata"]["llm_agent"]["status"] == "final"
    missing = await api("/llm-agent/api/runs/nope/cells")
    assert missing.code == 404 and "no run 'nope'" in body(missing)["message"]


@pytest.fixture
def jp_server_config(jp_server_config, request):
    """The server's settings, with AgentConfig.include_failed_cells on for the test that says so by its name."""
    if "failed_attempts_kept" in request.node.name:
        return {**jp_server_config, "AgentConfig": {"include_failed_cells": True}}
    return jp_server_config


async def test_with_the_setting_on_failed_attempts_kept_as_cells_that_never_run(api, ollama, server_url, token):
    ollama.load(scenario("retry_rethink"))
    client = openai.AsyncOpenAI(base_url=f"{server_url}/llm-agent/v1", api_key=token, max_retries=0)
    reply = await client.chat.completions.create(model="llm-agent", messages=QUESTION, extra_body={"agent_type": "react"})
    agent = reply.model_extra["llm_agent"]
    firsts = [c["source"].split("\n")[0] for c in agent["cells"]]
    assert firsts == ["%%sandbox --skip", "%%sandbox --skip", "%%sandbox"]
    assert [c["metadata"]["llm_agent"]["status"] for c in agent["cells"]] == ["failed", "failed", "final"]
    ready = body(await api(f"/llm-agent/api/runs/{agent['run_id']}/cells"))
    assert ready["cells"] == agent["cells"]
