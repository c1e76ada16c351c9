"""The agent sees the notebook: cells, errors, the folder's files and the user's variables (issue 22)."""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_helpers import coder_script, collect, of

from llm_agent_magic import volatile
from llm_agent_magic.agents.context import cells_from_notebook, describe_variables, gather, named_files
from llm_agent_magic.events import CellOutput, Classified, ContextGathered, event_from_dict
from llm_agent_magic.exceptions import BadRequest
from llm_agent_magic.notebook_context import ContextCell, ContextVariable, NotebookContext
from llm_agent_magic.run_requests import RunRequest, request_from_dict

SECRET = "sk-" + "A1b2C3d4E5f6G7h8J9k0L1m2"


def test_the_context_round_trips_and_a_malformed_one_says_what_to_send():
    context = NotebookContext(
        [ContextCell("x = 1", outputs="1")], active=0, variables=[ContextVariable("df", "DataFrame", "(2, 1)", [["a", "int64"]])]
    )
    request = RunRequest("why?", context=context)
    again = request_from_dict(request.to_dict())
    assert isinstance(again, RunRequest) and again.context == context
    for bad, said in [
        ({"cells": "x"}, "context.cells must be a list"),
        ({"cells": [{"source": 3}]}, "context.cells[0].source must be a string"),
        ({"cells": [{}] * 2001}, "send at most 2,000"),
        ({"cells": [], "active": 4}, "context.active"),
        ({"variables": [{"name": "a", "columns": [["x"]]}]}, "[name, dtype] pairs"),
    ]:
        with pytest.raises(BadRequest) as info:
            request_from_dict({"type": "run", "request": "hi", "context": bad})
        assert said in str(info.value)


def test_the_event_round_trips():
    event = ContextGathered(
        cells=2,
        files=3,
        variables=1,
        summary="Context: 2 cells, 3 files, 1 variable",
        file_names=["a.csv"],
        variable_names=["df"],
        trimmed=["files"],
        run_id="r",
    )
    assert event_from_dict(event.to_dict()) == event


def test_gathering_lists_the_folder_without_contents_and_cuts_the_biggest_part_first(tmp_path):
    for i in range(300):
        (tmp_path / f"f{i:03}.csv").write_text("secret contents\n")
    (tmp_path / "link.csv").symlink_to(tmp_path / "f000.csv")
    cells = [ContextCell("print(1)", outputs="1"), ContextCell("1/0", error="ZeroDivisionError: division by zero")]
    gathered = gather(NotebookContext(cells, active=1), str(tmp_path), "notebook", num_ctx=100_000)
    assert gathered is not None
    assert "- f000.csv (16 B, table)" in gathered.text and "secret contents" not in gathered.text
    assert "link.csv" not in gathered.text  # links are not followed, nor listed
    # A cassette recorded here replays after the folder or the notebook changed.
    assert volatile.texts()[gathered.text] == "<NOTEBOOK CONTEXT>"
    assert "[2] code cell (active, last error)" in gathered.text and "ZeroDivisionError" in gathered.text
    assert gathered.event.summary == "Context: 2 cells, 300 files, 0 variables"
    small = gather(NotebookContext(cells, active=1), str(tmp_path), "notebook", num_ctx=2048)
    assert small is not None and small.event.trimmed == ["files"] and small.event.cells == 2
    assert 0 < small.event.files < 300 and len(small.text) < 2048 * 4
    only = gather(NotebookContext(cells, active=0, selection="print"), str(tmp_path), "selection", num_ctx=8192)
    assert only is not None and only.event.cells == 1 and only.event.files == 0 and "1/0" not in only.text
    assert gather(NotebookContext(cells), str(tmp_path), "none", num_ctx=8192) is None


