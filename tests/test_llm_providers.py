"""The same guarantees from both providers: the official ``ollama`` client and the official ``openai`` client
(against the scripted server's OpenAI-compatible API), and what only the OpenAI protocol has (keys, refused
request fields, ``provider:name`` models, protocol-neutral cassettes)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from llm_helpers import closed_port, log_records

from llm_agent_magic.config import LLMConfig, PathsConfig, split_model
from llm_agent_magic.exceptions import (
    CassetteMiss,
    LLMProtocolError,
    LLMServerError,
    LLMTimeout,
    ModelNotFound,
    ModelServerAuthError,
    ModelServerUnavailable,
    OllamaUnavailable,
    StructuredOutputError,
)
from llm_agent_magic.llm import LLMClient

CLASSIFY = {
    "type": "object",
    "properties": {"mode": {"enum": ["chat", "react", "plan_execute"]}, "reason": {"type": "string"}},
    "required": ["mode", "reason"],
}
ASK = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 6 x 7?"}]
KEY = "sk-test-3f9a1c7e5b2d4a6f8e0c1b3d5f7a9c2e"
CHAT_PATH = {"ollama": "/api/chat", "openai": "/v1/chat/completions"}


@pytest.fixture
def paths(tmp_path):
    return PathsConfig(data_root=str(tmp_path / "data"))


@pytest.fixture(params=["ollama", "openai"])
def protocol(request):
    return request.param


@pytest.fixture
async def make_client(fake_ollama, paths, protocol):
    clients = []

    def make(**settings):
        settings = {
            "provider": protocol,
            "host": fake_ollama.url,
            "base_url": f"{fake_ollama.url}/v1",
            "retry_backoff": 0.01,
            **settings,
        }
        client = LLMClient(LLMConfig(**settings), paths=paths)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


# --- the same guarantees on both protocols ---------------------------------------------------------------


async def test_chat_speaks_the_protocol_with_the_purpose_header(fake_ollama, make_client, protocol, paths):
    fake_ollama.add_rule(purpose="answer", match="6 x 7", reply="42")
    client = make_client()
    result = await client.chat(ASK, purpose="answer")
    assert result.content == "42" and result.prompt_tokens and result.completion_tokens == 1
    (req,) = fake_ollama.requests
    assert req.path == CHAT_PATH[protocol] and req.headers["x-llm-agent-purpose"] == "answer"
    assert req.body["messages"] == ASK and req.body["stream"] is False
    assert log_records(paths, client)[0]["response"] == "42"


async def test_stream_arrives_piece_by_piece_with_usage(fake_ollama, make_client, protocol):
    reply = "The answer is forty-two, as computed below."
    fake_ollama.add_rule(purpose="answer", reply=reply)
    stream = make_client().stream_chat(ASK, purpose="answer")
    pieces = [piece async for piece in stream]
    assert len(pieces) > 3 and "".join(pieces) == reply
    assert stream.result.content == reply and stream.result.completion_tokens == len(pieces)
    assert stream.result.prompt_tokens == 8  # the words of ASK, as the server counted them
    (req,) = fake_ollama.requests
    assert req.body["stream"] is True
    if protocol == "openai":
        assert req.body["stream_options"] == {"include_usage": True}


async def test_thinking_never_leaks(fake_ollama, make_client, paths):
    fake_ollama.add_rule(purpose="answer", reply="<think>let me see</think>\n\n42", thinking="field thoughts")
    client = make_client()
    whole = await client.chat(ASK, purpose="answer")
    streamed = client.stream_chat(ASK, purpose="answer")
    assert whole.content == "42" == await streamed.text()
    for result in (whole, streamed.result):
        assert "let me see" in result.thinking and "field thoughts" in result.thinking
    records = log_records(paths, client)
    assert all(r["response"] == "42" for r in records)
    assert "let me see" in records[1]["thinking"] and "field thoughts" in records[1]["thinking"]


async def test_structured_asks_for_the_schema_and_repairs_once(fake_ollama, make_client, protocol):
    fake_ollama.add_rule(purpose="classify", reply="I think you want code.", times=1)
    fake_ollama.add_rule(purpose="classify", match="not valid JSON", reply={"mode": "chat", "reason": "fixed"})
    result = await make_client().structured(ASK, purpose="classify", schema=CLASSIFY)
    assert result.value == {"mode": "chat", "reason": "fixed"} and result.repaired
    first, repair = fake_ollama.requests
    if protocol == "openai":
        assert first.body["response_format"] == {"type": "json_schema", "json_schema": {"name": "reply", "schema": CLASSIFY}}
    else:
        assert first.body["format"] == CLASSIFY
    assert repair.body["messages"][-2] == {"role": "assistant", "content": "I think you want code."}


async def test_structured_gives_up_with_a_clear_error(fake_ollama, make_client):
    fake_ollama.add_rule(purpose="classify", reply='{"mode": "sing", "reason": "x"}')
    with pytest.raises(StructuredOutputError, match="must be one of") as info:
        await make_client().structured(ASK, purpose="classify", schema=CLASSIFY)
    assert "sing" in info.value.raw
    assert len(fake_ollama.requests) == 2


async def test_http_500_is_retried_on_the_one_loop(fake_ollama, make_client, paths, protocol):
    fake_ollama.add_rule(fault="http_500", times=2)
    fake_ollama.add_rule(reply="recovered")
    client = make_client()
    assert (await client.chat(ASK, purpose="answer")).content == "recovered"
    assert len(fake_ollama.requests) == 3 and log_records(paths, client)[0]["attempts"] == 3
    fake_ollama.load({"rules": [{"fault": "http_500"}]})
    with pytest.raises(LLMServerError, match="HTTP 500.*2 attempt") as info:
        await make_client(max_retries=1).stream_chat(ASK, purpose="answer").text()
    assert ("Ollama" if protocol == "ollama" else "OpenAI-compatible server at") in str(info.value)
    assert len(fake_ollama.requests) == 5


@pytest.mark.parametrize("stream", [False, True])
async def test_malformed_json_is_retried_then_reported(fake_ollama, make_client, stream):
    fake_ollama.add_rule(fault="malformed_json")
    client = make_client(max_retries=1)
    with pytest.raises(LLMProtocolError, match="not valid JSON|garbled"):
        if stream:
            await client.stream_chat(ASK, purpose="answer").text()
        else:
            await client.chat(ASK, purpose="answer")
    # In a stream the garbled line comes after text was shown, and shown text is never retried.
    assert len(fake_ollama.requests) == (1 if stream else 2)


async def test_truncated_stream_is_an_error_not_a_short_answer(fake_ollama, make_client):
    fake_ollama.add_rule(fault="truncated_stream", reply="one two three four five six seven eight")
    with pytest.raises(LLMProtocolError, match="ended before|broke"):
        await make_client().stream_chat(ASK, purpose="answer").text()
    assert len(fake_ollama.requests) == 1


async def test_truncated_whole_reply_is_retried(fake_ollama, make_client):
    fake_ollama.add_rule(fault="truncated_stream", times=1)
    fake_ollama.add_rule(reply="whole")
    assert (await make_client().chat(ASK, purpose="answer")).content == "whole"
    assert len(fake_ollama.requests) == 2


async def test_timeout_is_reported(fake_ollama, make_client):
    fake_ollama.add_rule(fault="timeout")
    with pytest.raises(LLMTimeout, match="request_timeout"):
        await make_client(request_timeout=0.3).chat(ASK, purpose="code")


async def test_cancelling_a_stream_closes_its_request(fake_ollama, make_client, paths):
    fake_ollama.add_rule(reply="word " * 200, token_delay_ms=50)
    client = make_client()
    first = asyncio.Event()

    async def consume():
        async for _ in client.stream_chat(ASK, purpose="answer"):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client._transport._pool.connections == [], "the cancelled response must be closed, not pooled"
    assert log_records(paths, client)[-1]["error"] == "cancelled"
    fake_ollama.load({"default": "again"})
    assert (await client.chat(ASK, purpose="answer")).content == "again"


async def test_embeddings_in_batches(fake_ollama, make_client, protocol):
    texts = ["sales by region", "sales by month", "penguin habitats", "regional sales", "ice"]
    vectors = await make_client(embed_batch_size=2).embed(texts)
    assert len(vectors) == 5 and len({len(v) for v in vectors}) == 1
    embeds = fake_ollama.requests_for("embed")
    assert [len(r.body["input"]) for r in embeds] == [2, 2, 1]
    assert {r.path for r in embeds} == {"/api/embed" if protocol == "ollama" else "/v1/embeddings"}

    def cos(a, b):
        return sum(x * y for x, y in zip(a, b, strict=False))

    assert cos(vectors[0], vectors[1]) > cos(vectors[0], vectors[2])


async def test_unknown_model_names_the_provider_and_lists_models(fake_ollama, make_client, protocol):
    fake_ollama.load({"models": ["qwen3:8b", "nomic-embed-text"]})
    fix = "ollama pull llama9:70b" if protocol == "ollama" else "openai server at http://127.0.0.1"
    with pytest.raises(ModelNotFound, match=fix):
        await make_client(model="llama9:70b").chat(ASK, purpose="answer")
    assert await make_client().list_models() == ["nomic-embed-text", "qwen3:8b"]


@pytest.mark.parametrize("stream", [False, True])
async def test_server_down_says_where_and_how(paths, protocol, stream):
    url = f"http://127.0.0.1:{closed_port()}"
    cfg = LLMConfig(provider=protocol, host=url, base_url=f"{url}/v1", max_retries=0)
    expected = OllamaUnavailable if protocol == "ollama" else ModelServerUnavailable
    async with LLMClient(cfg, paths=paths) as client:
        with pytest.raises(expected, match="ollama serve" if protocol == "ollama" else "LLMConfig.base_url"):
            if stream:
                await client.stream_chat(ASK, purpose="answer").text()
            else:
                await client.chat(ASK, purpose="answer")
        with pytest.raises(expected):
            await client.list_models()


async def test_secrets_are_redacted_before_they_leave(fake_ollama, make_client, monkeypatch):
    monkeypatch.setenv("WAREHOUSE_TOKEN", "wh-9f8e7d6c5b4a39281706")
    await make_client().chat([{"role": "user", "content": "use wh-9f8e7d6c5b4a39281706 please"}], purpose="answer")
    await make_client().stream_chat([{"role": "user", "content": "wh-9f8e7d6c5b4a39281706"}], purpose="answer").text()
    sent = json.dumps([r.body for r in fake_ollama.requests])
    assert "wh-9f8e7d6c5b4a39281706" not in sent and "REDACTED" in sent


# --- only the OpenAI protocol ----------------------------------------------------------------------------


@pytest.fixture
async def openai_client(fake_ollama, paths):
    clients = []

    def make(**settings):
        cfg = LLMConfig(provider="openai", base_url=f"{fake_ollama.url}/v1", retry_backoff=0.01, **settings)
        client = LLMClient(cfg, paths=paths)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.mark.parametrize(
    ("spec", "default", "expected"),
    [
        ("qwen3:8b", "ollama", ("ollama", "qwen3:8b")),
        ("qwen3:8b", "openai", ("openai", "qwen3:8b")),
        ("ollama:qwen3:8b", "openai", ("ollama", "qwen3:8b")),
        ("openai:Qwen/Qwen3-32B", "ollama", ("openai", "Qwen/Qwen3-32B")),
        ("hf.co/org/model:Q4_K_M", "ollama", ("ollama", "hf.co/org/model:Q4_K_M")),
        ("openai:", "ollama", ("ollama", "openai:")),
    ],
)
def test_split_model_only_counts_known_provider_prefixes(spec, default, expected):
    assert split_model(spec, default) == expected


async def test_models_per_purpose_come_from_their_provider(fake_ollama, paths):
    """A local coder model on Ollama, the planner on an OpenAI-compatible server: one client, two protocols."""
    fake_ollama.add_rule(purpose="code", reply="print(42)")
    fake_ollama.add_rule(purpose="plan", reply="step one")
    cfg = LLMConfig(
        provider="openai",
        base_url=f"{fake_ollama.url}/v1",
        host=fake_ollama.url,
        model="big-planner",
        coder_model="ollama:qwen2.5-coder:7b",
        embedding_model="ollama:nomic-embed-text",
    )
    async with LLMClient(cfg, paths=paths) as client:
        assert (await client.chat(ASK, purpose="code")).content == "print(42)"
        assert (await client.chat(ASK, purpose="plan")).content == "step one"
        await client.embed(["a"])
        client.call_log.flush()
        models = await client.list_models()
    code, plan, embed = fake_ollama.requests[:3]
    assert (code.path, code.model) == ("/api/chat", "qwen2.5-coder:7b")
    assert (plan.path, plan.model) == ("/v1/chat/completions", "big-planner")
    assert (embed.path, embed.model) == ("/api/embed", "nomic-embed-text")
    # The default provider's names as they are, the other's with its prefix: what the picker can set.
    assert models == ["nomic-embed-text", "qwen3:8b", "ollama:nomic-embed-text", "ollama:qwen3:8b"]
    logged = [json.loads(line)["model"] for line in (paths.logs_dir / "llm_calls.jsonl").read_text().splitlines()]
    assert logged == ["ollama:qwen2.5-coder:7b", "big-planner", "ollama:nomic-embed-text"]


@pytest.mark.parametrize("field", ["response_format", "chat_template_kwargs"])
async def test_a_refused_schema_or_think_switch_is_left_out_and_the_reader_repairs(fake_ollama, openai_client, field):
    fake_ollama.load(
        {
            "refuse_fields": [field],
            "rules": [
                {"purpose": "classify", "reply": "Sure! ```json\n{'mode': 'react', 'reason': 'needs code',}\n```"},
            ],
        }
    )
    client = openai_client()
    for _ in range(2):
        result = await client.structured(ASK, purpose="classify", schema=CLASSIFY)
        assert result.value == {"mode": "react", "reason": "needs code"} and not result.repaired
    refused, *later = fake_ollama.requests
    assert field in refused.body and all(field not in r.body for r in later) and len(later) == 2


async def test_a_refused_usage_request_is_left_out(fake_ollama, openai_client, paths):
    fake_ollama.load({"refuse_fields": ["stream_options"], "default": "fine then"})
    client = openai_client(max_retries=0)
    stream = client.stream_chat(ASK, purpose="answer")
    assert await stream.text() == "fine then"
    assert stream.result.completion_tokens is None  # the server gave no usage, and nothing was made up
    assert [("stream_options" in r.body) for r in fake_ollama.requests] == [True, False]
    assert log_records(paths, client)[0]["attempts"] == 1


async def test_the_key_comes_from_the_environment_and_is_never_written(fake_ollama, paths, monkeypatch, tmp_path):
    fake_ollama.load({"api_key": KEY, "default": "authorised"})
    cassette = tmp_path / "keyed.jsonl"
    monkeypatch.setenv("TEAM_LLM_KEY", KEY)
    cfg = LLMConfig(
        provider="openai",
        base_url=f"{fake_ollama.url}/v1",
        api_key_env="TEAM_LLM_KEY",
        cassette_mode="record",
        cassette_path=str(cassette),
    )
    async with LLMClient(cfg, paths=paths) as client:
        assert (await client.chat(ASK, purpose="answer")).content == "authorised"
        assert await client.stream_chat(ASK, purpose="answer").text() == "authorised"
        await client.embed(["text"])
        assert KEY not in repr(vars(client.config))
    assert {r.headers["authorization"] for r in fake_ollama.requests} == {f"Bearer {KEY}"}
    written = cassette.read_text() + (paths.logs_dir / "llm_calls.jsonl").read_text()
    assert len(written) > 500 and KEY not in written and "authorization" not in written.lower()


async def test_a_missing_or_wrong_key_says_which_variable(fake_ollama, paths, monkeypatch):
    fake_ollama.load({"api_key": KEY})
    monkeypatch.delenv("TEAM_LLM_KEY", raising=False)
    cfg = LLMConfig(provider="openai", base_url=f"{fake_ollama.url}/v1", api_key_env="TEAM_LLM_KEY")
    async with LLMClient(cfg, paths=paths) as client:
        with pytest.raises(ModelServerAuthError, match=r"HTTP 401.*no key \(\$TEAM_LLM_KEY is not set\)"):
            await client.chat(ASK, purpose="answer")
    monkeypatch.setenv("TEAM_LLM_KEY", "sk-wrong-0000000000000000000000")
    async with LLMClient(cfg, paths=paths) as client:
        with pytest.raises(ModelServerAuthError, match=r"with the key in \$TEAM_LLM_KEY") as info:
            await client.stream_chat(ASK, purpose="answer").text()
    assert "sk-wrong" not in str(info.value)
    assert len(fake_ollama.requests) == 2  # a refused key is not retried


async def test_a_wrong_base_url_says_so(fake_ollama, paths):
    cfg = LLMConfig(provider="openai", base_url=fake_ollama.url)  # without /v1
    async with LLMClient(cfg, paths=paths) as client:
        with pytest.raises(LLMProtocolError, match=r"No OpenAI-compatible API answers at .*usually ends in /v1"):
            await client.chat(ASK, purpose="answer")
    with pytest.raises(ModelServerUnavailable, match="set LLMConfig.base_url"):
        await LLMClient(LLMConfig(provider="openai"), paths=paths).chat(ASK, purpose="answer")


class _BrokenTransport(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise RuntimeError("a bug in a transport")


async def test_a_bug_below_the_openai_client_keeps_its_own_exception(paths):
    cfg = LLMConfig(provider="openai", base_url="http://server.test/v1", max_retries=3, retry_backoff=0.01)
    async with LLMClient(cfg, paths=paths, transport=_BrokenTransport()) as client:
        with pytest.raises(RuntimeError, match="a bug in a transport"):
            await client.chat(ASK, purpose="answer")


# --- cassettes: one recording, either protocol ---------------------------------------------------------


async def _session(client: LLMClient) -> tuple:
    value = (await client.structured(ASK, purpose="classify", schema=CLASSIFY)).value
    stream = client.stream_chat(ASK, purpose="answer")
    text = await stream.text()
    whole = await client.chat(ASK, purpose="react")
    vectors = await client.embed(["sales by region"])
    result = stream.result
    return value, text, result.thinking, result.prompt_tokens, result.completion_tokens, whole.content, vectors


@pytest.mark.parametrize(("recorded", "replayed"), [("openai", "openai"), ("ollama", "openai"), ("openai", "ollama")])
async def test_a_cassette_replays_to_either_protocol_with_no_server(fake_ollama, paths, tmp_path, recorded, replayed):
    fake_ollama.load(
        {
            "rules": [
                {"purpose": "classify", "reply": {"mode": "react", "reason": "data"}},
                {"purpose": "answer", "reply": "<think>hidden</think>West is highest.", "thinking": "split off"},
                {"purpose": "react", "reply": "next step"},
            ]
        }
    )
    cassette = tmp_path / "c.jsonl"
    settings = {"host": fake_ollama.url, "base_url": f"{fake_ollama.url}/v1"}
    async with LLMClient(
        LLMConfig(provider=recorded, cassette_mode="record", cassette_path=str(cassette), **settings), paths=paths
    ) as client:
        live = await _session(client)
    fake_ollama.stop()
    async with LLMClient(
        LLMConfig(provider=replayed, cassette_mode="replay", cassette_path=str(cassette)), paths=paths
    ) as client:
        assert await _session(client) == live
        with pytest.raises(CassetteMiss, match="purpose=answer"):
            await client.chat([{"role": "user", "content": "never asked"}], purpose="answer")
    assert live[1] == "West is highest." and "split off" in live[2] and "hidden" in live[2]
    paths_recorded = {json.loads(line).get("path") for line in cassette.read_text().splitlines()[1:]}
    assert paths_recorded == ({"/v1/chat/completions", "/v1/embeddings"} if recorded == "openai" else {"/api/chat", "/api/embed"})


@pytest.mark.parametrize(("recorded", "replayed"), [("ollama", "openai"), ("openai", "ollama")])
async def test_a_recorded_model_list_replays_to_the_other_protocol(fake_ollama, paths, tmp_path, recorded, replayed):
    fake_ollama.load({"models": ["qwen3:8b", "nomic-embed-text"]})
    cassette = tmp_path / "models.jsonl"
    settings = {"host": fake_ollama.url, "base_url": f"{fake_ollama.url}/v1", "cassette_path": str(cassette)}
    async with LLMClient(LLMConfig(provider=recorded, cassette_mode="record", **settings), paths=paths) as client:
        live = await client.list_models()
    fake_ollama.stop()
    async with LLMClient(LLMConfig(provider=replayed, cassette_mode="replay", **settings), paths=paths) as client:
        assert await client.list_models() == live == ["nomic-embed-text", "qwen3:8b"]
