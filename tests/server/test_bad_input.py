"""Malformed numbers, JSON and paths from a client get a 400 that says what is expected, never a 500."""

from __future__ import annotations

import json
import os
import urllib.parse

import pytest
import tornado.httpclient
import tornado.websocket
from conftest import body

from llm_agent_magic.config import PathsConfig
from llm_agent_magic.sandbox.paths import SessionPaths

DEEP = b"[" * 100_000 + b"]" * 100_000
CHAT = "/llm-agent/v1/chat/completions"


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


@pytest.mark.parametrize(
    ("path", "says"),
    [
        (f"/llm-agent/api/sessions/x/messages?limit={q('²')}", "limit must be a whole number from 0 to"),
        (f"/llm-agent/api/sessions/x/messages?limit={q('10**30')}", "not '10**30'"),
        ("/llm-agent/api/sessions/x/messages?limit=" + "9" * 30, "limit must be a whole number"),
        ("/llm-agent/api/sessions/x/messages?limit=" + "1" * 5000, "limit must be a whole number"),
        ("/llm-agent/api/runs/r/events?after=-1", "after must be a whole number from 0 to"),
        ("/llm-agent/api/runs/r/events?after=abc", "(the last seq you received), not 'abc'"),
        (f"/llm-agent/api/runs/r/events?after={q('٣')}", "after must be a whole number"),
        (f"/llm-agent/api/sessions/x/variables/df?rows={q('²')}", "rows must be a whole number"),
        ("/llm-agent/api/sessions/x/variables/df?rows=1_000", "rows must be a whole number"),
        ("/llm-agent/api/sessions/x/messages?limit=%FF", "Invalid unicode"),
        ("/llm-agent/api/notebook-session?path=%FF.ipynb", "Invalid unicode"),
    ],
)
async def test_malformed_query_numbers_get_400(api, path, says):
    response = await api(path)
    assert response.code == 400, (path, response.code, response.body[:300])
    assert says in body(response)["message"]


