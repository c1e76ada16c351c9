"""``%%agent --approve`` in a real kernel whose client answers the kernel's input requests, as JupyterLab does.

nbclient cannot answer input requests, so this module drives its kernel with jupyter_client directly:
``execute_interactive(allow_stdin=True)`` with a stdin hook that types the test's answers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from agent_helpers import coder_script
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager, start_new_kernel

from llm_agent_magic.cells import CELLS_MIME
from llm_agent_magic.magic import env as kernel_env
from llm_agent_magic.testing.fake_ollama import FakeOllama

pytestmark = pytest.mark.slow  # a real kernel and its sandbox
TIMEOUT = 120


@dataclass
class Executed:
    """One cell as a front end saw it: the prompts of its input requests, its final outputs, its live updates."""

    prompts: list[str] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    reply: dict[str, Any] = field(default_factory=dict)

    def bundle(self) -> dict[str, Any]:
        (found,) = [o["data"][CELLS_MIME] for o in self.outputs if CELLS_MIME in o.get("data", {})]
        return found

    def text(self, mime: str = "text/plain") -> list[str]:
        return [o["data"][mime] for o in self.outputs if mime in o.get("data", {})]


@dataclass
class Lab:
    km: KernelManager
    kc: BlockingKernelClient
    server: FakeOllama
    folder: Path

    def execute(self, code: str, answers: list[str] | None = None, on_input: Any = None) -> Executed:
        """Run ``code``; each input request gets the next of ``answers`` (or ``on_input(prompt)`` decides)."""
        seen = Executed()
        queue = list(answers or [])
        clear_next = False

        def stdin_hook(msg: dict[str, Any]) -> None:
            seen.prompts.append(msg["content"]["prompt"])
            if on_input is not None:
                on_input(msg["content"]["prompt"])
            else:
                self.kc.input(queue.pop(0))

        def output_hook(msg: dict[str, Any]) -> None:
            nonlocal clear_next
            kind, content = msg["msg_type"], msg["content"]
            if kind == "clear_output":
                clear_next = bool(content.get("wait"))
                if not clear_next:
                    seen.outputs.clear()
            elif kind == "update_display_data":
                seen.updates.append(content["data"])
            elif kind in ("display_data", "execute_result", "stream", "error"):
                if clear_next:
                    seen.outputs.clear()
                    clear_next = False
                seen.outputs.append({"output_type": kind, **content})

        seen.reply = self.kc.execute_interactive(
            code, allow_stdin=True, stdin_hook=stdin_hook, output_hook=output_hook, timeout=TIMEOUT
        )["content"]
        assert not queue, f"answers left over: {queue}"
        return seen


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    folder = tmp_path_factory.mktemp("approval-notebook")
    with FakeOllama() as server:
        env = {**os.environ, "OLLAMA_HOST": server.url, "LLM_AGENT_DATA_ROOT": str(folder / ".llm_agent")}
        for name in (*kernel_env.ALL, "JPY_SESSION_NAME"):
            env.pop(name, None)
        km, kc = start_new_kernel(kernel_name="python3", env=env, cwd=str(folder), startup_timeout=TIMEOUT)
        try:
            lab = Lab(km, kc, server, folder)
            assert lab.execute("%load_ext llm_agent_magic").reply["status"] == "ok"
            yield lab
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)


@pytest.fixture
def session(lab: Lab, request: pytest.FixtureRequest) -> str:
    """A session (conversation and sandbox) of this test's own."""
    session_id = f"approve-{request.node.name}"[:60]
    lab.execute(f"import os as _os\n_os.environ['LLM_AGENT_SESSION'] = {session_id!r}")
    return session_id


def script(lab: Lab, code: str, answer: str = "Done.") -> None:
    lab.server.load(coder_script(code, answer))
    lab.server.clear_requests()


