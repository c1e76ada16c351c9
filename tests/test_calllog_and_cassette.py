"""Call log content in all three formats, and record/replay cassettes."""

from __future__ import annotations

import json

import pytest

from llm_agent_magic import volatile
from llm_agent_magic.config import LLMConfig, PathsConfig
from llm_agent_magic.exceptions import CassetteError, CassetteMiss, LLMServerError
from llm_agent_magic.llm import LLMClient
from llm_agent_magic.testing.fake_ollama import FakeOllama

SECRET = "tvly-abcdefgh12345678"
ASK = [{"role": "system", "content": "You help with data."}, {"role": "user", "content": f"my key is {SECRET}; sum 2+2"}]


@pytest.fixture
def paths(tmp_path):
    return PathsConfig(data_root=str(tmp_path / "data"))


async def _two_calls(url: str, paths: PathsConfig, fmt: str) -> None:
    async with LLMClient(LLMConfig(host=url, log_format=fmt), paths=paths) as client:
        await client.chat(ASK, purpose="code")
        await client.stream_chat(ASK, purpose="answer").text()


@pytest.fixture
def scripted():
    with FakeOllama({"rules": [{"purpose": "code", "reply": "```python\nprint(2+2)\n```"}], "default": "4"}) as s:
        yield s


async def test_jsonl_log_has_every_field(scripted, paths, monkeypatch):
    monkeypatch.setenv("TAVILY_API_KEY", SECRET)
    await _two_calls(scripted.url, paths, "jsonl")
    text = (paths.logs_dir / "llm_calls.jsonl").read_text()
    assert SECRET not in text and "[REDACTED]" in text
    first, second = [json.loads(line) for line in text.splitlines()]
    assert first["purpose"] == "code" and first["model"] == "qwen3:8b"
    assert [m["role"] for m in first["messages"]] == ["system", "user"]
    assert first["response"] == "```python\nprint(2+2)\n```"
    assert first["prompt_tokens"] > 0 and first["completion_tokens"] > 0
    assert first["duration_ms"] > 0 and len(first["call_id"]) == 12 and first["error"] is None
    assert first["options"]["num_ctx"] == 16384
    assert second["stream"] is True and second["response"] == "4"


async def test_structured_log_is_readable(scripted, paths):
    await _two_calls(scripted.url, paths, "structured")
    text = (paths.logs_dir / "llm_calls.log").read_text()
    assert text.count("=== call ") == 2
    assert "purpose=code | model=qwen3:8b" in text
    assert "--- system ---\nYou help with data." in text and "--- response ---\n4" in text
    assert SECRET not in text  # key-shaped strings are redacted even when not in the environment


async def test_compact_log_is_one_line_a_call(scripted, paths):
    await _two_calls(scripted.url, paths, "compact")
    lines = (paths.logs_dir / "llm_calls.compact.log").read_text().splitlines()
    assert len(lines) == 2
    assert " code qwen3:8b " in lines[0] and " ok " in lines[0]
    assert " answer qwen3:8b " in lines[1] and lines[1].endswith("'4'")


async def test_errors_are_logged(paths):
    with FakeOllama({"rules": [{"fault": "http_500"}]}) as server:
        async with LLMClient(LLMConfig(host=server.url, max_retries=0), paths=paths) as client:
            with pytest.raises(LLMServerError):
                await client.chat(ASK, purpose="plan")
    record = json.loads((paths.logs_dir / "llm_calls.jsonl").read_text())
    assert "HTTP 500" in record["error"] and record["purpose"] == "plan"


SCHEMA = {"type": "object", "properties": {"steps": {"type": "array"}}, "required": ["steps"]}


async def _session(client: LLMClient, when: str, monkeypatch) -> dict:
    monkeypatch.setenv(volatile.NOW_ENV, when)  # the prompt says what time it is, as the agent's prompts do
    ask = [{"role": "user", "content": f"Today is {volatile.now_text()}. Plan the analysis of sales.csv."}]
    plan = await client.structured(ask, purpose="plan", schema=SCHEMA)
    code = await client.chat(ask, purpose="code")
    answer = await client.stream_chat(ask, purpose="answer").text()
    again = await client.stream_chat(ask, purpose="answer").text()
    vectors = await client.embed(["sales by region", "penguins"])
    return {"plan": plan.value, "code": code.content, "answer": answer, "again": again, "vectors": vectors}


