"""Files attached with ``%%agent --files`` under ``llm-agent run``: a link or a pipe at the name is refused,
with why and what to do, and what it points to is never read."""

from __future__ import annotations

import json
import os

import pytest
from agent_helpers import coder_script
from batch_helpers import agent_outputs, read, run_cli, write_notebook

from llm_agent_magic.testing.fake_ollama import FakeOllama

pytestmark = pytest.mark.slow


def test_an_attached_link_or_pipe_fails_its_cell_and_what_it_points_to_is_never_read(folder, data_root, tmp_path):
    private = tmp_path / "private"
    private.mkdir()
    (private / "token.txt").write_text("SECRET_TOKEN=xyz-in-a-private-file\n")
    (folder / "linked.csv").symlink_to(private / "token.txt")
    os.mkfifo(folder / "pipe.csv")  # reading it would block the run forever
    write_notebook(folder / "link.ipynb", "%load_ext llm_agent_magic", "%%agent --files linked.csv\nSum linked.csv.")
    write_notebook(folder / "pipe.ipynb", "%load_ext llm_agent_magic", "%%agent --files pipe.csv\nSum pipe.csv.")
    with FakeOllama(coder_script("print(open('linked.csv').read())")) as server:
        out = run_cli("link.ipynb", "pipe.ipynb", "-j", "2", cwd=folder, host=server.url, data_root=data_root, timeout=240)
        chats = [r for r in server.requests if r.path == "/api/chat"]
        sent = [json.dumps(r.body) for r in server.requests]
    assert out.returncode == 1, out.stderr
    assert "llm-agent run: 2 notebooks, 2 failed" in out.stderr
    assert not chats and not any("SECRET_TOKEN" in text for text in sent)  # the model was never asked
    for notebook, name, why in (
        ("link", "linked.csv", "it is a symbolic link"),
        ("pipe", "pipe.csv", "it is a FIFO (named pipe), not a regular file"),
    ):
        (shown,) = agent_outputs(read(folder / f"{notebook}.out.ipynb"))
        assert shown["status"] == "error" and shown["cells"] == []
        assert f"**AttachmentRefused**: Refused to attach {folder / name}: {why}." in shown["answer"]
        assert "Attach the file itself: copy it into place" in shown["answer"]
    kept = [p for p in [*data_root.rglob("*"), *folder.glob("*.out.ipynb")] if p.is_file()]
    assert all(b"SECRET_TOKEN" not in p.read_bytes() for p in kept)
    assert not list(data_root.rglob("workspace/linked.csv"))  # no copy in the sandbox's workspace
