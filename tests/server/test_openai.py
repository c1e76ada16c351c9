"""The OpenAI-compatible endpoint, through the official ``openai`` client and as raw server-sent events."""

from __future__ import annotations

import json

import openai
import pytest
from conftest import CSV, body, scenario, sid

pytestmark = pytest.mark.slow  # real sandbox kernels
SESSION = "/home/me/work/openai.ipynb"
QUESTION = [{"role": "user", "content": "What is the mean price in sales.csv?"}]


@pytest.fixture
def client(server_url, token):
    return openai.AsyncOpenAI(base_url=f"{server_url}/llm-agent/v1", api_key=token, max_retries=0)


async def test_the_openai_client_gets_a_plain_and_a_streamed_answer_to_a_csv_question(api, client, ollama):
    ollama.load(scenario("react_csv"))
    assert (await api(f"/llm-agent/api/sessions/{sid(SESSION)}/files?name=sales.csv", method="POST", body=CSV)).code == 201
    extra = {"agent_type": "react", "session_id": SESSION, "files": ["sales.csv"]}

    plain = await client.chat.completions.create(model="llm-agent", messages=QUESTION, extra_body=extra)
    assert "**20.0**" in plain.choices[0].message.content and plain.choices[0].finish_reason == "stop"
    agent = plain.model_extra["llm_agent"]
    assert agent["session_id"] == SESSION and agent["status"] == "ok"
    assert "pd.read_csv('sales.csv')" in agent["cells"][0]["source"]
    assert "mean price: 20.0" in json.dumps(agent["cells"][0]["outputs"])
    assert plain.usage.prompt_tokens > 0 and plain.usage.completion_tokens > 0
    assert plain.usage.total_tokens == plain.usage.prompt_tokens + plain.usage.completion_tokens
    assert not ollama.requests_for("classify")  # agent_type chose the mode

    stream = await client.chat.completions.create(model="llm-agent", messages=QUESTION, extra_body=extra, stream=True)
    chunks = [chunk async for chunk in stream]
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "**20.0**" in text
    last = chunks[-1].model_extra
    assert last["llm_agent"]["session_id"] == SESSION and last["llm_agent"]["cells"]
    assert chunks[-1].usage.total_tokens == chunks[-1].usage.prompt_tokens + chunks[-1].usage.completion_tokens > 0
    history = body(await api(f"/llm-agent/api/sessions/{sid(SESSION)}/messages"))["messages"]
    assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]  # one session, continued


async def test_without_a_session_id_a_new_session_is_made_with_the_earlier_turns(api, client, ollama):
    ollama.load(scenario("route_chat"))
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": [{"type": "text", "text": "What is a p-value?"}]},
    ]
    reply = await client.chat.completions.create(model="qwen3:8b", messages=messages)
    session_id = reply.model_extra["session_id"]
    assert session_id.startswith("openai-") and reply.model_extra["llm_agent"]["session_id"] == session_id
    assert "p-value" in reply.choices[0].message.content
    assert ollama.requests_for("answer")[-1].body["model"] == "qwen3:8b"
    history = body(await api(f"/llm-agent/api/sessions/{sid(session_id)}/messages"))["messages"]
    assert [m["content"] for m in history][:3] == ["Hi", "Hello!", "What is a p-value?"]


async def test_errors_come_in_openai_shape(api, client, server_url):
    with pytest.raises(openai.BadRequestError) as bad:
        await client.chat.completions.create(model="llm-agent", messages=QUESTION, extra_body={"agent_type": "fast"})
    assert "agent_type" in bad.value.body["message"] and bad.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as missing:
        await client.chat.completions.create(model="llm-agent", messages=QUESTION, extra_body={"files": ["x.csv"]})
    assert "upload it first" in missing.value.body["message"]
    stranger = openai.AsyncOpenAI(base_url=f"{server_url}/llm-agent/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        await stranger.chat.completions.create(model="llm-agent", messages=QUESTION)
    no_user = await api("/llm-agent/v1/chat/completions", method="POST", body={"messages": [{"role": "system", "content": "x"}]})
    assert no_user.code == 400 and "no user message" in body(no_user)["error"]["message"]


async def test_the_stream_is_server_sent_events_ending_in_done(api, ollama):
    ollama.load(scenario("route_chat"))
    response = await api(
        "/llm-agent/v1/chat/completions",
        method="POST",
        body={
            "model": "llm-agent",
            "stream": True,
            "agent_type": "chat",
            "messages": [{"role": "user", "content": "What is a p-value?"}],
        },
    )
    assert response.code == 200 and response.headers["Content-Type"].startswith("text/event-stream")
    frames = response.body.decode().split("\n\n")
    assert frames[-2:] == ["data: [DONE]", ""] and all(f.startswith("data: ") for f in frames[:-1])
    chunks = [json.loads(f[len("data: ") :]) for f in frames[:-2]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert "p-value" in "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