def test_variables_are_described_never_their_values():
    pd = pytest.importorskip("pandas")
    ns = {"sales": pd.DataFrame({"region": ["n"], "amount": [7]}), "token": SECRET, "_hidden": 1, "pd": pd}
    described = {v.name: v for v in describe_variables(ns)}
    assert set(described) == {"sales", "token"}
    assert [c[0] for c in described["sales"].columns] == ["region", "amount"]
    assert described["sales"].columns[1] == ["amount", "int64"]
    assert described["sales"].shape == "(1, 2)"
    assert SECRET not in repr(described)

    class Touchy:
        def __len__(self):
            raise RuntimeError("no")

    class Frame:  # not pandas: a foreign DataFrame's dtypes are not read as pandas' are
        __name__ = "DataFrame"
        dtypes = ["x"]

    odd = {v.name: v for v in describe_variables({"t": Touchy(), "f": Frame()})}
    assert odd["t"].type.endswith("Touchy") and odd["f"].columns == []


def test_cells_from_a_notebook_keep_outputs_and_the_error_without_colours():
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": ["# Title"]},
            {
                "cell_type": "code",
                "source": "1/0",
                "outputs": [
                    {
                        "output_type": "error",
                        "ename": "ZeroDivisionError",
                        "evalue": "division by zero",
                        "traceback": ["\x1b[0;31mZeroDivisionError\x1b[0m: division by zero"],
                    }
                ],
            },
            {"cell_type": "code", "source": "print(2)", "outputs": [{"output_type": "stream", "text": ["2\n"]}]},
        ]
    }
    cells = cells_from_notebook(nb)
    assert [c.kind for c in cells] == ["markdown", "code", "code"]
    assert cells[1].error == "ZeroDivisionError: division by zero" and cells[2].outputs == "2\n"


def test_named_files_are_the_listed_ones_the_text_names():
    listed = ["sales.csv", "data/sales.csv", "data/costs.csv", "notes.txt"]
    assert named_files("pd.read_csv('data/costs.csv')", listed, set()) == ["data/costs.csv"]
    assert named_files("open('notes.txt')", listed, {"notes.txt"}) == []
    assert named_files("read sales.csv", listed, set()) == ["sales.csv"]  # the path itself, not the ambiguous name
    assert named_files("open('mysales.csv'); open('notes.txt.bak')", listed, set()) == []  # inside longer names


async def test_the_csv_next_to_the_notebook_answers_without_being_attached(make_session, tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "sales.csv").write_text("region,amount\nnorth,10\nsouth,30\nnorth,5\n")
    session, server = make_session(
        coder_script(
            "import pandas as pd\nprint(pd.read_csv('sales.csv').groupby('region')['amount'].sum().idxmax())", answer="south"
        )
    )
    events = await collect(session, RunRequest("which region sold most?", folder=str(folder), context=NotebookContext()))
    (gathered,) = of(events, ContextGathered)
    assert gathered.files == 1 and gathered.file_names == ["sales.csv"]
    (classify,) = server.requests_for("classify")
    assert "- sales.csv (" in classify.text
    (output,) = of(events, CellOutput)
    assert output.status == "ok" and output.outputs[0]["text"] == "south\n"
    assert (Path(session.sandbox.workspace) / "sales.csv").read_text().startswith("region,amount")


async def test_secrets_in_cells_outputs_and_variables_never_reach_the_model(make_session, tmp_path):
    session, server = make_session(
        {
            "rules": [
                {"purpose": "classify", "reply": {"mode": "chat", "reason": "talk"}},
                {"purpose": "answer", "reply": "ok"},
            ]
        }
    )
    context = NotebookContext(
        cells=[ContextCell(f"key = '{SECRET}'", outputs=f"Out: {SECRET}", error=f"KeyError: '{SECRET}'")],
        selection=f"token {SECRET}",
        variables=[
            ContextVariable(f"ghp_{'a1B2c3D4' * 5}", "str"),
            ContextVariable("df", "DataFrame", columns=[[SECRET, "object"]]),
        ],
    )
    events = await collect(session, RunRequest("what is in my notebook?", context=context))
    assert of(events, ContextGathered)[0].variables == 2
    bodies = [r.text for r in server.requests]
    assert bodies and all(SECRET not in b and "a1B2c3D4" * 5 not in b for b in bodies)
    assert any("key = '" in b for b in bodies)  # the cell itself was sent, its secret replaced
    assert SECRET not in repr([e.to_dict() for e in events])


