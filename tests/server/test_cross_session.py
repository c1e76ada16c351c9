"""A session's WebSocket addresses the runs of its own session only: stop, approval and resume of another
session's run are refused, and that run goes on."""

from __future__ import annotations

import json

import pytest
from conftest import receive, slow_chat

from llm_agent_magic.config import PathsConfig
from llm_agent_magic.store import ConversationStore

pytestmark = pytest.mark.slow  # real sandbox kernels


async def test_a_socket_cannot_stop_another_sessions_run(ws, ollama):
    ollama.load(slow_chat(delay_ms=200))
    owner, stranger = await ws("owner"), await ws("stranger")
    owner.write_message(json.dumps({"type": "run", "request": "Talk slowly."}))
    started = await receive(owner, until="token")
    run_id = started[0]["run_id"]

    stranger.write_message(json.dumps({"type": "stop", "run_id": run_id}))
    refused = json.loads(await stranger.read_message())
    assert refused["type"] == "error" and refused["request"] == "stop"
    assert f"Run {run_id!r} belongs to another session; stop it on that session's socket." == refused["message"]
    stranger.write_message(json.dumps({"type": "stop"}))  # its own session runs nothing
    assert "nothing to stop" in json.loads(await stranger.read_message())["message"]

    rest = await receive(owner)
    assert not [m for m in rest if m["type"] == "stopping"]
    assert rest[-1]["status"] == "ok"  # the owner's run was not cancelled
    answer = next(m["markdown"] for m in rest if m["type"] == "answer")
    assert answer.split() == "one two three four five six seven eight nine ten".split()


async def test_a_socket_cannot_replay_another_sessions_stored_run(ws, data_root, ollama):
    # A run of an earlier server: only in the store, not in this server's memory.
    with ConversationStore.from_config(PathsConfig(data_root=str(data_root))) as store:
        store.ensure_session("owner")
        run_id = store.start_run("owner", "what is the secret?")
        store.append_event(run_id, {"type": "run_started", "run_id": run_id, "request": "what is the secret?"})
        store.append_event(run_id, {"type": "answer", "run_id": run_id, "markdown": "the owner's answer"})
        store.finish_run(run_id, "ok")

    stranger = await ws("stranger")
    stranger.write_message(json.dumps({"type": "resume", "run_id": run_id, "after": 0}))
    refused = json.loads(await stranger.read_message())
    assert refused == {
        "type": "error",
        "request": "resume",
        "message": f"Run {run_id!r} belongs to another session; follow it on that session's socket.",
    }
    by_query = await ws("stranger", run_id=run_id, after=0)  # the same through the query string
    assert "belongs to another session" in json.loads(await by_query.read_message())["message"]

    owner = await ws("owner", run_id=run_id)
    replay = await receive(owner, until="replayed")
    assert [m["type"] for m in replay] == ["run_started", "answer", "replayed"]
    assert replay[-1] == {"type": "replayed", "run_id": run_id, "status": "ok", "last_seq": 2}
