"""Attached files keep their path relative to the notebook's folder, and the model is told those paths."""

from __future__ import annotations

from agent_helpers import coder_script, collect, of

from llm_agent_magic.events import CellOutput
from llm_agent_magic.run_requests import RunRequest
from llm_agent_magic.tools.files import attach, describe_file, workspace_name


def test_a_file_in_the_notebook_folder_keeps_its_relative_path(tmp_path):
    folder, workspace = tmp_path / "project", tmp_path / "workspace"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "sales.csv").write_text("region,price\nnorth,10\n")
    (tmp_path / "elsewhere.csv").write_text("a\n1\n")
    copies = attach([str(folder / "data" / "sales.csv"), str(tmp_path / "elsewhere.csv")], str(workspace), str(folder))
    assert copies == ["data/sales.csv", "elsewhere.csv"]  # outside the folder: its name
    assert (workspace / "data" / "sales.csv").read_text() == "region,price\nnorth,10\n"
    assert describe_file(workspace, "data/sales.csv").startswith("data/sales.csv (")
    assert "columns: region (" in describe_file(workspace, "data/sales.csv")
    # A file already in the workspace stays where it is; one beside (not below) the folder gets its name.
    assert workspace_name(workspace / "data" / "sales.csv", str(workspace), str(folder)) == "data/sales.csv"
    assert workspace_name(tmp_path / "project-2" / "x.csv", str(workspace), str(folder)) == "x.csv"
    assert workspace_name(folder / "x.csv", str(workspace), "") == "x.csv"


async def test_the_model_is_told_the_path_and_the_code_runs_with_it(make_session, tmp_path):
    folder = tmp_path / "notebooks"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "sales.csv").write_text("region,price\nnorth,10\nsouth,30\n")
    session, server = make_session(
        coder_script("import pandas as pd\nprint('mean', pd.read_csv('data/sales.csv')['price'].mean())")
    )
    events = await collect(session, RunRequest("Mean price?", files=[str(folder / "data" / "sales.csv")], folder=str(folder)))
    request = server.requests_for("react")[0]  # a table and a question: no classifier call
    assert "- data/sales.csv (" in request.text and "columns: region" in request.text
    (output,) = of(events, CellOutput)
    assert output.status == "ok" and output.outputs[0]["text"] == "mean 20.0\n"
