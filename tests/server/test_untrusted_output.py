"""A run that brings back a big hostile output does not hold the server: its event loop goes on serving."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading

import pytest
from conftest import body, receive

from llm_agent_magic.store import ConversationStore

pytestmark = pytest.mark.slow  # a real sandbox kernel
NOTEBOOK = "hostile.ipynb"
# What made the redactor's URL pattern quadratic: 54 s for this much, during which the server answered nothing.
HOSTILE = "'a-' * 60000 + ' ://@'"
SCRIPT = {
    "rules": [
        {
            "purpose": "react",
            "match_last": "Observation from python_coder",
            "reply": {"thought": "done", "action": "finish", "action_input": "printed"},
        },
        {"purpose": "react", "reply": {"thought": "print it", "action": "python_coder", "action_input": "print"}},
        {"purpose": "code", "reply": f"```python\nprint({HOSTILE})\nprint('password: postgres://ann:hunter22@db')\n```"},
        {"purpose": "verify", "reply": {"answers_question": True, "issues": ""}},
        {"purpose": "answer", "reply": "It printed the text."},
    ]
}


async def test_status_is_answered_while_a_run_stores_a_big_hostile_output(api, ws, ollama, monkeypatch, data_root):
    """The run's store thread redacts the output, then is held until ``/status`` has answered: the status
    needs the server's loop, and the loop must not wait for the redaction (it did, for 54 s, when the
    redactor backtracked while holding the interpreter)."""
    stored, release = threading.Event(), threading.Event()
    order: list[str] = []
    append_events = ConversationStore.append_events

    def held_append(self, run_id, events):
        events = list(events)
        numbers = append_events(self, run_id, events)  # redacts, then writes
        if any(e.get("type") == "cell_output" for e in events):
            stored.set()
            order.append("store released" if release.wait(60) else "store gave up waiting")
        return numbers

    monkeypatch.setattr(ConversationStore, "append_events", held_append)
    ollama.load(SCRIPT)
    conn = await ws(NOTEBOOK)
    conn.write_message(json.dumps({"type": "run", "request": "Print the text.", "mode": "react"}))
    for _ in range(1200):  # up to a minute for the sandbox kernel to start and run the code
        if stored.is_set():
            break
        await asyncio.sleep(0.05)
    assert stored.is_set(), "the run never stored its output"

    status = await api("/llm-agent/api/status")
    order.append("status answered")
    release.set()
    events = await receive(conn)
    conn.close()

    assert status.code == 200 and body(status)["running_runs"] == [events[0]["run_id"]]
    assert order == ["status answered", "store released"]
    assert events[-1]["type"] == "run_finished" and events[-1]["status"] == "ok"
    output = json.dumps(next(e for e in events if e["type"] == "cell_output")["outputs"])
    assert "a-a-a-" in output and " ://@" in output
    with sqlite3.connect(next(data_root.rglob("*.sqlite"))) as db:  # what is on disk: redacted
        on_disk = "\n".join(db.iterdump())
    assert "hunter22" not in on_disk and "postgres://ann:[REDACTED]@db" in on_disk and "a-a-a-" in on_disk
