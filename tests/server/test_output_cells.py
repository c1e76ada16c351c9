"""The cells the panel inserts come ready from the server (``cells.insertable_cells``): a panel run's through
``GET runs/{id}/cells?origin=panel``, a ``%%agent`` output's through ``POST output-cells``; the panel only inserts."""

from __future__ import annotations

import pytest
from conftest import body

from llm_agent_magic.cells import CELLS_MIME, INSERTED_BY, make_bundle
from llm_agent_magic.events import CellOutput, CodeCell, RunFinished, RunStarted, Usage
from llm_agent_magic.store import ConversationStore

PNG = {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}, "metadata": {}}


def run_events(run_id: str) -> list:
    first = CodeCell("1/0", cell_id="c1", run_id=run_id)
    second = CodeCell("plot()", attempt=2, cell_id="c2", approval="edited", original_source="plt()", run_id=run_id)
    return [
        RunStarted("plot it", run_id=run_id),
        first,
        CellOutput(
            "c1",
            [{"output_type": "error", "ename": "ZeroDivisionError", "evalue": "", "traceback": []}],
            status="error",
            failed=True,
            run_id=run_id,
        ),
        second,
        CellOutput("c2", [PNG], final=True, run_id=run_id),
        Usage(5, 5, model="qwen3:8b", run_id=run_id),
        RunFinished("ok", run_id=run_id),
    ]


def agent_output(run_id: str) -> dict:
    bundle = make_bundle(run_events(run_id), session_id="s", model="qwen3:8b")
    for cell in bundle["cells"]:
        cell["metadata"]["trusted"] = True  # whatever a kernel wrote, inserted cells are not trusted
        cell["id"] = "from-the-kernel"
    return {
        "output_type": "display_data",
        "metadata": {"isolated": False},
        "data": {CELLS_MIME: bundle, "text/html": "<details>...</details>", "text/plain": "llm-agent: 2 cells"},
    }


async def test_an_agent_output_becomes_ready_cells_and_its_one_line(api):
    reply = await api(
        "/llm-agent/api/output-cells", method="POST", body={"output": agent_output("r1"), "from_cell": "agent-cell"}
    )
    assert reply.code == 200, reply.body
    ready = body(reply)
    assert ready["run_id"] == "r1"
    failed, final = ready["cells"]
    assert failed["source"].startswith("%%sandbox --skip\n") and final["source"] == "%%sandbox\nplot()"
    assert final["outputs"] == [PNG] and final["execution_count"] is None
    for cell in ready["cells"]:
        assert "id" not in cell and "trusted" not in cell["metadata"]
        provenance = cell["metadata"]["llm_agent"]
        assert provenance["inserted_by"] == INSERTED_BY and provenance["origin"] == "magic"
        assert provenance["from_cell"] == "agent-cell" and provenance["run_id"] == "r1"
    assert final["metadata"]["llm_agent"]["approval"] == "edited"
    assert final["metadata"]["llm_agent"]["original_source"] == "plt()"
    assert final["metadata"]["llm_agent"]["model"] == "qwen3:8b"
    # The output keeps its one line of text and says which run's cells were written, not the cells again.
    assert ready["output"] == {
        "output_type": "display_data",
        "data": {"text/plain": "llm-agent: 2 cells"},
        "metadata": {"isolated": False, "llm_agent": {"run_id": "r1", "status": "ok", "cells_written": 2}},
    }


@pytest.mark.parametrize(
    "sent",
    [
        {"output": {"output_type": "stream", "text": "hi"}},
        {"output": {"output_type": "display_data", "data": {CELLS_MIME: {"version": 9, "cells": []}}}},
        {"output": {"output_type": "display_data", "data": {CELLS_MIME: {"version": 1, "cells": "x"}}}},
        {"output": agent_output("r1"), "from_cell": 3},
    ],
)
async def test_what_is_not_an_agent_output_is_refused_saying_what_is(api, sent):
    reply = await api("/llm-agent/api/output-cells", method="POST", body=sent)
    assert reply.code == 400
    assert "bundle of version 1" in body(reply)["message"] or "from_cell is the id" in body(reply)["message"]


async def test_cells_of_odd_shapes_are_skipped_or_made_plain(api):
    output = agent_output("r1")
    cells = output["data"][CELLS_MIME]["cells"]
    cells[0]["metadata"] = ["not", "a", "dict"]
    cells[1]["metadata"]["llm_agent"] = "not a dict"
    cells[1]["source"] = ["%%sandbox\n", "plot()"]
    cells.append({"cell_type": "markdown", "metadata": {}, "source": "# not code"})
    ready = body(await api("/llm-agent/api/output-cells", method="POST", body={"output": output, "from_cell": "a"}))
    assert [c["metadata"] for c in ready["cells"]] == [
        {"llm_agent": {"inserted_by": INSERTED_BY, "origin": "magic", "from_cell": "a"}}
    ] * 2
    assert ready["cells"][1]["source"] == "%%sandbox\nplot()"


async def test_output_cells_needs_the_token(api):
    reply = await api("/llm-agent/api/output-cells", method="POST", body={"output": agent_output("r1")}, auth=False)
    assert reply.code == 403


async def test_a_panel_run_cells_come_with_the_panel_provenance(api, data_root):
    data_root.mkdir(parents=True, exist_ok=True)
    with ConversationStore(data_root / "store.sqlite") as store:
        store.create_session("s")
        run_id = store.start_run("s", "plot it")
        store.append_events(run_id, [e.to_dict() for e in run_events(run_id)])
        store.finish_run(run_id, "ok")
    plain = body(await api(f"/llm-agent/api/runs/{run_id}/cells"))
    assert [c["metadata"]["llm_agent"]["status"] for c in plain["cells"]] == ["final"]  # failed ones left out
    assert "origin" not in plain["cells"][0]["metadata"]["llm_agent"]  # as the magic and llm-agent run write them
    ready = body(await api(f"/llm-agent/api/runs/{run_id}/cells?origin=panel"))
    (cell,) = ready["cells"]
    assert cell["source"] == plain["cells"][0]["source"] and cell["outputs"] == [PNG]
    assert cell["metadata"]["llm_agent"] == {
        **plain["cells"][0]["metadata"]["llm_agent"],
        "inserted_by": INSERTED_BY,
        "origin": "panel",
    }
    wrong = await api(f"/llm-agent/api/runs/{run_id}/cells?origin=kernel")
    assert wrong.code == 400 and "origin is one of panel, magic" in body(wrong)["message"]
