"""A run request's context (issue 22) over the WebSocket: it reaches the prompt, the notebook's folder is listed
from the server's root, and a malformed context is an error message saying what to send."""

from __future__ import annotations

import json

import pytest
from conftest import receive, slow_chat

pytestmark = pytest.mark.slow


async def test_a_context_in_the_run_request_reaches_the_prompt(ws, ollama, jp_root_dir):
    (jp_root_dir / "work").mkdir()
    (jp_root_dir / "work" / "sales.csv").write_text("region,amount\nnorth,1\n")
    (jp_root_dir / "secret.csv").write_text("x\n")
    ollama.load(slow_chat("ok", delay_ms=0))
    conn = await ws("with-context")
    context = {"cells": [{"source": "df = load()", "kind": "code", "outputs": "", "error": ""},
                         {"source": "df.plot()", "error": "NameError: name 'load' is not defined"}],
               "active": 1, "selection": "df.plot", "variables": [{"name": "df", "type": "DataFrame",
                                                                  "columns": [["region", "object"]]}]}
    conn.write_message(json.dumps({"type": "run", "request": "Why does it fail?", "mode": "chat",
                                   "notebook_path": "work/analysis.ipynb", "context": context}))
    events = await receive(conn)
    gathered = next(e for e in events if e["type"] == "context_gathered")
    assert gathered["summary"] == "Context: 2 cells, 1 file, 1 variable" and gathered["file_names"] == ["sales.csv"]
    prompt = ollama.requests[-1].text
    assert "NameError: name 'load' is not defined" in prompt and "- df: DataFrame; columns: region (object)" in prompt
    assert "- sales.csv (" in prompt and "secret.csv" not in prompt  # the notebook's folder only
    conn.write_message(json.dumps({"type": "run", "request": "Again", "mode": "chat",
                                   "notebook_path": "../../etc/x.ipynb", "context": {}}))
    events = await receive(conn)
    assert not [e for e in events if e["type"] == "context_gathered"]  # a path out of the root lists nothing
    conn.close()


async def test_a_malformed_context_is_refused_with_what_to_send(ws, ollama):
    conn = await ws("bad-context")
    for context, said in [({"cells": [{"source": ["a"]}]}, "context.cells[0].source must be a string"),
                          ({"cells": [{}] * 5000}, "send at most 2,000"),
                          ("cells", "context must be a JSON object")]:
        conn.write_message(json.dumps({"type": "run", "request": "hi", "context": context}))
        (error,) = await receive(conn, until="error")
        assert error["type"] == "error" and said in error["message"]
    conn.close()
