"""RAG: loaders, chunking, the persistent faiss index (embeddings from the scripted Ollama) and rag_search."""

from __future__ import annotations

import json
import os

import pytest
from tool_helpers import make_ctx, write_docx, write_pdf

from llm_agent_magic.config import ToolsConfig
from llm_agent_magic.exceptions import DocumentError
from llm_agent_magic.tools.rag import DocumentIndex, RagSearchTool, chunk_text, load_document
from llm_agent_magic.tools.rag.index import CHUNKS_FILE, HASHES_FILE, INDEX_FILE
from llm_agent_magic.tools.rag.keywords import KEYWORDS_FILE

TEXTS = {
    "revenue.txt": "Quarterly revenue grew twelve percent in the northern region.\n\nCosts stayed flat.",
    "setup.md": "# Setup\n\nInstall the turbine controller firmware before calibration.",
    "cities.csv": "city,population\nOslo,700000\nBergen,285000\n",
}


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in TEXTS.items():
        (folder / name).write_text(text)
    write_pdf(folder / "glacier.pdf", ["The glacier retreated four kilometres since 1900."], title="Ice")
    write_docx(
        folder / "policy.docx", "Remote work", ["Employees may work remotely on Fridays."], [["day", "office"], ["Friday", "no"]]
    )
    (folder / "page.html").write_text(
        "<html><head><title>Birds</title><script>var x = 1</script></head>"
        "<body><h2>Migration</h2><p>Swallows migrate south in autumn.</p></body></html>"
    )
    return folder


def embedded_inputs(server) -> list[str]:
    return [text for r in server.requests_for("embed") for text in r.body["input"]]


# --- loaders and chunking -------------------------------------------------------------------
def test_loaders_read_every_type(docs):
    assert load_document(docs / "setup.md").meta["headings"] == ["# Setup"]
    assert load_document(docs / "cities.csv").text.splitlines() == [
        "Columns: city, population",
        "city: Oslo; population: 700000",
        "city: Bergen; population: 285000",
    ]
    pdf = load_document(docs / "glacier.pdf")
    assert "glacier retreated four kilometres" in pdf.text and pdf.meta["pages"] == 1 and pdf.meta["title"] == "Ice"
    docx = load_document(docs / "policy.docx")
    assert docx.text.startswith("# Remote work\n\nEmployees may work remotely") and "Friday | no" in docx.text
    assert docx.meta["tables"] == 1
    html = load_document(docs / "page.html")
    assert html.text == "## Migration\n\nSwallows migrate south in autumn." and html.meta["title"] == "Birds"


def test_corrupt_files_raise_document_error(tmp_path):
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4 this is not a pdf")
    (tmp_path / "bad.docx").write_bytes(b"not a zip")
    for name in ("bad.pdf", "bad.docx"):
        with pytest.raises(DocumentError, match="not a readable"):
            load_document(tmp_path / name)


def test_chunks_break_at_paragraphs_and_overlap():
    paragraphs = [f"Paragraph {i} " + " ".join(f"w{i}_{j}" for j in range(12)) + "." for i in range(10)]
    text = "\n\n".join(paragraphs)
    chunks = chunk_text(text, size=200, overlap=90)
    assert all(len(c.text) <= 200 for c in chunks)
    assert all(c.text.startswith("Paragraph") for c in chunks)  # paragraph-aligned starts, overlap included
    assert all(text[c.position : c.position + len(c.text)] == c.text for c in chunks)
    assert all(any(p in c.text for c in chunks) for p in paragraphs)  # nothing lost
    assert chunks[1].text.split("\n\n")[0] in chunks[0].text  # the overlap: a paragraph repeated


def test_long_paragraphs_are_cut_at_sentences():
    text = " ".join(f"Sentence number {i} is here." for i in range(60))
    chunks = chunk_text(text, size=300, overlap=50)
    assert len(chunks) > 1 and all(len(c.text) <= 300 for c in chunks)
    assert all(c.text.endswith(".") for c in chunks)
    assert chunk_text("   \n\n  ", 100, 10) == []


# --- the index --------------------------------------------------------------------------------
async def test_index_ranks_updates_and_reloads(docs, llm, fake_ollama):
    index = DocumentIndex.for_collection("docs", llm, chunk_size=400, chunk_overlap=50)
    report = await index.update(sorted(docs.iterdir()))
    assert len(report.added) == 6 and not report.skipped and report.embedded_chunks == len(index) >= 6

    for question, best in [
        ("How much did quarterly revenue grow in the northern region?", "revenue.txt"),
        ("When may employees work remotely?", "policy.docx"),
        ("install turbine firmware", "setup.md"),
        ("population of Bergen", "cities.csv"),
        ("how far did the glacier retreat", "glacier.pdf"),
        ("when do swallows migrate", "page.html"),
    ]:
        hits = await index.search(question, top_k=3)
        assert hits[0].name == best, (question, [(h.name, h.score) for h in hits])
        assert hits[0].score > hits[-1].score and hits[0].position >= 0

    # Nothing changed: nothing is embedded again.
    fake_ollama.clear_requests()
    report = await index.update(sorted(docs.iterdir()))
    assert report.embedded_chunks == 0 and not fake_ollama.requests and len(report.unchanged) == 6

    # One file changed: only its chunks are embedded; its old chunks are gone.
    (docs / "revenue.txt").write_text("Revenue fell sharply after the merger.")
    report = await index.update(sorted(docs.iterdir()))
    assert report.changed == [str(docs / "revenue.txt")]
    assert embedded_inputs(fake_ollama) == ["Revenue fell sharply after the merger."]
    texts = [c["text"] for c in index.chunks()]
    assert "Revenue fell sharply after the merger." in texts and not any("twelve percent" in t for t in texts)

    # A deleted file's chunks are dropped, with no embedding at all.
    fake_ollama.clear_requests()
    (docs / "setup.md").unlink()
    report = await index.update(sorted(docs.iterdir()))
    assert report.removed == [str(docs / "setup.md")] and not fake_ollama.requests_for("embed")
    assert all(c["source"] != str(docs / "setup.md") for c in index.chunks())
    assert (await index.search("turbine firmware", 1))[0].name != "setup.md"

    # Everything is on disk, written whole, and survives a reload.
    files = sorted(p.name for p in index.folder.iterdir())
    assert files == sorted([INDEX_FILE, CHUNKS_FILE, HASHES_FILE, KEYWORDS_FILE])
    record = json.loads((index.folder / HASHES_FILE).read_text())
    assert record["chunks"] == len(index) and set(record["files"]) == {str(p) for p in docs.iterdir()}
    assert record["settings"]["embedding_model"] == "nomic-embed-text"
    reloaded = DocumentIndex.for_collection("docs", llm, chunk_size=400, chunk_overlap=50)
    assert reloaded.chunks() == index.chunks() and reloaded.sources == index.sources
    assert (await reloaded.search("Revenue fell after the merger", 1))[0].name == "revenue.txt"
    fake_ollama.clear_requests()
    await reloaded.update(sorted(docs.iterdir()))
    assert not fake_ollama.requests_for("embed")


