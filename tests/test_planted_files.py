"""What the sandbox leaves in its workspace is hostile: the agent's own process never follows a link
planted there, neither when it copies attached files in nor when it reads result files back."""

from __future__ import annotations

import os
from pathlib import Path

from agent_helpers import coder_script, collect, of

from llm_agent_magic.events import Observation

CHAT = {"rules": [{"purpose": "answer", "reply": "Noted."}]}


async def test_attaching_a_file_never_writes_through_a_link_the_sandbox_planted(make_session, sandbox, tmp_path):
    victim = tmp_path / "victim.csv"
    victim.write_text("the user's other file\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "sales.csv").write_text("region,price\nnorth,10\n")
    planted = sandbox.execute(f"import os\nos.symlink({str(victim)!r}, 'sales.csv')")
    assert planted.status == "ok", planted.text_for_model()

    session, _ = make_session(CHAT)
    events = await collect(session, "Look at the file.", mode="chat", files=[str(data / "sales.csv")])

    assert events[-1].status == "ok"
    assert victim.read_text() == "the user's other file\n"
    copy = Path(sandbox.workspace) / "sales.csv"
    assert not copy.is_symlink() and copy.read_text() == "region,price\nnorth,10\n"


async def test_result_files_linked_to_the_agents_environment_are_not_read(make_session, sandbox):
    # The agent's own environment as the kernel started it (what /proc/self/environ holds).
    canary = "PATH=" + os.environ["PATH"]
    session, server = make_session(
        coder_script("import os\nos.symlink('/proc/self/environ', 'env.txt')\nopen('summary.txt', 'w').write('total: 42')")
    )
    events = await collect(session, "Write the results to files.")

    assert events[-1].status == "ok"
    observation = [o for o in of(events, Observation) if o.tool == "python_coder"][0].text
    assert "Result file summary.txt (9 bytes):\ntotal: 42" in observation
    assert "env.txt was not read: it is a symbolic link" in observation
    for request in server.requests:
        assert canary not in request.text