async def test_record_then_replay_with_the_server_stopped(paths, tmp_path, monkeypatch):
    cassette = tmp_path / "notebook.cassette.jsonl"
    script = {
        "rules": [
            {"purpose": "plan", "reply": '```json\n{"steps": [{"goal": "load"}]}\n```'},
            {"purpose": "code", "reply": "```python\ndf = pd.read_csv('sales.csv')\n```"},
            {"purpose": "answer", "reply": "Sales rose by 12 %.", "times": 1},
            {"purpose": "answer", "reply": "Second answer differs."},
        ]
    }
    with FakeOllama(script) as server:
        cfg = LLMConfig(host=server.url, cassette_mode="record", cassette_path=str(cassette))
        async with LLMClient(cfg, paths=paths) as client:
            live = await _session(client, "2026-11-21T09:15:02+00:00", monkeypatch)
    header, *entries = [json.loads(line) for line in cassette.read_text().splitlines()]
    assert header["llm_agent_cassette"] == 1 and "recorded from a live Ollama" in header["source"]
    assert header["models"] == ["nomic-embed-text", "qwen3:8b"]
    assert [e["purpose"] for e in entries] == ["plan", "code", "answer", "answer", "embed"]

    # The server is gone: replay needs no network. A different date still matches (the clock's text is volatile).
    cfg = LLMConfig(host="http://127.0.0.1:9", cassette_mode="replay", cassette_path=str(cassette))
    async with LLMClient(cfg, paths=paths) as client:
        replayed = await _session(client, "2027-01-03T18:00:00-08:00", monkeypatch)
    assert replayed == live
    assert live["answer"] != live["again"]  # repeated requests replay in recorded order


async def test_replay_miss_names_the_request(paths, tmp_path):
    cassette = tmp_path / "c.jsonl"
    with FakeOllama({"default": "hello"}) as server:
        cfg = LLMConfig(host=server.url, cassette_mode="record", cassette_path=str(cassette))
        async with LLMClient(cfg, paths=paths) as client:
            await client.chat([{"role": "user", "content": "hi"}], purpose="answer")
    cfg = LLMConfig(cassette_mode="replay", cassette_path=str(cassette))
    async with LLMClient(cfg, paths=paths) as client:
        with pytest.raises(CassetteMiss) as info:
            await client.chat([{"role": "user", "content": "a question never recorded"}], purpose="code")
    message = str(info.value)
    assert "purpose=code" in message and "a question never recorded" in message
    assert "record it again" in message and str(cassette) in message


def test_missing_or_broken_cassette_is_a_clear_error(paths, tmp_path):
    with pytest.raises(CassetteError, match="does not exist"):
        LLMClient(LLMConfig(cassette_mode="replay", cassette_path=str(tmp_path / "nope.jsonl")), paths=paths)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"llm_agent_cassette": 1}\n{"fingerprint": "ab", "resp')
    with pytest.raises(CassetteError, match="line 2 is not valid JSON"):
        LLMClient(LLMConfig(cassette_mode="replay", cassette_path=str(broken)), paths=paths)
    with pytest.raises(CassetteError, match="cassette_path"):
        LLMClient(LLMConfig(cassette_mode="record"), paths=paths)


def test_records_from_many_threads_all_arrive(tmp_path):
    import threading

    from llm_agent_magic.llm.calllog import CallLog, CallRecord

    log = CallLog(tmp_path, interval=0.01)

    def worker(n):
        for i in range(200):
            log.write(CallRecord(purpose="code", model="m", messages=[], response=f"{n}-{i}"))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    responses = {json.loads(line)["response"] for line in log.path.read_text().splitlines()}
    assert len(responses) == 800


def test_an_unwritable_log_does_not_break_calls(tmp_path, caplog):
    from llm_agent_magic.llm.calllog import CallLog, CallRecord

    blocker = tmp_path / "logs"
    blocker.write_text("a file where the log folder should be")
    log = CallLog(blocker)
    log.write(CallRecord(purpose="code", model="m", messages=[]))
    log.close()
    assert log.failed and "could not write the LLM call log" in caplog.text
