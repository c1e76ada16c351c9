"""``llm-agent learn / forget / collections`` and ``llm-agent fake-tavily``, run as a user runs them."""

import json
import os
import signal
import subprocess
import sys

import httpx
import pytest
from cli_helpers import run_cli

from llm_agent_magic.testing.fake_ollama import FakeOllama

pytestmark = pytest.mark.slow  # every test here runs llm-agent as a process


@pytest.fixture
def folder(tmp_path):
    docs = tmp_path / "docs"
    (docs / "deep").mkdir(parents=True)
    for n in range(5):
        (docs / f"note{n}.md").write_text(f"# Note {n}\n\nThe pump in hall {n} runs at {100 + n} litres a minute.")
    (docs / "deep" / "codes.txt").write_text("Fault XK-2291-B: the inlet valve is stuck.")
    (docs / "big.txt").write_text("x" * 3000)
    return tmp_path


def test_learn_shows_progress_relearns_nothing_and_forgets(folder):
    with FakeOllama() as server:
        common = (
            f"--host={server.url}",
            f"--data-root={folder / 'root'}",
            "--LLMConfig.embed_batch_size=2",
            "--ToolsConfig.rag_max_file_mb=0.002",
        )
        first = run_cli("learn", "docs", "--collection", "plant", *common, cwd=folder)
        assert first.returncode == 0, first.stderr
        assert first.stdout.splitlines()[0] == (
            "Collection 'plant': 6 file(s), 6 chunk(s) (6 added, 0 changed, 0 unchanged, 0 removed; 6 chunk(s) embedded)."
        )
        assert "  big.txt: skipped, larger than 0.002 MB (ToolsConfig.rag_max_file_mb)" in first.stdout
        assert "embedding" in first.stderr and "6/6" in first.stderr  # the progress bar (tqdm, on stderr)
        assert len(server.requests_for("embed")) == 3  # batches of 2

        server.clear_requests()
        again = run_cli("learn", "docs", "--collection", "plant", *common, cwd=folder)
        assert "(0 added, 0 changed, 6 unchanged, 0 removed; 0 chunk(s) embedded)" in again.stdout
        assert not server.requests_for("embed")

        (folder / "docs" / "note0.md").write_text("The pump in hall 0 was replaced.")
        (folder / "docs" / "note1.md").unlink()
        third = run_cli("learn", "docs", "--collection", "plant", "--json", *common, cwd=folder)
        report = json.loads(third.stdout)
        assert report["changed"] == [str(folder / "docs" / "note0.md")]
        assert report["removed"] == [str(folder / "docs" / "note1.md")]  # deleted from a learned folder
        assert report["embedded_chunks"] == 1 and report["embedding_calls"] == 1

    listing = json.loads(run_cli("collections", "--json", f"--data-root={folder / 'root'}", cwd=folder).stdout)
    (plant,) = listing
    assert plant["name"] == "plant" and plant["kind"] == "learned" and plant["files"] == 5 and plant["chunks"] == 5
    assert plant["embedding_model"] == "nomic-embed-text" and plant["index"] == "flat" and plant["size_bytes"] > 0
    assert plant["roots"] == [str(folder / "docs")] and plant["updated_at"] > 0
    table = run_cli("collections", f"--data-root={folder / 'root'}", cwd=folder).stdout.splitlines()
    assert table[0].split()[:4] == ["collection", "kind", "files", "chunks"] and table[1].split()[:4] == [
        "plant",
        "learned",
        "5",
        "5",
    ]

    gone = run_cli("forget", "docs/deep", "--collection", "plant", f"--data-root={folder / 'root'}", cwd=folder)
    assert gone.stdout.startswith("Collection 'plant': 1 file(s) forgotten; 4 file(s), 4 chunk(s) left.")
    deleted = run_cli("forget", "--all", "--collection", "plant", f"--data-root={folder / 'root'}", cwd=folder)
    assert deleted.stdout.startswith("Collection 'plant' deleted (4 file(s) forgotten).")
    empty = run_cli("collections", f"--data-root={folder / 'root'}", cwd=folder)
    assert empty.stdout.startswith("No collections yet")


