"""The scripted Ollama server, driven by the real `ollama` client (sync and async)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import ollama
import pytest

from llm_agent_magic.testing.fake_ollama import FakeOllama, embed_text, split_into_chunks
from llm_agent_magic.testing.pytest_plugin import load_scenario

SCRIPTS = Path(__file__).parent / "scripts"
USER_HI = [{"role": "user", "content": "hi there"}]


def client(server: FakeOllama, purpose: str | None = None, **kwargs) -> ollama.Client:
    headers = {"X-LLM-Agent-Purpose": purpose} if purpose else None
    return ollama.Client(host=server.url, headers=headers, **kwargs)


def chat(server: FakeOllama, purpose: str | None = None, messages=USER_HI, **kwargs):
    with client(server, purpose) as c:
        return c.chat(model="qwen3:8b", messages=messages, **kwargs)


def stream_chat(server: FakeOllama, purpose: str | None = None, messages=USER_HI):
    with client(server, purpose) as c:
        return list(c.chat(model="qwen3:8b", messages=messages, stream=True))


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=False)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


# --- chat and generate ---------------------------------------------------------------


def test_chat_whole_has_ollama_fields(fake_ollama):
    fake_ollama.add_rule(reply="Hello, analyst.")
    response = chat(fake_ollama, messages=[{"role": "system", "content": "be brief"}, *USER_HI])
    assert response.message.role == "assistant"
    assert response.message.content == "Hello, analyst."
    assert response.model == "qwen3:8b"
    assert response.done is True and response.done_reason == "stop"
    assert response.prompt_eval_count == 4  # whitespace words of all messages
    assert response.eval_count == 2
    assert response.created_at.endswith("Z")
    for name in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        assert getattr(response, name) > 0


def test_chat_stream_joins_back_to_the_reply_exactly(fake_ollama):
    reply = "  Line one,  with  spaces.\n\nLine two\tand a tab. "
    fake_ollama.add_rule(reply=reply)
    parts = stream_chat(fake_ollama)
    assert "".join(p.message.content for p in parts) == reply
    assert all(not p.done for p in parts[:-1])
    final = parts[-1]
    assert final.done and final.done_reason == "stop" and final.message.content == ""
    assert final.eval_count == len(parts) - 1 == len(split_into_chunks(reply)) > 5


async def test_async_client_whole_and_stream(fake_ollama):
    fake_ollama.add_rule(purpose="answer", reply="Streaming from asyncio works.")
    async with ollama.AsyncClient(host=fake_ollama.url, headers={"X-LLM-Agent-Purpose": "answer"}) as c:
        whole = await c.chat(model="qwen3:8b", messages=USER_HI)
        parts = [p async for p in await c.chat(model="qwen3:8b", messages=USER_HI, stream=True)]
    assert whole.message.content == "Streaming from asyncio works."
    assert "".join(p.message.content for p in parts) == whole.message.content
    assert parts[-1].done


def test_generate_whole_and_stream_match_system_and_prompt(fake_ollama):
    fake_ollama.add_rule(match=r"system: You summarise.*\nuser: .*sales", reply="Sales rose 5%.")
    with client(fake_ollama) as c:
        whole = c.generate(model="qwen3:8b", system="You summarise tables.", prompt="the sales table")
        parts = list(c.generate(model="qwen3:8b", system="You summarise.", prompt="sales", stream=True))
        other = c.generate(model="qwen3:8b", prompt="sales, but no system prompt")
    assert whole.response == "Sales rose 5%." and whole.done and whole.prompt_eval_count == 6
    assert "".join(p.response for p in parts) == "Sales rose 5%." and parts[-1].done
    assert other.response == "OK"


def test_connection_is_reused_across_whole_and_streamed_calls(fake_ollama):
    fake_ollama.add_rule(reply="one two three")
    local_ports = set()
    with httpx.Client(base_url=fake_ollama.url) as http:
        for stream in (True, False, True, False):
            r = http.post("/api/chat", json={"model": "m", "messages": USER_HI, "stream": stream})
            assert r.status_code == 200
            assert r.text.endswith("\n") if stream else r.json()["done"]
            local_ports.add(r.extensions["network_stream"].get_extra_info("client_addr")[1])
    assert len(fake_ollama.requests) == 4 and len(local_ports) == 1


# --- rules ------------------------------------------------------------------------------


def test_rules_are_tried_in_order(fake_ollama):
    fake_ollama.load(
        {
            "rules": [
                {"match": "weather", "reply": "first"},
                {"match": "weather", "reply": "second"},
                {"reply": "catch-all"},
            ]
        }
    )
    assert chat(fake_ollama, messages=[{"role": "user", "content": "weather?"}]).message.content == "first"
    assert chat(fake_ollama).message.content == "catch-all"


def test_purpose_comes_from_the_header_case_insensitively(fake_ollama):
    fake_ollama.load({"rules": [{"purpose": "Classify", "reply": "classified"}], "default": "plain"})
    assert chat(fake_ollama, "classify").message.content == "classified"
    assert chat(fake_ollama, "answer").message.content == "plain"
    assert chat(fake_ollama).message.content == "plain"
    assert [r.rule_index for r in fake_ollama.requests] == [0, None, None]


def test_match_is_a_dotall_regex_over_role_content_lines(fake_ollama):
    fake_ollama.add_rule(match=r"^system: Plan.*user: .*revenue", reply="matched")
    messages = [{"role": "system", "content": "Plan the work.\nBe concise."}, {"role": "user", "content": "chart revenue"}]
    assert chat(fake_ollama, messages=messages).message.content == "matched"
    assert chat(fake_ollama, messages=messages[1:]).message.content == "OK"
    assert fake_ollama.requests[0].text == "system: Plan the work.\nBe concise.\nuser: chart revenue"


def test_times_limits_a_rule_then_later_rules_answer(fake_ollama):
    fake_ollama.load({"rules": [{"reply": "once", "times": 1}, {"reply": "twice", "times": 2}]})
    replies = [chat(fake_ollama).message.content for _ in range(4)]
    assert replies == ["once", "twice", "twice", "OK"]


def test_json_values_are_sent_as_json_text(fake_ollama):
    plan = {"steps": [{"goal": "load", "tool": "python_coder", "success_criteria": "df exists"}]}
    fake_ollama.load({"rules": [{"purpose": "plan", "reply": plan}, {"reply": 42}], "default": [1]})
    assert json.loads(chat(fake_ollama, "plan").message.content) == plan
    assert chat(fake_ollama).message.content == "42"
    fake_ollama.load({"default": [1, "a"]})
    assert chat(fake_ollama).message.content == '[1, "a"]'


def test_default_reply(fake_ollama_factory):
    assert chat(fake_ollama_factory()).message.content == "OK"
    assert chat(fake_ollama_factory({"default": "Nothing scripted"})).message.content == "Nothing scripted"


def test_thinking_is_separate_from_content(fake_ollama):
    fake_ollama.add_rule(thinking="Secret chain of thought.", reply="Visible answer.")
    whole = chat(fake_ollama)
    assert whole.message.thinking == "Secret chain of thought."
    assert whole.message.content == "Visible answer."
    parts = stream_chat(fake_ollama)
    thinking = [p for p in parts if p.message.thinking]
    assert parts[: len(thinking)] == thinking and all(p.message.content == "" for p in thinking)
    assert "".join(p.message.thinking for p in thinking) == "Secret chain of thought."
    assert "".join(p.message.content for p in parts) == "Visible answer."


def test_set_script_from_a_file_resets_counters(fake_ollama, tmp_path):
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"rules": [{"reply": "from file", "times": 1}]}))
    fake_ollama.load(str(path))
    assert chat(fake_ollama).message.content == "from file"
    assert chat(fake_ollama).message.content == "OK"
    fake_ollama.load(path)
    assert chat(fake_ollama).message.content == "from file"


# --- models, tags, show, version ---------------------------------------------------------


def test_unknown_model_gets_ollamas_404(fake_ollama):
    fake_ollama.load({"models": ["qwen3:8b", "nomic-embed-text"]})
    with client(fake_ollama) as c:
        with pytest.raises(ollama.ResponseError) as info:
            c.chat(model="llama3.2", messages=USER_HI)
        assert info.value.status_code == 404
        assert info.value.error == 'model "llama3.2" not found, try pulling it first'
        with pytest.raises(ollama.ResponseError, match="not found") as info:
            list(c.chat(model="llama3.2", messages=USER_HI, stream=True))
        assert info.value.status_code == 404
        with pytest.raises(ollama.ResponseError):
            c.embed(model="mxbai-embed-large", input="x")
        assert c.embed(model="nomic-embed-text:latest", input="x").embeddings  # same model
    assert fake_ollama.requests[0].rule_index is None


def test_tags_show_version_ps(fake_ollama):
    with client(fake_ollama) as c:
        assert [m.model for m in c.list().models] == ["qwen3:8b", "nomic-embed-text"]
        fake_ollama.load({"models": ["qwen3:4b", "nomic-embed-text", "llama3.2:1b"]})
        models = c.list().models
        assert [m.model for m in models] == ["qwen3:4b", "nomic-embed-text", "llama3.2:1b"]
        assert all(m.size > 0 and m.digest and m.modified_at and m.details.format for m in models)
        assert c.show("qwen3:4b").capabilities == ["completion", "tools", "thinking"]
        assert c.show("nomic-embed-text").capabilities == ["completion", "embedding"]
        assert c.show("llama3.2:1b").capabilities == ["completion"]
        assert c.show("qwen3:4b").modelinfo["general.architecture"] == "qwen3"
        with pytest.raises(ollama.ResponseError):
            c.show("qwen3:8b")
        c.chat(model="qwen3:4b", messages=USER_HI)
        assert [m.model for m in c.ps().models] == ["qwen3:4b"]
    raw = httpx.get(f"{fake_ollama.url}/api/tags").json()["models"][0]
    assert raw["name"] == raw["model"] == "qwen3:4b"
    assert httpx.get(f"{fake_ollama.url}/api/version").json()["version"]
    assert httpx.get(fake_ollama.url).text == "Ollama is running"


# --- embeddings -----------------------------------------------------------------------------


def test_embeddings_are_deterministic_and_shared_words_are_close(fake_ollama):
    texts = ["quarterly sales by region", "sales by region for the quarter", "photosynthesis in plants"]
    with client(fake_ollama, "embed") as c:
        first = c.embed(model="nomic-embed-text", input=texts).embeddings
        again = c.embed(model="nomic-embed-text", input=texts[0]).embeddings[0]
        old_api = c.embeddings(model="nomic-embed-text", prompt=texts[0]).embedding
        short = c.embed(model="nomic-embed-text", input="x", dimensions=8).embeddings[0]
    assert list(again) == list(first[0]) == list(old_api) == embed_text(texts[0])
    assert len(first[0]) == 64 and math.isclose(sum(v * v for v in first[0]), 1.0)
    assert cosine(first[0], first[1]) > cosine(first[0], first[2]) + 0.3
    assert len(short) == 8
    assert len(embed_text("")) == 64  # still a unit vector


def test_embedding_rules_need_a_purpose(fake_ollama):
    fake_ollama.load({"rules": [{"reply": "chat only", "times": 1}, {"purpose": "embed", "fault": "http_500", "times": 1}]})
    with client(fake_ollama, "embed") as c:
        with pytest.raises(ollama.ResponseError) as info:
            c.embed(model="nomic-embed-text", input="x")
        assert info.value.status_code == 500
        assert c.embed(model="nomic-embed-text", input="x").embeddings
    assert chat(fake_ollama).message.content == "chat only"
    assert fake_ollama.unused_rules() == []


# --- faults -----------------------------------------------------------------------------------


def test_http_500_once_then_retry_succeeds(fake_ollama_factory):
    server = fake_ollama_factory("flaky_then_ok")
    with pytest.raises(ollama.ResponseError) as info:
        chat(server, "answer")
    assert info.value.status_code == 500 and "http_500" in info.value.error
    assert chat(server, "answer").message.content == "Recovered after a retry."
    assert [r.rule_index for r in server.requests] == [0, 1]


def test_timeout_fault_is_seen_as_a_client_timeout(fake_ollama):
    fake_ollama.add_rule(fault="timeout", times=2)
    with client(fake_ollama, timeout=0.3) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.chat(model="qwen3:8b", messages=USER_HI)
        with pytest.raises(httpx.ReadTimeout):
            list(c.chat(model="qwen3:8b", messages=USER_HI, stream=True))
        assert c.chat(model="qwen3:8b", messages=USER_HI).message.content == "OK"


def test_truncated_stream_ends_without_done(fake_ollama):
    fake_ollama.add_rule(reply="one two three four five six", fault="truncated_stream")
    seen = []
    with client(fake_ollama) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            for part in c.chat(model="qwen3:8b", messages=USER_HI, stream=True):
                seen.append(part)
        assert seen and not any(p.done for p in seen)
        with pytest.raises(httpx.RemoteProtocolError):
            c.chat(model="qwen3:8b", messages=USER_HI)


async def test_truncated_stream_async(fake_ollama):
    fake_ollama.add_rule(reply="one two three four", fault="truncated_stream")
    seen = []
    async with ollama.AsyncClient(host=fake_ollama.url) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            async for part in await c.chat(model="qwen3:8b", messages=USER_HI, stream=True):
                seen.append(part)
    assert seen and not any(p.done for p in seen)


def test_malformed_json_whole_and_streamed(fake_ollama):
    fake_ollama.add_rule(reply="a b c d", fault="malformed_json")
    with client(fake_ollama) as c:
        with pytest.raises(json.JSONDecodeError):
            c.chat(model="qwen3:8b", messages=USER_HI)
        with pytest.raises(json.JSONDecodeError):
            list(c.chat(model="qwen3:8b", messages=USER_HI, stream=True))
    with httpx.Client(base_url=fake_ollama.url) as http:
        body = {"model": "m", "messages": USER_HI, "stream": True}
        lines = http.post("/api/chat", json=body).text.splitlines()
    bad = [line for line in lines if not _is_json(line)]
    assert len(bad) == 1 and len(lines) == 6  # 4 words, 1 bad line, done


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def test_delays(fake_ollama):
    fake_ollama.load(
        {
            "rules": [
                {"purpose": "slow", "delay_ms": 200},
                {"purpose": "tokens", "reply": "a b c d e", "token_delay_ms": 50},
            ]
        }
    )
    started = time.monotonic()
    chat(fake_ollama, "slow")
    assert time.monotonic() - started >= 0.2
    stamps = []
    with client(fake_ollama, "tokens") as c:
        for _ in c.chat(model="qwen3:8b", messages=USER_HI, stream=True):
            stamps.append(time.monotonic())
    assert stamps[-1] - stamps[0] >= 0.2  # 5 gaps of 50 ms between 6 parts


# --- recording, validation, lifecycle -------------------------------------------------


def test_requests_are_recorded(fake_ollama):
    fake_ollama.add_rule(purpose="classify", reply="{}")
    before = time.time()
    chat(fake_ollama, "classify")
    chat(fake_ollama, "answer", format="json")
    httpx.get(f"{fake_ollama.url}/api/tags")
    first, second, tags = fake_ollama.requests
    assert (first.method, first.path, first.purpose, first.rule_index) == ("POST", "/api/chat", "classify", 0)
    assert first.headers["x-llm-agent-purpose"] == "classify"
    assert first.body["messages"] == USER_HI and first.body["stream"] is False
    assert first.model == "qwen3:8b" and before <= first.timestamp <= time.time()
    assert second.body["format"] == "json" and second.rule_index is None
    assert (tags.method, tags.path, tags.body, tags.purpose) == ("GET", "/api/tags", None, None)
    assert fake_ollama.requests_for("CLASSIFY") == [first]
    assert fake_ollama.last_request == tags
    fake_ollama.clear_requests()
    assert fake_ollama.requests == [] and fake_ollama.last_request is None


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ({"rules": [{"reply": "ok"}, {"repyl": "x"}]}, r"rule 1: unknown key 'repyl'"),
        ({"rules": [{"fault": "http500"}]}, r"rule 0: unknown fault 'http500'"),
        ({"rules": [{}, {}, {"match": "(unclosed"}]}, r"rule 2: bad regex in 'match'"),
        ({"rules": [{"times": -1}]}, r"rule 0: 'times' must be"),
        ({"rules": [{"delay_ms": "soon"}]}, r"rule 0: 'delay_ms' must be"),
        ({"rules": ["reply"]}, r"rule 0: expected an object"),
        ({"rule": []}, r"unknown key 'rule'"),
        ({"models": "qwen3:8b"}, r"'models' must be a list"),
        ({"api_key": ""}, r"'api_key' must be a non-empty string"),
        ({"refuse_fields": "response_format"}, r"'refuse_fields' must be a list"),
        ({"rules": [{"wait_for": "all"}]}, r"rule 0: 'wait_for' must be"),
    ],
)
def test_invalid_scripts_fail_at_load_time(script, message):
    with pytest.raises(ValueError, match=message):
        FakeOllama(script)


def test_add_rule_is_validated_too(fake_ollama):
    with pytest.raises(ValueError, match="rule 0: unknown fault"):
        fake_ollama.add_rule(fault="crash")
    assert fake_ollama.add_rule({"reply": "a"}, times=1) == 0


def test_stop_is_quick_while_a_request_hangs():
    server = FakeOllama({"rules": [{"fault": "timeout"}]}).start()
    errors = []

    def call() -> None:
        try:
            chat(server)
        except Exception as exc:  # noqa: BLE001 - any error is fine; we only need it to end
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    deadline = time.monotonic() + 5
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    stopper.join(10)  # a deadlock guard, not a speed target: stop() must not wait for the hanging reply
    assert not stopper.is_alive()
    thread.join(5)
    assert not thread.is_alive() and errors


def test_client_leaving_a_stream_early_is_quiet(fake_ollama, capfd):
    fake_ollama.add_rule(reply="word " * 2000, token_delay_ms=1)
    with client(fake_ollama) as c:
        stream = c.chat(model="qwen3:8b", messages=USER_HI, stream=True)
        next(stream)
        stream.close()
    assert chat(fake_ollama).message.content.startswith("word")
    fake_ollama.stop()
    assert "Traceback" not in capfd.readouterr().err


def test_fixture_points_ollama_host_at_the_server(fake_ollama):
    assert os.environ["OLLAMA_HOST"] == fake_ollama.url
    with ollama.Client() as c:
        assert c.chat(model="qwen3:8b", messages=USER_HI).message.content == "OK"
    assert len(fake_ollama.requests) == 1


def test_scenario_files_load_and_validate(fake_ollama_factory):
    script = load_scenario("classify_then_answer", SCRIPTS)
    assert load_scenario(SCRIPTS / "classify_then_answer.json") == script
    server = fake_ollama_factory(script)
    assert json.loads(chat(server, "classify").message.content)["mode"] == "chat"
    assert server.unused_rules() == [1]
    with pytest.raises(FileNotFoundError):
        load_scenario("no_such_scenario", SCRIPTS)


@pytest.mark.slow
def test_cli_serves_until_sigterm():
    code = "from llm_agent_magic.testing.fake_ollama import serve_forever_cli; serve_forever_cli(None, 0)"
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) as proc:
        try:
            line = proc.stdout.readline().strip()
            assert line.startswith("fake-ollama listening on http://127.0.0.1:")
            url = line.rsplit(" ", 1)[1]
            with ollama.Client(host=url) as c:
                assert c.chat(model="qwen3:8b", messages=USER_HI).message.content == "OK"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(5) == 0
        finally:
            proc.kill()


def test_the_openai_api_whole_streamed_embeddings_and_models(fake_ollama):
    """The wire format the openai client reads, from the same script as Ollama's API."""
    fake_ollama.load({"models": ["qwen3:8b"], "rules": [{"purpose": "answer", "reply": "four two", "thinking": "hm"}]})
    headers = {"X-LLM-Agent-Purpose": "answer"}
    with httpx.Client(base_url=f"{fake_ollama.url}/v1") as http:
        whole = http.post("/chat/completions", json={"model": "qwen3:8b", "messages": USER_HI}, headers=headers).json()
        assert whole["object"] == "chat.completion" and whole["choices"][0]["message"] == {
            "role": "assistant",
            "content": "four two",
            "reasoning_content": "hm",
        }
        assert whole["usage"]["completion_tokens"] == 3 and whole["choices"][0]["finish_reason"] == "stop"
        streamed = http.post(
            "/chat/completions",
            headers=headers,
            json={"model": "qwen3:8b", "messages": USER_HI, "stream": True, "stream_options": {"include_usage": True}},
        )
        assert streamed.headers["content-type"] == "text/event-stream"
        events = streamed.text.split("\n\n")
        assert events[-2:] == ["data: [DONE]", ""]
        chunks = [json.loads(e[len("data: ") :]) for e in events[:-2]]
        deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
        assert "".join(d.get("content", "") for d in deltas) == "four two"
        assert [d["reasoning_content"] for d in deltas if "reasoning_content" in d] == ["hm"]
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3
        vectors = http.post("/embeddings", json={"model": "qwen3:8b", "input": ["a b", "c"]}).json()
        assert [d["index"] for d in vectors["data"]] == [0, 1] and vectors["data"][0]["embedding"] == embed_text("a b")
        assert [m["id"] for m in http.get("/models").json()["data"]] == ["qwen3:8b"]
        missing = http.post("/chat/completions", json={"model": "llama9", "messages": USER_HI})
        assert missing.status_code == 404 and missing.json()["error"]["message"] == "The model `llama9` does not exist."


def test_openai_key_and_refused_fields(fake_ollama):
    fake_ollama.load({"api_key": "sk-k-0123456789", "refuse_fields": ["response_format"]})
    body = {"model": "qwen3:8b", "messages": USER_HI}
    with httpx.Client(base_url=f"{fake_ollama.url}/v1") as http:
        assert http.post("/chat/completions", json=body).status_code == 401
        wrong = http.get("/models", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "AuthenticationError"
        keyed = {"Authorization": "Bearer sk-k-0123456789"}
        assert http.post("/chat/completions", json=body, headers=keyed).status_code == 200
        refused = http.post("/chat/completions", json={**body, "response_format": {"type": "json_object"}}, headers=keyed)
        assert refused.status_code == 400 and "response_format" in refused.json()["error"]["message"]
    assert chat(fake_ollama).message.content == "OK"  # Ollama's API needs no key


def test_wait_for_holds_answers_until_that_many_are_in_flight(fake_ollama):
    fake_ollama.load({"rules": [{"wait_for": 3, "reply": "together"}]})
    replies: list[str] = []
    threads = [threading.Thread(target=lambda: replies.append(chat(fake_ollama).message.content)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert replies == ["together"] * 3 and fake_ollama.max_in_flight == 3