def test_edit_asks_for_the_new_code_and_runs_it_in_the_sandbox(lab, session):
    script(lab, "print('model wrote this')")
    seen = lab.execute(
        "%%agent --approve\nPrint something.", ["e", "for word in ['user', 'wrote', 'this']:", "    print(word)", "."]
    )
    assert seen.reply["status"] == "ok"
    assert seen.prompts[0] == "Generated cell, attempt 1. Run / edit / skip [r/e/s]? "
    assert seen.prompts[1].startswith("New code, one line at a time")
    waiting = [u["text/plain"] for u in seen.updates if "waiting for your approval" in u.get("text/plain", "")]
    assert waiting and "print('model wrote this')" in waiting[-1]  # the live view showed the code to approve
    (cell,) = seen.bundle()["cells"]
    assert cell["source"] == "%%sandbox\nfor word in ['user', 'wrote', 'this']:\n    print(word)"
    assert cell["metadata"]["llm_agent"]["approval"] == "edited"
    assert cell["metadata"]["llm_agent"]["original_source"] == "print('model wrote this')"
    assert cell["outputs"][0]["text"] == "user\nwrote\nthis\n"
    assert seen.text()[-1] == "llm-agent: 1 generated cell; run ok"


def test_skip_with_quiet_shows_the_code_in_the_question_and_runs_nothing(lab, session):
    script(lab, "skipped_marker = 1\nprint('must not run')", "Nothing ran: you skipped the cell.")
    seen = lab.execute("%%agent --approve --quiet\nSet a marker.", ["s"])
    assert seen.prompts == ["Generated cell, attempt 1:\nskipped_marker = 1\nprint('must not run')\nRun / edit / skip [r/e/s]? "]
    (cell,) = seen.bundle()["cells"]
    assert cell["outputs"] == [] and cell["metadata"]["llm_agent"]["approval"] == "skipped"
    assert seen.text("text/html")[0] == "<p>Nothing ran: you skipped the cell.</p>\n"
    react = lab.server.requests_for("react")[-1].body["messages"][-1]["content"]
    assert "The user skipped this cell (attempt 1), so it did not run" in react
    after = lab.execute("print('skipped_marker' in dir())")  # the user's kernel never had it either
    assert after.outputs[0]["text"] == "False\n"
    vars_out = lab.execute("%agent vars")
    assert "skipped_marker" not in str(vars_out.outputs)


def test_run_and_an_unknown_answer_that_asks_again(lab, session):
    script(lab, "print('ran as generated')")
    seen = lab.execute("%%agent --approve\nPrint it.", ["yes please", "r"])
    assert seen.prompts[1].startswith("Please answer r (run it), e (edit it first) or s (skip it).")
    (cell,) = seen.bundle()["cells"]
    assert cell["metadata"]["llm_agent"]["approval"] == "approved"
    assert cell["outputs"][0]["text"] == "ran as generated\n"


def test_an_interrupt_while_the_question_is_open_stops_the_run(lab, session):
    script(lab, "print('never')")
    seen = lab.execute("%%agent --approve\nPrint it.", on_input=lambda prompt: lab.km.interrupt_kernel())
    # A stopped run is a failed cell (Run All stops there), with one line of why and no Python traceback.
    assert seen.reply["status"] == "error" and seen.reply["ename"] == "AgentRunFailed"
    (error,) = [o for o in seen.outputs if o["output_type"] == "error"]
    assert error["traceback"] == ["AgentRunFailed: The agent run was stopped before it finished."]
    assert seen.text()[0] == "Stopped: the run was interrupted before it finished."
    assert seen.bundle()["status"] == "cancelled" and seen.bundle()["cells"] == []
    assert lab.execute("print('kernel alive')").outputs[0]["text"] == "kernel alive\n"


def test_without_approval_nothing_is_asked(lab, session):
    script(lab, "print('no questions')")
    seen = lab.execute("%%agent\nPrint it.")
    assert seen.prompts == [] and seen.bundle()["cells"][0]["outputs"][0]["text"] == "no questions\n"
    lab.execute("%config AgentConfig.approval = True")
    try:
        asked = lab.execute("%%agent --rerun\nPrint it.", ["r"])  # the same request: asked again only with --rerun
        assert len(asked.prompts) == 1
    finally:
        lab.execute("%config AgentConfig.approval = False")
