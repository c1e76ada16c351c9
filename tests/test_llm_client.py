"""The LLM client driven through the real ``ollama`` client against the scripted server over HTTP."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from llm_helpers import closed_port, log_records

from llm_agent_magic.config import LLMConfig, PathsConfig
from llm_agent_magic.exceptions import (
    ContextOverflow,
    LLMProtocolError,
    LLMServerError,
    ModelNotFound,
    OllamaUnavailable,
)
from llm_agent_magic.llm import PURPOSES, LLMClient

CLASSIFY = {
    "type": "object",
    "properties": {"mode": {"enum": ["chat", "react", "plan_execute"]}, "reason": {"type": "string"}},
    "required": ["mode", "reason"],
}
ASK = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 6 x 7?"}]


@pytest.fixture
def paths(tmp_path):
    return PathsConfig(data_root=str(tmp_path / "data"))


@pytest.fixture
async def make_client(fake_ollama, paths):
    clients = []

    def make(**settings):
        settings = {"host": fake_ollama.url, "retry_backoff": 0.01, **settings}
        client = LLMClient(LLMConfig(**settings), paths=paths)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def test_chat_sends_num_ctx_purpose_and_keep_alive(fake_ollama, make_client):
    fake_ollama.add_rule(purpose="answer", match="6 x 7", reply="42")
    client = make_client(num_ctx=8192, keep_alive="5m")
    result = await client.chat(ASK, purpose="answer")
    assert result.content == "42" and result.purpose == "answer"
    (req,) = fake_ollama.requests
    assert req.purpose == "answer" and req.headers["x-llm-agent-purpose"] == "answer"
    assert req.body["options"]["num_ctx"] == 8192
    assert req.body["keep_alive"] == "5m" and req.body["stream"] is False


async def test_a_seed_goes_with_every_chat_call_when_set(fake_ollama, make_client):
    await make_client().chat(ASK, purpose="answer")
    await make_client(seed=7).chat(ASK, purpose="code")
    await make_client(seed=7).stream_chat(ASK, purpose="answer").text()
    unseeded, *seeded = fake_ollama.requests
    assert "seed" not in unseeded.body["options"]
    assert [r.body["options"]["seed"] for r in seeded] == [7, 7]


async def test_every_purpose_sends_its_header_and_num_ctx(fake_ollama, make_client):
    client = make_client()
    for purpose in PURPOSES:
        if purpose == "embed":
            await client.embed(["a text"])
        else:
            await client.chat(ASK, purpose=purpose)
        await client.stream_chat(ASK, purpose="answer").text()
    posted = [r for r in fake_ollama.requests if r.method == "POST"]
    assert {r.purpose for r in posted} == set(PURPOSES)
    assert all(r.body["options"]["num_ctx"] == 16384 for r in posted)


async def test_stream_arrives_token_by_token(fake_ollama, make_client):
    reply = "The answer is forty-two, as computed below."
    fake_ollama.add_rule(purpose="answer", reply=reply)
    stream = make_client().stream_chat(ASK, purpose="answer")
    pieces = [piece async for piece in stream]
    assert len(pieces) > 3 and "".join(pieces) == reply
    assert stream.result.content == reply and stream.result.completion_tokens
    assert fake_ollama.requests[0].body["stream"] is True


@pytest.mark.parametrize(
    "reply",
    [
        '```json\n{"mode": "react", "reason": "needs code"}\n```',
        'My decision: {"mode": "react", "reason": "needs code"} (confident)',
        '{"mode": "react", "reason": "needs code",}',
        "{'mode': 'react', 'reason': 'needs code'}",
    ],
    ids=["fence", "narration", "trailing-comma", "single-quotes"],
)
async def test_structured_survives_malformed_json_without_a_repair_call(fake_ollama, make_client, reply):
    fake_ollama.add_rule(purpose="classify", reply=reply)
    result = await make_client().structured(ASK, purpose="classify", schema=CLASSIFY)
    assert result.value == {"mode": "react", "reason": "needs code"} and not result.repaired
    (req,) = fake_ollama.requests
    assert req.body["format"] == CLASSIFY


async def test_structured_repairs_once_with_the_model(fake_ollama, make_client):
    fake_ollama.add_rule(purpose="classify", reply="I think you want code.", times=1)
    fake_ollama.add_rule(purpose="classify", match="not valid JSON", reply={"mode": "chat", "reason": "fixed"})
    result = await make_client().structured(ASK, purpose="classify", schema=CLASSIFY)
    assert result.value["reason"] == "fixed" and result.repaired
    repair = fake_ollama.requests[1]
    assert repair.body["messages"][-2] == {"role": "assistant", "content": "I think you want code."}


async def test_http_500_is_retried_then_succeeds(fake_ollama, make_client, paths):
    fake_ollama.add_rule(fault="http_500", times=2)
    fake_ollama.add_rule(reply="recovered")
    client = make_client()
    result = await client.chat(ASK, purpose="answer")
    assert result.content == "recovered" and len(fake_ollama.requests) == 3
    assert log_records(paths, client)[0]["attempts"] == 3


async def test_http_500_retries_are_bounded(fake_ollama, make_client):
    fake_ollama.add_rule(fault="http_500")
    with pytest.raises(LLMServerError, match="HTTP 500.*3 attempt"):
        await make_client(max_retries=2).chat(ASK, purpose="answer")
    assert len(fake_ollama.requests) == 3


async def test_a_stream_that_showed_nothing_is_retried_and_counted(fake_ollama, make_client, paths):
    fake_ollama.add_rule(fault="http_500", times=2)
    fake_ollama.add_rule(reply="recovered in the end")
    client = make_client(max_retries=2)
    stream = client.stream_chat(ASK, purpose="answer")
    assert await stream.text() == "recovered in the end" and len(fake_ollama.requests) == 3
    assert stream.result is not None and stream.result.content == "recovered in the end"
    assert log_records(paths, client)[0]["attempts"] == 3
    fake_ollama.load({"rules": [{"fault": "http_500"}]})
    with pytest.raises(LLMServerError, match="HTTP 500.*2 attempt"):
        await make_client(max_retries=1).stream_chat(ASK, purpose="answer").text()
    assert len(fake_ollama.requests) == 5


@pytest.mark.parametrize("stream", [False, True])
async def test_malformed_json_is_retried_then_reported(fake_ollama, make_client, stream):
    fake_ollama.add_rule(fault="malformed_json")
    client = make_client(max_retries=1)
    with pytest.raises(LLMProtocolError, match="not valid JSON"):
        if stream:
            await client.stream_chat(ASK, purpose="answer").text()
        else:
            await client.chat(ASK, purpose="answer")
    # In a stream the garbled line comes after text was shown, and shown text is never retried.
    assert len(fake_ollama.requests) == (1 if stream else 2)
    fake_ollama.load({"rules": [{"fault": "malformed_json", "times": 1}], "default": "fine"})
    assert (await client.chat(ASK, purpose="answer")).content == "fine"


@pytest.mark.parametrize("stream", [False, True])
async def test_ollama_down_says_where_and_how(paths, stream):
    host = f"http://127.0.0.1:{closed_port()}"
    async with LLMClient(LLMConfig(host=host), paths=paths) as client:
        with pytest.raises(OllamaUnavailable, match=f"{host}.*ollama serve"):
            if stream:
                await client.stream_chat(ASK, purpose="answer").text()
            else:
                await client.chat(ASK, purpose="answer")
        with pytest.raises(OllamaUnavailable):
            await client.list_models()


async def test_model_not_pulled(fake_ollama, make_client):
    fake_ollama.load({"models": ["qwen3:8b"]})
    with pytest.raises(ModelNotFound, match="ollama pull llama9:70b"):
        await make_client(model="llama9:70b").chat(ASK, purpose="answer")
    assert await make_client().list_models() == ["qwen3:8b"]


async def test_context_overflow_is_refused_before_sending(fake_ollama, make_client, paths):
    huge = [{"role": "user", "content": "word " * 4000}]
    client = make_client(num_ctx=1024)
    with pytest.raises(ContextOverflow, match="num_ctx"):
        await client.chat(huge, purpose="code")
    assert fake_ollama.requests == []
    assert "tokens" in log_records(paths, client)[0]["error"]


async def test_closing_a_stream_early_closes_its_request(fake_ollama, make_client):
    fake_ollama.add_rule(reply="word " * 200, token_delay_ms=20)
    client = make_client()
    async with client.stream_chat(ASK, purpose="answer") as stream:
        async for _ in stream:
            break
    assert client._transport._pool.connections == []


async def test_think_field_dropped_for_models_that_do_not_think(paths):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append("think" in body)
        if "think" in body:
            return httpx.Response(400, json={"error": '"gemma3:1b" does not support thinking'})
        return httpx.Response(
            200,
            json={
                "model": "gemma3:1b",
                "created_at": "2026-01-01T00:00:00Z",
                "done": True,
                "message": {"role": "assistant", "content": "hi"},
            },
        )

    cfg = LLMConfig(host="http://ollama.test", model="gemma3:1b")
    async with LLMClient(cfg, paths=paths, transport=httpx.MockTransport(handler)) as client:
        assert (await client.chat(ASK, purpose="answer")).content == "hi"
        assert (await client.chat(ASK, purpose="answer")).content == "hi"
    assert seen == [True, False, False]

    # A stream is sent again the same way, and the resend is not counted as a retry.
    seen.clear()
    cfg = LLMConfig(host="http://ollama.test", model="gemma3:1b", max_retries=0)
    async with LLMClient(cfg, paths=paths, transport=httpx.MockTransport(handler)) as client:
        assert await client.stream_chat(ASK, purpose="answer").text() == "hi"
        client.call_log.flush()
    assert seen == [True, False]
    assert json.loads((paths.logs_dir / "llm_calls.jsonl").read_text().splitlines()[-1])["attempts"] == 1


class _BrokenTransport(httpx.AsyncBaseTransport):
    """A transport with a bug in it: not a failure of Ollama's, so it must not be dressed up as one."""

    calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        type(self).calls += 1
        raise RuntimeError("a bug in a transport")