def test_the_magics_live_view_shows_the_context_line():
    from llm_agent_magic.magic.render import LiveView

    view = LiveView()
    view.apply(ContextGathered(cells=12, files=40, variables=3, summary="Context: 12 cells, 40 files, 3 variables"))
    view.apply(Classified("chat", "talk"))
    assert view.markdown().startswith("**Agent** · chat — talk\n\n_Context: 12 cells, 40 files, 3 variables_")
    assert "Context: 12 cells" in view.display_data()["text/html"]


async def test_a_file_fetched_from_the_folder_is_described_to_the_model_like_an_attached_one(make_session, tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "sales.csv").write_text("region,amount\nnorth,10\nsouth,30\n")
    session, server = make_session(coder_script("import pandas as pd\nprint(len(pd.read_csv('sales.csv')))"))
    await collect(session, RunRequest("how many rows?", folder=str(folder), context=NotebookContext()))
    (code,) = server.requests_for("code")
    assert "columns: region" not in code.text  # not attached: the model had only its name and size
    later = [r.text for r in server.requests if r.purpose == "react"][-1]
    assert "Files of the notebook's folder now copied into the sandbox's working folder" in later
    assert "sales.csv (" in later and "columns: region (" in later and "2 rows; missing values: none" in later


async def test_an_attached_file_the_code_reads_is_not_fetched_again_nor_described_twice(make_session, tmp_path):
    folder = tmp_path / "notebooks"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "sales.csv").write_text("region,amount\nnorth,10\nsouth,30\n")
    session, server = make_session(coder_script("import pandas as pd\nprint(len(pd.read_csv('data/sales.csv')))"))
    await collect(
        session,
        RunRequest(
            "how many rows?",
            mode="react",
            files=[str(folder / "data" / "sales.csv")],
            folder=str(folder),
            context=NotebookContext(),
        ),
    )
    (code,) = server.requests_for("code")
    assert "columns: region" in code.text  # attached: described in the request
    later = [r.text for r in server.requests if r.purpose == "react"][-1]
    assert "Files of the notebook's folder now copied" not in later


def test_a_fix_run_request_carries_the_cell_and_only_the_variables_it_uses():
    from llm_agent_magic.agents.fix import cell_request, fix_proposal

    request = cell_request(
        {
            "type": "fix",
            "source": "df.plot(x='a')",
            "error": "KeyError: 'a'",
            "number": 4,
            "context": {"variables": [{"name": "df", "type": "DataFrame"}, {"name": "other", "type": "int"}]},
        }
    )
    assert request.mode == "chat" and request.fix_of == "df.plot(x='a')"
    assert request.request.startswith("Cell [4] of my notebook failed") and "KeyError: 'a'" in request.request
    assert request.context is not None and [v.name for v in request.context.variables] == ["df"]
    proposed = fix_proposal("df.plot(x='a')", "```python\ndf.plot(x='b')\n```\nWrong column.", 4)
    assert proposed.fixed == "df.plot(x='b')\n" and "-df.plot(x='a')\n+df.plot(x='b')" in proposed.diff
    assert fix_proposal("x", "No code here.").fixed == ""
    assert event_from_dict(proposed.to_dict()) == proposed
    with pytest.raises(BadRequest, match="Only a cell that failed can be fixed"):
        cell_request({"type": "fix", "source": "x = 1"})


async def test_a_file_mentioned_with_an_at_is_attached_at_once_and_described(make_session, tmp_path):
    from llm_agent_magic.agents.context import mentioned_files

    assert mentioned_files("plot @data/sales.csv by region", ["sales.csv", "data/sales.csv"]) == ["data/sales.csv"]
    assert mentioned_files("mail me@sales.csv.bak", ["sales.csv"]) == []
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "sales.csv").write_text("region,amount\nnorth,10\nsouth,30\n")
    session, server = make_session(
        {
            "rules": [
                {"purpose": "classify", "reply": {"mode": "chat", "reason": "talk"}},
                {"purpose": "answer", "reply": "Two regions."},
            ]
        }
    )
    await collect(session, RunRequest("What is in @sales.csv?", folder=str(folder), context=NotebookContext()))
    (asked,) = server.requests_for("classify")
    attached = asked.text.split("Attached files")[1]
    assert "sales.csv (" in attached and "columns: region (" in attached
    assert (Path(session.sandbox.workspace) / "sales.csv").read_text().startswith("region,amount")
