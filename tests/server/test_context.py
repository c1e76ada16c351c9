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
    context = {
        "cells": [
            {"source": "df = load()", "kind": "code", "outputs": "", "error": ""},
            {"source": "df.plot()", "error": "NameError: name 'load' is not defined"},
        ],
        "active": 1,
        "selection": "df.plot",
        "variables": [{"name": "df", "type": "DataFrame", "columns": [["region", "object"]]}],
    }
    conn.write_message(
        json.dumps(
            {
                "type": "run",
                "request": "Why does it fail?",
                "mode": "chat",
                "notebook_path": "work/analysis.ipynb",
                "context": context,
            }
        )
    )
    events = await receive(conn)
    gathered = next(e for e in events if e["type"] == "context_gathered")
    assert gathered["summary"] == "Context: 2 cells, 1 file, 1 variable" and gathered["file_names"] == ["sales.csv"]
    prompt = ollama.requests[-1].text
    assert "NameError: name 'load' is not defined" in prompt and "- df: DataFrame; columns: region (object)" in prompt
    assert "- sales.csv (" in prompt and "secret.csv" not in prompt  # the notebook's folder only
    conn.write_message(
        json.dumps({"type": "run", "request": "Again", "mode": "chat", "notebook_path": "../../etc/x.ipynb", "context": {}})
    )
    events = await receive(conn)
    assert not [e for e in events if e["type"] == "context_gathered"]  # a path out of the root lists nothing
    conn.close()


async def test_a_malformed_context_is_refused_with_what_to_send(ws, ollama):
    conn = await ws("bad-context")
    for context, said in [
        ({"cells": [{"source": ["a"]}]}, "context.cells[0].source must be a string"),
        ({"cells": [{}] * 5000}, "send at most 2,000"),
        ("cells", "context must be a JSON object"),
    ]:
        conn.write_message(json.dumps({"type": "run", "request": "hi", "context": context}))
        (error,) = await receive(conn, until="error")
        assert error["type"] == "error" and said in error["message"]
    conn.close()


FIXED = "import pandas as pd\nsales = pd.read_csv('sales.csv')\ntotals = sales.sum()"
FIX_ANSWER = f"```python\n{FIXED}\n```\n\n`sales` was never loaded: read it first."


async def test_fix_with_agent_asks_about_the_cell_and_proposes_a_replacement(ws, ollama, jp_root_dir):
    ollama.load({"rules": [{"purpose": "answer", "reply": FIX_ANSWER}]})
    conn = await ws("fix-a-cell")
    source = "totals = sales.sum()"
    context = {
        "variables": [
            {"name": "sales_df", "type": "DataFrame"},
            {"name": "sales", "type": "int"},
            {"name": "unrelated", "type": "str"},
        ]
    }
    conn.write_message(
        json.dumps(
            {
                "type": "fix",
                "source": source,
                "number": 3,
                "notebook_path": "a.ipynb",
                "error": "NameError: name 'sales' is not defined",
                "context": context,
            }
        )
    )
    events = await receive(conn)
    assert events[-1]["status"] == "ok"
    (proposed,) = [e for e in events if e["type"] == "fix_proposed"]
    assert proposed["source"] == source and proposed["fixed"] == FIXED + "\n"
    assert "-totals = sales.sum()" not in proposed["diff"] and "+sales = pd.read_csv('sales.csv')" in proposed["diff"]
    assert proposed["diff"].startswith("--- the cell\n+++ proposed fix\n")
    (asked,) = ollama.requests_for("answer")
    assert "Cell [3] of my notebook failed" in asked.text and "NameError: name 'sales' is not defined" in asked.text
    assert "- sales: int" in asked.text and "unrelated" not in asked.text  # only the variables the cell uses
    assert not [r for r in ollama.requests if r.purpose == "classify"]  # a chat run: one call
    conn.close()


async def test_explain_asks_about_the_cell_and_proposes_nothing(ws, ollama):
    ollama.load({"rules": [{"purpose": "answer", "reply": "It sums the sales."}]})
    conn = await ws("explain-a-cell")
    conn.write_message(json.dumps({"type": "explain", "source": "totals = sales.sum()", "number": 2, "outputs": "42"}))
    events = await receive(conn)
    assert [e["markdown"] for e in events if e["type"] == "answer"] == ["It sums the sales."]
    assert not [e for e in events if e["type"] == "fix_proposed"]
    assert "Explain cell [2] of my notebook" in ollama.requests[-1].text and "Its output:\n```\n42" in ollama.requests[-1].text
    conn.close()


async def test_a_fix_without_an_error_or_source_says_what_to_do(ws, ollama):
    conn = await ws("bad-fix")
    for message, said in [
        ({"type": "fix", "source": "x = 1", "error": ""}, "Only a cell that failed can be fixed"),
        ({"type": "explain", "source": "  "}, "The cell to explain is empty"),
        ({"type": "fix", "source": 3, "error": "E"}, "fix's source is the cell's text"),
        ({"type": "fix", "source": "x", "error": "E", "number": -1}, "number is the cell's"),
        ({"type": "fix", "source": "x", "error": "E", "context": {"variables": 1}}, "context.variables must be a list"),
    ]:
        conn.write_message(json.dumps(message))
        (error,) = await receive(conn, until="error")
        assert said in error["message"] and error["request"] == message["type"]
    conn.close()
