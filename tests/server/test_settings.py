"""The Settings editor's choices (model, Ollama host, context) applied to the server's sessions, per its route."""

from __future__ import annotations

import json

from conftest import body, receive, slow_chat


async def run_chat(ws, session_id: str) -> list[dict]:
    conn = await ws(session_id)
    conn.write_message(json.dumps({"type": "run", "request": "Say hello."}))
    events = await receive(conn)
    conn.close()
    return events


async def test_the_users_settings_steer_the_next_run_of_every_session(api, ws, ollama, fake_ollama_factory):
    other = fake_ollama_factory(slow_chat("hello from the other Ollama", delay_ms=1))
    await run_chat(ws, "chat-1")  # a session already open takes the settings at its next run
    assert ollama.requests_for("answer")
    ollama.clear_requests()

    chosen = {"model": "llama3.2:3b", "host": other.url, "num_ctx": 4096, "history_messages": 3}
    reply = await api("/llm-agent/api/settings", method="PUT", body=chosen)
    assert reply.code == 200 and body(reply) == chosen
    events = await run_chat(ws, "chat-1")
    assert events[-1]["status"] == "ok"
    answers = other.requests_for("answer")
    assert answers and {r.model for r in answers} == {"llama3.2:3b"}
    assert all(r.body["options"]["num_ctx"] == 4096 for r in answers)
    assert not ollama.requests  # the server's own host is not asked any more
    assert body(await api("/llm-agent/api/settings"))["user"] == chosen
    assert body(await api("/llm-agent/api/models"))["default"] == "llama3.2:3b"

    # Emptied, each goes back to the server's configuration.
    reply = await api("/llm-agent/api/settings", method="PUT", body={"model": "", "host": "", "num_ctx": 0})
    assert body(reply)["host"] == ollama.url and body(reply)["model"] == "qwen3:8b"
    assert body(await api("/llm-agent/api/settings"))["user"] == {}


async def test_bad_settings_are_refused_with_what_to_send(api):
    unknown = await api("/llm-agent/api/settings", method="PUT", body={"temperature": 2})
    assert unknown.code == 400 and "model, host, num_ctx, history_messages" in body(unknown)["message"]
    wrong = await api("/llm-agent/api/settings", method="PUT", body={"num_ctx": "big"})
    assert wrong.code == 400 and "num_ctx is a positive whole number" in body(wrong)["message"]