def test_learn_errors_say_what_to_do(folder):
    with FakeOllama() as server:
        common = (f"--host={server.url}", f"--data-root={folder / 'root'}")
        missing = run_cli("learn", "nowhere", *common, cwd=folder)
        assert missing.returncode == 1 and "no such file or folder" in missing.stderr
        assert run_cli("learn", "docs", *common, cwd=folder).returncode == 0
        other = run_cli("learn", "docs", *common, "--LLMConfig.embedding_model=mxbai-embed-large", cwd=folder)
        assert other.returncode == 1
        assert "Collection 'notes' was embedded with 'nomic-embed-text'" in other.stderr
        assert "llm-agent learn --reembed --collection notes" in other.stderr
        server.clear_requests()
        redo = run_cli("learn", "--reembed", *common, "--LLMConfig.embedding_model=mxbai-embed-large", cwd=folder)
        assert redo.returncode == 0 and "7 file(s), 10 chunk(s)" in redo.stdout and "10 chunk(s) embedded" in redo.stdout
        assert {r.model for r in server.requests_for("embed")} == {"mxbai-embed-large"}
    unknown = run_cli("forget", "x.md", "--collection", "nope", f"--data-root={folder / 'root'}", cwd=folder)
    assert unknown.returncode == 1 and "There is no collection 'nope'" in unknown.stderr


def test_learn_follows_no_link_out_of_the_folder_and_a_pipe_does_not_hang_it(folder):
    private = folder / "private"
    private.mkdir()
    (private / "keys.md").write_text("SECRET_TOKEN=xyz-in-a-linked-folder")
    (folder / "secret.txt").write_text("SECRET_TOKEN=xyz-beside-the-folder")
    docs = folder / "docs"
    (docs / "leak.txt").symlink_to(folder / "secret.txt")
    (docs / "deep" / "up.md").symlink_to("../../secret.txt")  # a relative link out
    (docs / "private").symlink_to(private)  # a linked folder is not walked
    os.mkfifo(docs / "pipe.md")
    with FakeOllama() as server:
        learned = run_cli(
            "learn", "docs", "--json", f"--host={server.url}", f"--data-root={folder / 'root'}", cwd=folder, timeout=60
        )  # a FIFO opened for reading would hang it until then
        assert learned.returncode == 0, learned.stderr
        assert not any("SECRET_TOKEN" in json.dumps(r.body) for r in server.requests)  # nothing of it embedded
        report = json.loads(learned.stdout)
        assert report["files"] == 7 and len(report["added"]) == 7
        assert report["skipped"] == {
            str(docs / "deep" / "up.md"): "it is a symbolic link",
            str(docs / "leak.txt"): "it is a symbolic link",
            str(docs / "pipe.md"): "it is a FIFO (named pipe), not a regular file",
            str(docs / "private"): "it is a symbolic link",
        }
        assert any("to learn such a file, copy it into the folder" in n for n in report["notes"])
    kept = [p for p in (folder / "root").rglob("*") if p.is_file()]
    assert any(p.name == "chunks.jsonl" for p in kept) and any(p.name == "keywords.sqlite" for p in kept)
    assert all(b"SECRET_TOKEN" not in p.read_bytes() for p in kept)


def test_fake_tavily_command_prints_its_url_and_serves(tmp_path):
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"results": [{"title": "T", "url": "https://example.org/t", "content": "scripted"}]}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "llm_agent_magic.cli", "fake-tavily", f"--script={script}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("fake-tavily listening on http://127.0.0.1:")
        url = line.split()[-1]
        reply = httpx.post(f"{url}/search", json={"query": "anything"}, headers={"Authorization": "Bearer tvly-x"}, timeout=10)
        assert reply.json()["results"][0]["content"] == "scripted"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        proc.stdout.close()