@pytest.mark.parametrize("stream", [False, True])
async def test_an_unknown_failure_keeps_its_own_exception_and_is_not_retried(paths, stream):
    _BrokenTransport.calls = 0
    async with LLMClient(LLMConfig(max_retries=3, retry_backoff=0.01), paths=paths, transport=_BrokenTransport()) as client:
        with pytest.raises(RuntimeError, match="a bug in a transport"):
            if stream:
                await client.stream_chat([{"role": "user", "content": "hi"}], purpose="answer").text()
            else:
                await client.chat([{"role": "user", "content": "hi"}], purpose="answer")
    assert _BrokenTransport.calls == 1


def _burst_handler(words: int):
    """An Ollama stream that is all there at once (as a fast model's is, read from a full socket buffer)."""
    lines = [
        json.dumps(
            {
                "model": "m",
                "created_at": "2026-01-01T00:00:00Z",
                "done": False,
                "message": {"role": "assistant", "content": f"w{i} "},
            }
        )
        for i in range(words)
    ]
    lines.append(
        json.dumps(
            {
                "model": "m",
                "created_at": "2026-01-01T00:00:00Z",
                "done": True,
                "message": {"role": "assistant", "content": ""},
                "eval_count": words,
            }
        )
    )
    body = ("\n".join(lines) + "\n").encode()
    return lambda request: httpx.Response(200, content=body)


