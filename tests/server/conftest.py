"""A real Jupyter server with the extension, a scripted Ollama per test and the data root in a tmp folder."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from pathlib import Path

import pytest
import tornado.httpclient
import tornado.websocket

# pytest_jupyter's fixtures (jp_serverapp, jp_server_config, http_server_client, ...) for these tests only:
# pytest refuses `pytest_plugins` outside the root conftest, and loaded for the whole suite its autouse
# fixtures would start and clean up a Jupyter server around every test.
from pytest_jupyter.jupyter_server import *  # noqa: F403

SCENARIOS = Path(__file__).parent.parent / "scenarios"
CSV = b"item,price\na,10\nb,30\nc,20\n"  # mean price 20.0, as the react_csv scenario expects


def sid(session_id: str) -> str:
    """A session id (a notebook path, with '/') as one URL path segment."""
    return urllib.parse.quote(session_id, safe="")


def scenario(name: str) -> dict:
    return json.loads((SCENARIOS / f"{name}.json").read_text())


def slow_chat(reply: str = "one two three four five six seven eight nine ten", delay_ms: int = 150) -> dict:
    """A chat answer streamed a token at a time, slowly enough to stop or reconnect in the middle."""
    return {
        "rules": [
            {"purpose": "classify", "reply": {"mode": "chat", "reason": "talk"}},
            {"purpose": "answer", "reply": reply, "token_delay_ms": delay_ms},
        ]
    }


@pytest.fixture
async def jp_asyncio_loop():
    """The server runs on the loop pytest-asyncio runs the test on (pytest-jupyter would make another)."""
    return asyncio.get_running_loop()


@pytest.fixture
def ollama(fake_ollama_factory):
    """The scripted Ollama of this test; ``ollama.load(script)`` gives it another script."""
    return fake_ollama_factory(scenario("route_chat"))


@pytest.fixture
def data_root(tmp_path):
    return tmp_path / "agent-data"


@pytest.fixture
def jp_server_config(ollama, data_root):
    return {
        "ServerApp": {"jpserver_extensions": {"llm_agent_magic.server": True}},
        "LLMConfig": {"host": ollama.url, "max_retries": 0, "retry_backoff": 0.01},
        "PathsConfig": {"data_root": str(data_root)},
        "SandboxConfig": {"execution_timeout": 60},
        "LLMAgentExtension": {"max_upload_mb": 0.01},
    }


@pytest.fixture
def token(jp_serverapp) -> str:
    return jp_serverapp.identity_provider.token


@pytest.fixture
def server_url(jp_serverapp, http_server, jp_http_port, jp_base_url) -> str:
    return f"http://127.0.0.1:{jp_http_port}{jp_base_url.rstrip('/')}"


@pytest.fixture
def api(jp_serverapp, http_server_client, jp_base_url, token):
    """``api(path, method=..., body=..., auth=True)``: a request to ``/llm-agent/...``, errors returned, not raised."""

    def fetch(path: str, *, method: str = "GET", body=None, headers=None, auth: bool = True, **kwargs):
        all_headers = {"Authorization": f"token {token}"} if auth else {}
        all_headers.update(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        return http_server_client.fetch(
            jp_base_url.rstrip("/") + path,
            method=method,
            body=body,
            headers=all_headers,
            raise_error=False,
            request_timeout=120,
            allow_nonstandard_methods=True,
            **kwargs,
        )

    return fetch


@pytest.fixture
def ws(jp_serverapp, http_server, jp_http_port, jp_base_url, token):
    """``await ws(session_id, auth=True, **query)``: the session's WebSocket."""

    def connect(session_id: str, *, auth: bool = True, **query):
        url = f"ws://localhost:{jp_http_port}{jp_base_url.rstrip('/')}/llm-agent/api/sessions/{sid(session_id)}/ws"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {"Authorization": f"token {token}"} if auth else {}
        return tornado.websocket.websocket_connect(tornado.httpclient.HTTPRequest(url, headers=headers))

    return connect


async def receive(conn, until: str = "run_finished", limit: int = 500) -> list[dict]:
    """Messages from a WebSocket up to and including the first of type ``until``."""
    got = []
    for _ in range(limit):
        raw = await conn.read_message()
        assert raw is not None, f"the socket closed after {[m['type'] for m in got]}"
        got.append(json.loads(raw))
        if got[-1]["type"] == until:
            return got
    raise AssertionError(f"no {until} in {limit} messages")


def body(response) -> dict:
    return json.loads(response.body)
