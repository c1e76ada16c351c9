"""A recorded notebook replays on another day, in another time zone, from another folder and data root.

The clock is injected (``LLM_AGENT_NOW`` and ``TZ``), so these tests mean the same on every day they run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from batch_helpers import SCENARIOS, agent_outputs, read, run_cli, write_notebook

from llm_agent_magic.testing.fake_ollama import FakeOllama

RECORDED = {"LLM_AGENT_NOW": "2026-11-28T09:15:00+00:00", "TZ": "UTC"}  # a Saturday, in UTC
RECORDED_TEXT = "2026-11-28 09:15 UTC (Saturday)"
REPLAYS = {
    "los-angeles": (
        {"LLM_AGENT_NOW": "2027-03-02T18:40:00-08:00", "TZ": "America/Los_Angeles"},
        "2027-03-02 18:40 PST (Tuesday)",
    ),
    "kolkata": ({"LLM_AGENT_NOW": "2027-03-02T18:40:00+05:30", "TZ": "Asia/Kolkata"}, "2027-03-02 18:40 IST (Tuesday)"),
}
ODD_NAME = "beauty and the labor market.csv"
QUESTION = f'%%agent --files "{ODD_NAME}"\nWhat is the mean price in {ODD_NAME}?'


def _script() -> dict:
    rules = json.loads((SCENARIOS / "react_csv.json").read_text())["rules"]
    for rule in rules:  # the scenario reads sales.csv; here the file has spaces in its name
        if rule["purpose"] == "code":
            rule.pop("match_last", None)
            code, fence = rule["reply"].replace("'sales.csv'", repr(ODD_NAME)).rsplit("```", 1)
            rule["reply"] = code + f"import os\nprint('read', os.path.abspath({ODD_NAME!r}))\n```" + fence
    return {"rules": rules}


def _calls_logged(data_root: Path) -> str:
    return "\n".join(p.read_text() for p in (data_root / "logs").glob("*.jsonl"))


@pytest.mark.slow
@pytest.mark.parametrize("where", sorted(REPLAYS))
def test_a_notebook_recorded_on_a_saturday_in_utc_replays_on_a_tuesday_elsewhere(tmp_path, where):
    recorded_in = tmp_path / "recorded" / "project"
    recorded_in.mkdir(parents=True)
    (recorded_in / ODD_NAME).write_text("region,price\nnorth,10\nsouth,30\n")
    write_notebook(recorded_in / "odd.ipynb", "%load_ext llm_agent_magic", QUESTION)
    with FakeOllama(_script()) as server:
        recorded = run_cli(
            "odd.ipynb",
            "--record",
            "odd.cassette.jsonl",
            cwd=recorded_in,
            host=server.url,
            data_root=recorded_in / ".llm_agent",
            env=RECORDED,
        )
        host = server.url
        asked = "\n".join(r.text for r in server.requests if r.path == "/api/chat")
    assert recorded.returncode == 0, recorded.stderr
    assert RECORDED_TEXT in asked  # the injected clock is what the model was told
    assert f"read {recorded_in}/.llm_agent/sessions/" in asked  # and a folder of this machine reached a prompt

    # Another machine, another day: the project moved, the data root is elsewhere, no server answers.
    moved = tmp_path / "another" / "machine" / "work"
    shutil.copytree(recorded_in, moved, ignore=shutil.ignore_patterns(".llm_agent", "*.out.ipynb"))
    replay_env, replay_text = REPLAYS[where]
    data_root = tmp_path / "another-data-root"
    replayed = run_cli("odd.ipynb", "--replay", "odd.cassette.jsonl", cwd=moved, host=host, data_root=data_root, env=replay_env)
    assert replayed.returncode == 0, replayed.stderr
    logged = _calls_logged(data_root)
    assert replay_text in logged and RECORDED_TEXT not in logged  # replayed prompts carried the new clock
    first, second = agent_outputs(read(recorded_in / "odd.out.ipynb")), agent_outputs(read(moved / "odd.out.ipynb"))
    assert first[0]["answer"] == second[0]["answer"] == "The mean price in `sales.csv` is **20.0**."
    assert first[0]["status"] == second[0]["status"] == "ok"
    (output,) = second[0]["cells"][0][1]
    assert output.startswith("mean price: 20.0\nread " + str(data_root) + "/sessions/")  # ran here, in its folder
