"""A second server on the same data root: sessions, history and variables are there; a cut-off run is interrupted."""

from __future__ import annotations

import json

import pytest
import tornado.httpclient
import tornado.httpserver
import tornado.testing
from conftest import CSV, receive, scenario, sid
from jupyter_server.serverapp import ServerApp

from llm_agent_magic.config import PathsConfig
from llm_agent_magic.store import ConversationStore

pytestmark = pytest.mark.slow  # real sandbox kernels
NOTEBOOK = "/home/me/work/restart.ipynb"


async def test_a_restarted_server_finds_history_and_variables_and_marks_the_cut_off_run(
    api, ws, ollama, data_root, jp_serverapp, jp_configurable_serverapp, jp_server_config, jp_base_url
):
    ollama.load(scenario("react_csv"))
    await api(f"/llm-agent/api/sessions/{sid(NOTEBOOK)}/files?name=sales.csv", method="POST", body=CSV)
    conn = await ws(NOTEBOOK)
    conn.write_message(json.dumps({"type": "run", "request": "Mean price in sales.csv?", "files": ["sales.csv"]}))
    first_run = (await receive(conn))[0]["run_id"]
    conn.close()
    await jp_serverapp._cleanup()  # the first server stops (its extension closes the sessions)
    # What a server killed in the middle of a run leaves behind: the run still "running" in the store.
    with ConversationStore.from_config(PathsConfig(data_root=str(data_root))) as store:
        cut_off = store.start_run(NOTEBOOK, "a request the old server never finished")
        store.append_event(cut_off, {"type": "run_started", "run_id": cut_off, "request": "x"})

    ServerApp.clear_instance()
    second = jp_configurable_serverapp(config=jp_server_config)
    sock, port = tornado.testing.bind_unused_port()
    server = tornado.httpserver.HTTPServer(second.web_app)
    server.add_sockets([sock])
    client = tornado.httpclient.AsyncHTTPClient()
    headers = {"Authorization": f"token {second.identity_provider.token}"}
    base = f"http://127.0.0.1:{port}{jp_base_url.rstrip('/')}/llm-agent/api"

    async def get(path: str) -> dict:
        response = await client.fetch(base + path, headers=headers, request_timeout=120)
        return json.loads(response.body)

    try:
        assert [s["id"] for s in (await get("/sessions"))["sessions"]] == [NOTEBOOK]
        history = (await get(f"/sessions/{sid(NOTEBOOK)}/messages"))["messages"]
        assert [m["role"] for m in history] == ["user", "assistant"] and "20.0" in history[1]["content"]
        old = await get(f"/runs/{first_run}/events")
        assert old["status"] == "ok" and old["events"][-1]["type"] == "run_finished" and not old["live"]
        interrupted = await get(f"/runs/{cut_off}/events")
        assert interrupted["status"] == "interrupted" and [e["seq"] for e in interrupted["events"]] == [1]
        # sales (a DataFrame) has a parquet snapshot; mean_price (numpy.float64) is never snapshotted.
        variables = {v["name"]: v for v in (await get(f"/sessions/{sid(NOTEBOOK)}/variables"))["variables"]}
        assert variables["sales"]["size"] == "3x2" and "dataframe" in variables["sales"]["snapshot"]
        preview = await get(f"/sessions/{sid(NOTEBOOK)}/variables/sales")
        assert [r["price"] for r in preview["rows"]] == [10, 30, 20] and preview["truncated"] is False
    finally:
        server.stop()
        await server.close_all_connections()
