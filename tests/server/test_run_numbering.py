"""A run's events carry the same ``seq`` live (the WebSocket, from memory) and read back from the store (REST
``events?after=N``, a socket's resume): "the events of run R after N" mean the same events wherever they come from."""

from __future__ import annotations

import json

import pytest
from conftest import body, receive, slow_chat

pytestmark = pytest.mark.slow  # real sandbox kernels


@pytest.fixture
def jp_server_config(jp_server_config):
    """No finished run kept in memory: a run the session has left behind is read from the store."""
    return {**jp_server_config, "LLMAgentExtension": {**jp_server_config["LLMAgentExtension"], "keep_runs": 0}}


async def test_a_runs_events_have_the_same_seq_live_and_from_the_store(api, ws, ollama):
    ollama.load(slow_chat(delay_ms=150))  # tokens far enough apart for the store to keep the answer in several parts
    conn = await ws("numbered")
    conn.write_message(json.dumps({"type": "run", "request": "Count to ten."}))
    live = await receive(conn)
    run_id = live[0]["run_id"]
    assert [e["seq"] for e in live] == list(range(1, len(live) + 1)) and live[-1]["status"] == "ok"
    conn.write_message(json.dumps({"type": "run", "request": "Again."}))  # the first run leaves the server's memory
    assert (await receive(conn))[-1]["status"] == "ok"

    stored = body(await api(f"/llm-agent/api/runs/{run_id}/events"))
    kinds = {e["type"] for e in stored["events"]}
    assert stored["live"] is False and "token" not in kinds and "answer_part" in kinds  # the store's form of the run
    seqs = [e["seq"] for e in stored["events"]]
    assert seqs == sorted(set(seqs))  # in order, each number once
    by_seq = {e["seq"]: e for e in live}
    events = [e for e in stored["events"] if e["type"] != "answer_part"]
    assert [e["seq"] for e in events] == [e["seq"] for e in live if e["type"] != "token"]
    assert all((e["type"], e["ts"]) == (by_seq[e["seq"]]["type"], by_seq[e["seq"]]["ts"]) for e in events)

    # Each part of the streamed answer is numbered as the last token it holds whole: the parts up to N hold the text
    # of the tokens up to N.
    parts = [e for e in stored["events"] if e["type"] == "answer_part"]
    assert len(parts) > 1 and all(by_seq[p["seq"]]["type"] == "token" for p in parts)
    for part in parts:
        held = "".join(p["text"] for p in parts if p["seq"] <= part["seq"])
        streamed = "".join(e["text"] for e in live if e["type"] == "token" and e["seq"] <= part["seq"])
        assert held.startswith(streamed), (part, held, streamed)
    assert "".join(p["text"] for p in parts) == "".join(e["text"] for e in live if e["type"] == "token")

    # "After N" from the store: the same events as live after N (a token's number, in the middle of the answer).
    middle = [e["seq"] for e in live if e["type"] == "token"][4]
    after = body(await api(f"/llm-agent/api/runs/{run_id}/events?after={middle}"))["events"]
    assert all(e["seq"] > middle for e in after)
    assert [e["seq"] for e in after if e["type"] != "answer_part"] == [
        e["seq"] for e in live if e["seq"] > middle and e["type"] != "token"
    ]
    resumed = await ws("numbered", run_id=run_id, after=middle)  # a socket's resume reads the same
    replay = await receive(resumed, until="replayed")
    assert [e["seq"] for e in replay[:-1]] == [e["seq"] for e in after]
    assert replay[-1] == {"type": "replayed", "run_id": run_id, "status": "ok", "last_seq": live[-1]["seq"]}