async def test_corrupt_pdf_is_skipped_with_a_note(docs, llm):
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog")
    index = DocumentIndex.for_collection("docs", llm)
    report = await index.update(sorted(docs.iterdir()))
    assert set(report.skipped) == {str(docs / "broken.pdf")}
    assert any(n.startswith("broken.pdf: skipped, not a readable PDF file") for n in report.notes())
    assert str(docs / "broken.pdf") not in index.sources and len(index.sources) == 6


async def test_changed_chunking_rebuilds(docs, llm, fake_ollama):
    await DocumentIndex.for_collection("docs", llm, chunk_size=400, chunk_overlap=50).update([docs / "revenue.txt"])
    fake_ollama.clear_requests()
    index = DocumentIndex.for_collection("docs", llm, chunk_size=500, chunk_overlap=50)
    report = await index.update([docs / "revenue.txt"])
    assert report.added == [str(docs / "revenue.txt")] and embedded_inputs(fake_ollama)


async def test_half_written_index_is_rebuilt(docs, llm):
    index = DocumentIndex.for_collection("docs", llm)
    await index.update([docs / "revenue.txt", docs / "setup.md"])
    (index.folder / CHUNKS_FILE).write_text((index.folder / CHUNKS_FILE).read_text().splitlines()[0] + "\n")
    again = DocumentIndex.for_collection("docs", llm)
    assert len(again) == 0
    report = await again.update([docs / "revenue.txt", docs / "setup.md"])
    assert len(report.added) == 2 and len(again) == 2


# --- the tool ---------------------------------------------------------------------------------
async def test_rag_search_over_workspace_and_folders(docs, tmp_path, llm):
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "notes.md").write_text("The launch date of project Falcon is the ninth of May.")
    (workspace / ".hidden.md").write_text("launch date secret")
    (workspace / "broken.pdf").write_bytes(b"garbage")
    tool = RagSearchTool(ToolsConfig(rag_folders=[str(docs), str(tmp_path / "missing")], rag_top_k=2))
    result = await tool.run("What is the launch date of project Falcon?", make_ctx(llm, workspace=workspace))
    assert result.success
    lines = result.observation.splitlines()
    assert lines[0].startswith("Passages from 7 document(s)") and "Cite each passage you use" in lines[0]
    assert lines[1].startswith("[1] notes.md, characters 0-54 (matched: keyword, vector)")
    assert lines[2] == "    The launch date of project Falcon is the ninth of May."
    assert "- broken.pdf: skipped, not a readable PDF file" in result.observation
    assert "missing: configured in ToolsConfig.rag_folders but not a folder" in result.observation
    assert "secret" not in result.observation
    assert (tmp_path / "root" / "rag" / "session-tools-test" / HASHES_FILE).is_file()


async def test_rag_search_without_documents(tmp_path, llm, fake_ollama):
    result = await RagSearchTool(ToolsConfig()).run("anything?", make_ctx(llm, workspace=tmp_path))
    assert not result.success and result.observation.startswith("There are no documents to search")
    assert "pdf" in result.observation and not fake_ollama.requests


async def test_rag_search_never_indexes_what_links_in_the_workspace_point_to(tmp_path, llm, fake_ollama):
    # The sandbox can plant links in its workspace: to the agent's own environment, to a dotfile.
    canary = "PATH=" + os.environ["PATH"]
    dotfile = tmp_path / ".private" / "launch.md"
    dotfile.parent.mkdir()
    dotfile.write_text("The launch password is hunter2.")
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "notes.md").write_text("The launch date of project Falcon is the ninth of May.")
    (workspace / "environ.txt").symlink_to("/proc/self/environ")
    (workspace / "netrc.md").symlink_to(dotfile)
    (workspace / "docs").symlink_to(tmp_path)  # a linked folder is not entered either
    os.mkfifo(workspace / "pipe.md")  # and a FIFO does not hang the index
    result = await RagSearchTool(ToolsConfig()).run("launch date password", make_ctx(llm, workspace=workspace))
    assert result.success
    assert result.observation.splitlines()[0].startswith("Passages from 1 document(s)")
    for name in ("environ.txt", "netrc.md", "pipe.md"):
        assert f"- {name}: skipped, it is a" in result.observation
    embedded = "\n".join(embedded_inputs(fake_ollama))
    assert "Falcon" in embedded
    for leaked in (canary, "hunter2"):
        assert leaked not in embedded and leaked not in result.observation