async def test_a_limit_in_range_still_works(api):
    await api("/llm-agent/api/sessions", method="POST", body={"id": "x"})
    assert body(await api("/llm-agent/api/sessions/x/messages?limit=5"))["messages"] == []
    assert body(await api("/llm-agent/api/sessions/x/messages?limit=" + "9" * 15))["messages"] == []


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (DEEP, "more than 64 levels deep"),
        (b'{"a":' * 100 + b"1" + b"}" * 100, "more than 64 levels deep"),
        (b"[1, 2]", "must be a JSON object ({...}), not list"),
        (b'"text"', "must be a JSON object ({...}), not str"),
        (b"null", "must be a JSON object ({...}), not null"),
        (b'{"id": "\xff\xfe"}', "not valid UTF-8"),
        (b"{nope", "not valid JSON"),
    ],
)
async def test_bad_json_bodies_get_400(api, raw, says):
    for path, method in [
        ("/llm-agent/api/sessions", "POST"),
        ("/llm-agent/api/sessions/x", "PATCH"),
        ("/llm-agent/api/collections/c/learn", "POST"),
    ]:
        response = await api(path, method=method, body=raw)
        assert response.code == 400, (path, response.code, response.body[:300])
        assert says in body(response)["message"]
    chat = await api(CHAT, method="POST", body=raw)
    assert chat.code == 400 and says in body(chat)["error"]["message"]
    assert body(chat)["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}, "The request is empty"),
        ({"messages": [{"role": "user", "content": "hi"}], "model": {"name": "x"}}, "model must be a model name"),
        ({"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}, "stream must be true or false"),
        ({"messages": [{"role": "user", "content": "hi"}], "agent_type": ["chat"]}, "Unknown agent_type"),
    ],
)
async def test_malformed_chat_completion_fields_get_400(api, fields, says):
    response = await api(CHAT, method="POST", body=fields)
    assert response.code == 400, response.body[:300]
    assert says in body(response)["error"]["message"]


async def test_malformed_socket_messages_get_an_error_and_the_socket_stays_open(ws):
    conn = await ws("bad-messages")
    for message, says in [
        (DEEP, "more than 64 levels deep"),
        (b'{"type": "resume", "run_id": "r", "after": "\xc2\xb2"}', "after must be a whole number"),
        (b'{"type": "stop", "run_id": "\xff"}', "not valid UTF-8"),
        (json.dumps({"type": "resume", "run_id": "r", "after": 1.5}), "after must be a whole number"),
        (json.dumps({"type": "resume", "run_id": "r", "after": True}), "not true"),
        (json.dumps({"type": "resume", "run_id": ["r"]}), "A resume's run_id is the id"),
        (json.dumps({"type": "stop", "run_id": ["r"]}), "A stop names the run_id"),
        (json.dumps({"type": "run", "request": "x", "mode": ["chat"]}), "Unknown mode"),
        (json.dumps({"type": "run", "request": "x", "origin": 5}), "origin must be strings"),
        (json.dumps({"type": "approval", "run_id": "r", "cell_id": "c", "action": {}}), "Unknown approval action"),
    ]:
        conn.write_message(message, binary=isinstance(message, bytes) and message is not DEEP)
        reply = await conn.read_message()
        assert reply is not None, f"the socket closed after {message[:60]!r}"
        reply = json.loads(reply)
        assert reply["type"] == "error" and says in reply["message"], (message[:60], reply)


async def test_a_resume_in_the_query_string_is_read_as_strictly(ws):
    conn = await ws("bad-query", run_id="r", after="²")
    reply = json.loads(await conn.read_message())
    assert reply["type"] == "error" and "after must be a whole number" in reply["message"]
    conn.write_message(json.dumps({"type": "stop"}))  # the socket stays open
    assert "nothing to stop" in json.loads(await conn.read_message())["message"]


async def test_a_query_string_that_is_not_utf8_gets_an_error_on_the_socket(ws, jp_http_port, jp_base_url, token):
    url = f"ws://localhost:{jp_http_port}{jp_base_url.rstrip('/')}/llm-agent/api/sessions/x/ws?run_id=%FF"
    conn = await tornado.websocket.websocket_connect(
        tornado.httpclient.HTTPRequest(url, headers={"Authorization": f"token {token}"})
    )
    reply = await conn.read_message()
    assert reply is not None, "the socket closed"
    assert "The query string cannot be read" in json.loads(reply)["message"]


async def test_notebook_session_paths_stay_under_the_server_root(api, jp_root_dir, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.ipynb").write_text("{}")
    os.symlink(outside, jp_root_dir / "link")
    for path, says in [
        ("../../etc/passwd", "holds '..'"),
        ("work/../../x.ipynb", "holds '..'"),
        ("/etc/passwd", "outside the server's root folder"),
        (str(outside / "secret.ipynb"), "outside the server's root folder"),
        ("link/secret.ipynb", "outside the server's root folder"),
    ]:
        response = await api(f"/llm-agent/api/notebook-session?path={q(path)}")
        assert response.code == 400, (path, response.code, response.body[:300])
        assert says in body(response)["message"] and "?path=work/sales.ipynb" in body(response)["message"]
    inside = body(await api(f"/llm-agent/api/notebook-session?path={q(str(jp_root_dir / 'nb.ipynb'))}"))
    assert inside == {"path": "nb.ipynb", "session_id": str(jp_root_dir / "nb.ipynb")}


async def test_a_nul_in_a_path_to_learn_or_forget_gets_400(api):
    for route in ("learn", "forget"):
        response = await api(f"/llm-agent/api/collections/c/{route}", method="POST", body={"paths": ["docs\u0000x"]})
        assert response.code == 400, response.body[:300]
        assert "a list of paths relative to the server's root folder" in body(response)["message"]


async def test_snapshots_the_sandbox_nested_100k_deep_get_an_answer_not_a_500(api, data_root):
    """The sandbox writes the snapshots: a catalog or a value nested deeper than Python's stack is refused."""
    snapshots = SessionPaths.for_session("deep", PathsConfig(data_root=str(data_root))).snapshots
    snapshots.mkdir(parents=True)
    (snapshots / "catalog.json").write_bytes(DEEP)
    missing = await api("/llm-agent/api/sessions/deep/variables/deep")
    assert missing.code == 404, missing.body[:300]
    assert "it nests too deeply to be a catalog" in body(missing)["message"]
    assert (snapshots / "catalog.json.corrupt-1").read_bytes() == DEEP  # set aside, as a catalog that is not JSON

    catalog = {
        "version": 1,
        "not_persisted": {},
        "variables": {"deep": {"name": "deep", "kind": "json", "file": "deep.value.json"}},
    }
    (snapshots / "catalog.json").write_text(json.dumps(catalog))
    (snapshots / "deep.value.json").write_bytes(DEEP)
    value = await api("/llm-agent/api/sessions/deep/variables/deep")
    assert value.code == 404, value.body[:300]
    assert "Its snapshot was refused" in body(value)["message"]
    assert "nests lists and objects too deeply to be read back" in body(value)["message"]
