"""The session WebSocket: a streamed run with its cells, stop, reconnect, two sessions at once, bad messages."""

from __future__ import annotations

import json

import pytest
import tornado.httpclient
from conftest import CSV, body, receive, scenario, sid, slow_chat

pytestmark = pytest.mark.slow  # real sandbox kernels
NOTEBOOK = "/home/me/work/sales analysis.ipynb"


async def test_a_streamed_csv_run_with_its_cells_outputs_and_answer(api, ws, ollama, data_root):
    ollama.load(scenario("react_csv"))
    upload = await api(f"/llm-agent/api/sessions/{sid(NOTEBOOK)}/files?name=sales.csv", method="POST", body=CSV)
    assert upload.code == 201 and body(upload)["files"] == [{"name": "sales.csv", "bytes": len(CSV)}]

    conn = await ws(NOTEBOOK)
    conn.write_message(json.dumps({"type": "run", "request": "What is the mean price in sales.csv?", "files": ["sales.csv"]}))
    events = await receive(conn)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished" and events[-1]["status"] == "ok"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    run_id = events[0]["run_id"]
    assert {e["run_id"] for e in events} == {run_id}
    code = next(e for e in events if e["type"] == "code_cell")
    assert "pd.read_csv('sales.csv')" in code["source"]
    output = next(e for e in events if e["type"] == "cell_output")
    assert output["cell_id"] == code["cell_id"] and output["status"] == "ok"
    assert "mean price: 20.0" in json.dumps(output["outputs"])
    assert "**20.0**" in next(e for e in events if e["type"] == "answer")["markdown"]
    assert "".join(e["text"] for e in events if e["type"] == "token").strip()

    after = body(await api(f"/llm-agent/api/runs/{run_id}/events?after=2"))
    assert after["status"] == "ok" and [e["seq"] for e in after["events"]] == [e["seq"] for e in events[2:]]
    history = body(await api(f"/llm-agent/api/sessions/{sid(NOTEBOOK)}/messages"))["messages"]
    assert [m["role"] for m in history] == ["user", "assistant"] and "20.0" in history[1]["content"]
    assert "mean price" in (await api(f"/llm-agent/api/sessions/{sid(NOTEBOOK)}/export")).body.decode()

    names = {v["name"]: v for v in body(await api(f"/llm-agent/api/sessions/{sid(NOTEBOOK)}/variables"))["variables"]}
    assert {"sales", "mean_price"} <= set(names) and names["sales"]["size"] == "3x2"
    table = body(await api(f"/llm-agent/api/sessions/{sid(NOTEBOOK)}/variables/sales?rows=2"))
    assert table["columns"] == ["item", "price"] and table["rows"] == [{"item": "a", "price": 10}, {"item": "b", "price": 30}]
    assert table["truncated"] is True and "<table" in table["html"] and table["shape"] == [3, 2]
    missing = await api(f"/llm-agent/api/sessions/{sid(NOTEBOOK)}/variables/nothing_here")
    assert missing.code == 404 and "sales" in body(missing)["message"]
    conn.close()


async def test_a_busy_session_refuses_a_second_run_and_stop_cancels_the_first(ws, ollama):
    ollama.load(slow_chat(delay_ms=300))
    conn = await ws("stop-me")
    conn.write_message(json.dumps({"type": "run", "request": "Talk slowly."}))
    first = await receive(conn, until="token")
    conn.write_message(json.dumps({"type": "run", "request": "And another thing."}))
    busy = (await receive(conn, until="error"))[-1]
    assert "already running" in busy["message"] and first[0]["run_id"] in busy["message"]
    conn.write_message(json.dumps({"type": "stop"}))
    rest = await receive(conn)
    assert {"type": "stopping", "run_id": first[0]["run_id"]} in rest
    assert rest[-1]["status"] == "cancelled"


async def test_a_client_that_reconnects_gets_the_events_it_missed(api, ws, ollama):
    ollama.load(slow_chat(delay_ms=100))
    conn = await ws("reconnect")
    conn.write_message(json.dumps({"type": "run", "request": "Count to ten."}))
    seen = await receive(conn, until="token")
    conn.close()  # the run goes on without a client
    run_id, last = seen[0]["run_id"], seen[-1]["seq"]
    again = await ws("reconnect", run_id=run_id, after=last)
    rest = await receive(again)
    assert [e["seq"] for e in rest] == list(range(last + 1, last + 1 + len(rest)))
    assert rest[-1]["status"] == "ok"
    tokens = "".join(e["text"] for e in seen + rest if e["type"] == "token")
    answer = next(e["markdown"] for e in rest if e["type"] == "answer")
    assert tokens.split() == answer.split() == "one two three four five six seven eight nine ten".split()
    stored = body(await api(f"/llm-agent/api/runs/{run_id}/events"))["events"]
    assert [e["seq"] for e in stored] == list(range(1, len(seen) + len(rest) + 1))

    explicit = await ws("reconnect")  # the same through a resume message
    explicit.write_message(json.dumps({"type": "resume", "run_id": run_id, "after": len(stored) - 1}))
    assert [e["type"] for e in await receive(explicit)] == ["run_finished"]


async def test_two_sessions_run_at_once(ws, ollama):
    ollama.load(slow_chat(delay_ms=200))
    a, b = await ws("first"), await ws("second")
    a.write_message(json.dumps({"type": "run", "request": "Talk."}))
    b.write_message(json.dumps({"type": "run", "request": "Talk too."}))
    a_events, b_events = await receive(a), await receive(b)
    assert a_events[-1]["status"] == b_events[-1]["status"] == "ok"
    assert a_events[0]["run_id"] != b_events[0]["run_id"]
    a_tokens = [e["ts"] for e in a_events if e["type"] == "token"]
    b_tokens = [e["ts"] for e in b_events if e["type"] == "token"]
    # the server streamed both at once: each run's tokens were emitted while the other one's were
    assert b_tokens[0] < a_tokens[-1] and a_tokens[0] < b_tokens[-1]


async def test_bad_messages_get_an_error_and_the_socket_stays_open(ws, ollama):
    conn = await ws("bad")
    for message, says in [
        ("not json", "not valid JSON"),
        ('{"type": "dance"}', "Unknown request type"),
        ('{"type": "run", "request": ""}', "request is empty"),
        ('{"type": "run", "request": "x", "mode": "fast"}', "Unknown mode"),
        ('{"type": "run", "request": "x", "files": ["../etc/passwd"]}', "holds a folder"),
        ('{"type": "run", "request": "x", "files": ["never.csv"]}', "upload it first"),
        ('{"type": "stop"}', "nothing to stop"),
        ('{"type": "resume", "run_id": "nope"}', "no run"),
        ('{"type": "approval", "run_id": "r", "cell_id": "c"}', "not waiting for an approval"),
    ]:
        conn.write_message(message)
        reply = json.loads(await conn.read_message())
        assert reply["type"] == "error" and says in reply["message"], (message, reply)
    ollama.load(scenario("route_chat"))
    conn.write_message(json.dumps({"type": "run", "request": "What is a p-value?", "mode": "chat"}))
    assert "p-value" in next(e for e in await receive(conn) if e["type"] == "answer")["markdown"]


async def test_the_websocket_refuses_a_client_without_the_token(ws):
    with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
        await ws("anyone", auth=False)
    assert refused.value.code == 403
