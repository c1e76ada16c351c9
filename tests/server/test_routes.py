"""Every REST route, with and without the token; sessions, messages, export, runs, models, status, XSRF."""

from __future__ import annotations

import pytest
from conftest import body, sid

ROUTES = [
    ("GET", "/llm-agent/api/sessions"),
    ("POST", "/llm-agent/api/sessions"),
    ("GET", "/llm-agent/api/sessions/x"),
    ("PATCH", "/llm-agent/api/sessions/x"),
    ("DELETE", "/llm-agent/api/sessions/x"),
    ("GET", "/llm-agent/api/sessions/x/messages"),
    ("GET", "/llm-agent/api/sessions/x/export"),
    ("POST", "/llm-agent/api/sessions/x/files?name=a.csv"),
    ("GET", "/llm-agent/api/sessions/x/variables"),
    ("GET", "/llm-agent/api/sessions/x/variables/df"),
    ("GET", "/llm-agent/api/runs/r1/events"),
    ("GET", "/llm-agent/api/models"),
    ("GET", "/llm-agent/api/notebook-session?path=a.ipynb"),
    ("GET", "/llm-agent/api/status"),
    ("GET", "/llm-agent/api/settings"),
    ("PUT", "/llm-agent/api/settings"),
    ("GET", "/llm-agent/v1/models"),
    ("POST", "/llm-agent/v1/chat/completions"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_refuses_a_request_without_the_token(api, method, path, data_root):
    response = await api(path, method=method, body="{}" if method in ("POST", "PATCH", "PUT") else None, auth=False)
    assert response.code == 403, (method, path, response.code, response.body)
    assert not (data_root / "sessions" / "x").exists()


async def test_sessions_create_list_rename_messages_export_delete(api):
    notebook = "/home/me/work/analysis.ipynb"
    created = await api("/llm-agent/api/sessions", method="POST", body={"id": notebook, "title": "Analysis"})
    assert created.code == 201 and body(created)["id"] == notebook
    again = await api("/llm-agent/api/sessions", method="POST", body={"id": notebook})
    assert again.code == 200 and body(again)["title"] == "Analysis"
    listed = body(await api("/llm-agent/api/sessions"))["sessions"]
    assert [s["id"] for s in listed] == [notebook]

    renamed = await api(f"/llm-agent/api/sessions/{sid(notebook)}", method="PATCH", body={"title": "Sales"})
    assert renamed.code == 200 and body(renamed)["title"] == "Sales"
    one = body(await api(f"/llm-agent/api/sessions/{sid(notebook)}"))
    assert one["title"] == "Sales" and one["running"] is None

    messages = body(await api(f"/llm-agent/api/sessions/{sid(notebook)}/messages"))
    assert messages == {"session_id": notebook, "messages": []}
    export = await api(f"/llm-agent/api/sessions/{sid(notebook)}/export")
    assert export.code == 200 and export.headers["Content-Type"].startswith("text/markdown")
    assert "Sales" in export.body.decode()

    deleted = await api(f"/llm-agent/api/sessions/{sid(notebook)}", method="DELETE")
    assert deleted.code == 204
    assert body(await api("/llm-agent/api/sessions"))["sessions"] == []
    gone = await api(f"/llm-agent/api/sessions/{sid(notebook)}/messages")
    assert gone.code == 404 and "no session" in body(gone)["message"]


async def test_bad_bodies_get_messages_a_person_can_act_on(api):
    not_json = await api("/llm-agent/api/sessions", method="POST", body="{nope")
    assert not_json.code == 400 and "not valid JSON" in body(not_json)["message"]
    rename = await api("/llm-agent/api/sessions/x", method="PATCH", body={"name": "y"})
    assert rename.code == 400 and '"title"' in body(rename)["message"]
    limit = await api("/llm-agent/api/sessions/x/messages?limit=ten")
    assert limit.code == 400 and "whole number" in body(limit)["message"]
    run = await api("/llm-agent/api/runs/nope/events")
    assert run.code == 404 and "no run" in body(run)["message"]


async def test_a_notebook_path_gives_the_session_id_its_kernel_uses(api, jp_serverapp, jp_root_dir):
    """The id is $JPY_SESSION_NAME of the notebook's kernel, which Jupyter Server makes from the same path."""
    reply = body(await api("/llm-agent/api/notebook-session?path=work/sales%20data.ipynb"))
    kernel_env = jp_serverapp.session_manager.get_kernel_env("work/sales data.ipynb", "sales data.ipynb")
    assert reply["session_id"] == kernel_env["JPY_SESSION_NAME"] == str(jp_root_dir / "sales data.ipynb")
    assert reply["path"] == "work/sales data.ipynb"
    missing = await api("/llm-agent/api/notebook-session")
    assert missing.code == 400 and "?path=" in body(missing)["message"]


async def test_models_come_from_ollama(api, ollama):
    models = body(await api("/llm-agent/api/models"))
    assert "qwen3:8b" in models["models"] and models["host"] == ollama.url
    # The picker offers chat models only: the embedding model is listed apart.
    assert not any("embed" in m for m in models["models"]) and models["embedding_models"] == ["nomic-embed-text"]
    oai = body(await api("/llm-agent/v1/models"))
    assert oai["object"] == "list" and {"llm-agent", "qwen3:8b"} <= {m["id"] for m in oai["data"]}


async def test_models_say_where_ollama_was_looked_for_when_it_is_down(api, ollama):
    where = ollama.url
    ollama.stop()
    response = await api("/llm-agent/api/models")
    assert response.code == 502 and where.split("//")[1] in body(response)["message"]


async def test_status_shows_the_doctor_checks(api):
    status = body(await api("/llm-agent/api/status"))
    names = [c["name"] for c in status["checks"]]
    assert any("ollama" in n.lower() for n in names) and any("data root" in n.lower() for n in names)
    assert all(c["status"] in ("ok", "warn", "fail") for c in status["checks"])
    assert status["running_runs"] == []


async def test_bearer_token_is_accepted_as_openai_clients_send_it(api, token):
    response = await api("/llm-agent/v1/models", auth=False, headers={"Authorization": f"Bearer {token}"})
    assert response.code == 200
    wrong = await api("/llm-agent/v1/models", auth=False, headers={"Authorization": "Bearer not-the-token"})
    assert wrong.code == 403 and "error" in body(wrong)


async def test_a_cookie_session_needs_the_xsrf_token_to_change_state(api):
    login = await api("/llm-agent/api/sessions")  # token-authenticated: the server sets its login cookie
    login_cookie = next(c.split(";")[0] for c in login.headers.get_list("Set-Cookie") if c.startswith("username-"))
    reading = await api("/llm-agent/api/sessions", auth=False, headers={"Cookie": login_cookie})
    assert reading.code == 200  # reading with the cookie alone is fine
    xsrf = "0123456789abcdef"  # a double-submit token: the cookie and the header must agree
    refused = await api(
        "/llm-agent/api/sessions",
        method="POST",
        body={"id": "s"},
        auth=False,
        headers={"Cookie": f"{login_cookie}; _xsrf={xsrf}"},
    )
    assert refused.code == 403 and "_xsrf" in body(refused)["message"]
    assert (await api("/llm-agent/api/sessions/s", auth=False, headers={"Cookie": login_cookie})).code == 404
    accepted = await api(
        "/llm-agent/api/sessions",
        method="POST",
        body={"id": "s"},
        auth=False,
        headers={"Cookie": f"{login_cookie}; _xsrf={xsrf}", "X-XSRFToken": xsrf},
    )
    assert accepted.code == 201
