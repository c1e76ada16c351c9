"""What crosses back from the sandbox and what goes out to the model, seen through ``llm-agent run``.

Hostile generated code displays HTML and script; the user's environment holds secrets. Neither may reach
the notebook (as something JupyterLab would run) or the model and the store (as text).
"""

from __future__ import annotations

import json
from html import escape

import nbformat
import pytest
from agent_helpers import coder_script
from batch_helpers import read, run_cli, write_notebook
from html_checks import active_html, active_parts
from nbformat.sign import NotebookNotary

from llm_agent_magic.cells import render_html
from llm_agent_magic.testing.fake_ollama import FakeOllama

pytestmark = pytest.mark.slow


def html_text(text: str) -> str:
    return escape(text, quote=False)


ATTACK = '<img src=x onerror="alert(1)"><script>fetch("/api/kernels")</script>'
HOSTILE_CODE = (
    "from IPython.display import HTML, Javascript, display\n"
    f"display(HTML('<table><tr><td><b>kept</b></td></tr></table>' + {ATTACK!r}))\n"
    'display(Javascript(\'fetch("/api/kernels", {method: "POST"})\'))\n'
    "display({'application/vnd.jupyter.widget-view+json': {'model_id': 'm', 'version_major': 2, 'version_minor': 0},\n"
    "         'text/plain': 'a widget'}, raw=True)\n"
    "print('displayed')\n"
)


def test_html_and_scripts_from_the_sandbox_never_reach_the_notebook(folder, data_root, tmp_path):
    write_notebook(folder / "hostile.ipynb", "%load_ext llm_agent_magic", "%%agent\nShow me the table.")
    # The model was talked into echoing the markup in its answer too.
    with FakeOllama(coder_script(HOSTILE_CODE, f"Here it is: {ATTACK} **done**")) as server:
        out = run_cli("hostile.ipynb", cwd=folder, host=server.url, data_root=data_root)
    assert out.returncode == 0, out.stderr
    nb = read(folder / "hostile.out.ipynb")
    agent_cell, generated = nb.cells[1], nb.cells[2]
    assert generated.metadata.llm_agent["materialized_by"] == "llm-agent run"
    assert [o.get("text") for o in generated.outputs if o.output_type == "stream"] == ["displayed\n"]

    # Everything the %%agent cell shows (answer markdown, the line left of its cells output) and every output
    # of the materialized cell: no script, no handler, no active MIME type.
    assert active_parts(agent_cell.outputs + generated.outputs) == []
    html = generated.outputs[0].data["text/html"]
    assert "<table>" in html and "<b>kept</b>" in html  # tables and formatting stay
    assert generated.outputs[2].data == {"text/plain": "a widget"}
    # The model's answer: its markup shown as text, in HTML rendered and sanitized before the notebook saw it.
    assert agent_cell.outputs[0].data == {
        "text/html": f"<p>Here it is: {html_text(ATTACK)} <strong>done</strong></p>\n",
        "text/plain": f"Here it is: {ATTACK} **done**",
    }
    assert agent_cell.outputs[1].data == {"text/plain": "llm-agent: 1 generated cell; run ok"}
    # The rendering of the same cell that %%agent shows in a live notebook (before the cells are real)
    rendering = render_html({"cells": [dict(generated)]})
    assert "<b>kept</b>" in rendering and active_html(rendering) == []

    # The written notebook is not signed, and its generated cells are not trusted: JupyterLab sanitizes them
    # again until the user runs them.
    notary = NotebookNotary(db_file=":memory:", secret=b"the notary of a fresh Jupyter")
    assert not notary.check_signature(nb)
    assert "trusted" not in generated.metadata
    assert not notary.check_cells(nbformat.from_dict(json.loads(json.dumps(nb))))


def test_secrets_of_the_users_environment_never_reach_the_model_or_the_store(folder, data_root, monkeypatch):
    password, token, key = "hunter2-Secret", "tok-9f8e7d6c5b4a", "s3cr3t-mysql"
    monkeypatch.setenv("DATABASE_URL", f"postgres://app:{password}@db.internal/prod")
    monkeypatch.setenv("BILLING_SERVICE_TOKEN", token)
    monkeypatch.setenv("MYSQL_PWD", key)
    request = (
        f"%%agent --mode chat\nWhy does postgres://app:{password}@db.internal/prod refuse me? I also "
        f"tried the token {token} and {key}, and a Bearer abcdefghijklmnop header."
    )
    write_notebook(folder / "secrets.ipynb", "%load_ext llm_agent_magic", request)
    with FakeOllama({"rules": [{"purpose": "answer", "reply": "Check the password."}]}) as server:
        out = run_cli("secrets.ipynb", cwd=folder, host=server.url, data_root=data_root)
        sent = json.dumps([r.body for r in server.requests])
    assert out.returncode == 0, out.stderr
    assert ("Why does [REDACTED] refuse me? I also tried the token [REDACTED] and [REDACTED], and a [REDACTED] header.") in sent
    stored = [p for p in data_root.rglob("*") if p.is_file() and "sessions" not in p.parts]
    assert {"store.sqlite", "llm_calls.jsonl"} <= {p.name for p in stored}
    kept = b"".join(p.read_bytes() for p in stored)  # the store (with its write-ahead log) and the call log
    assert b"refuse me? I also tried the token [REDACTED]" in kept
    for secret in (password, token, key, "abcdefghijklmnop"):
        assert secret not in sent, secret
        assert secret.encode() not in kept, secret