async def _turns_while_streaming(paths, consumer_yields: bool) -> tuple[int, int]:
    """(pieces, turns another task got while they arrived)."""
    turns = 0

    async def other_task() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    config = LLMConfig(host="http://ollama.test", model="m")
    async with LLMClient(config, paths=paths, transport=httpx.MockTransport(_burst_handler(200))) as client:
        ticker = asyncio.create_task(other_task())
        await asyncio.sleep(0)
        pieces, first_turn = 0, None
        async for _ in client.stream_chat(ASK, purpose="answer"):
            if first_turn is None:
                first_turn = turns
            pieces += 1
            if consumer_yields:
                await asyncio.sleep(0)
        ticker.cancel()
    assert first_turn is not None
    return pieces, turns - first_turn


async def test_a_burst_gives_the_loop_a_turn_and_only_when_it_had_none(paths, monkeypatch):
    # Every check due at once (no clock involved): the stream decides only whether the loop has run since.
    monkeypatch.setattr("llm_agent_magic.llm.stream.YIELD_AFTER", 0.0)
    # A consumer that never awaits: the stream itself lets the other task run, about once a piece.
    pieces, turns = await _turns_while_streaming(paths, consumer_yields=False)
    assert pieces == 200
    assert turns >= pieces - 5, f"another task ran {turns} times while {pieces} pieces of a burst arrived"
    # A consumer that awaits after each piece already gives the loop its turn: the stream adds none of its own
    # (each would cost a pass through the loop, on every streamed token).
    pieces, turns = await _turns_while_streaming(paths, consumer_yields=True)
    assert pieces == 200
    assert pieces - 5 <= turns <= pieces + 5, f"{turns} turns for {pieces} pieces: the stream yielded as well"
