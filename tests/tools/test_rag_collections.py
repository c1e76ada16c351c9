"""Learned collections, hybrid search, the approximate index and trust (citations, refusals, skipped files)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from tool_helpers import make_ctx, write_pdf

from llm_agent_magic.config import LLMConfig, ToolsConfig
from llm_agent_magic.exceptions import CollectionError, EmbeddingModelMismatch
from llm_agent_magic.llm import LLMClient
from llm_agent_magic.testing.fake_ollama import embed_text
from llm_agent_magic.tools.rag import RagSearchTool
from llm_agent_magic.tools.rag import index as index_module
from llm_agent_magic.tools.rag.index import DocumentIndex
from llm_agent_magic.tools.rag.keywords import identifiers
from llm_agent_magic.tools.rag.library import forget, learn, list_collections
from llm_agent_magic.tools.rag.vectors import Approximate, VectorStore

IDENTIFIER_TEXT = "ERR_4012: breaker tripped, replace fuse F7."


def embed_calls(server) -> int:
    return len(server.requests_for("embed"))


@pytest.fixture
def manuals(tmp_path):
    folder = tmp_path / "manuals"
    folder.mkdir()
    for n in range(20):  # passages sharing nearly every word of the question, but not its code
        (folder / f"rotor{n:02}.md").write_text(
            f"What does a fault code mean for the rotor? Section {n}: the rotor code means the turbine slows."
        )
    (folder / "codes.md").write_text(IDENTIFIER_TEXT)
    return folder


def test_identifiers_are_names_and_codes():
    assert identifiers('What does "ERR_4012" mean, and XK-2291-B? See pandas.DataFrame in v2.3.1 of the API.') == [
        "ERR_4012",
        "XK-2291-B",
        "pandas.DataFrame",
        "v2.3.1",
        "API",
    ]
    assert identifiers("what is the state-of-the-art in rotor design") == []


async def test_an_identifier_query_is_won_by_keyword_search(manuals, llm, fake_ollama):
    result = await learn([manuals], llm, collection="manuals", tools=ToolsConfig(), paths=llm.paths)
    assert result.files == 21 and result.chunks == 21
    index = DocumentIndex.for_collection("manuals", llm)
    question = "What does fault code ERR_4012 mean for the rotor?"
    by_meaning = await index.search(question, top_k=21, mode="vector")
    rank = [h.text for h in by_meaning].index(IDENTIFIER_TEXT)
    assert rank >= 10, "the embeddings should rank the code's passage low for this test to mean anything"
    hits = await index.search(question, top_k=4)
    assert hits[0].text == IDENTIFIER_TEXT and hits[0].name == "codes.md"
    assert hits[0].matched == ("identifier", "keyword", "vector")
    assert all("identifier" not in h.matched for h in hits[1:])
    # A question without a code is still answered by meaning (and words) together.
    plain = await index.search("rotor slows in section 7", top_k=2)
    assert plain[0].name == "rotor07.md" and set(plain[0].matched) == {"keyword", "vector"}
    index.close()


async def test_relearning_embeds_only_what_changed_and_forget_embeds_nothing(manuals, llm, fake_ollama):
    tools = ToolsConfig()
    first = await learn([manuals], llm, tools=tools, paths=llm.paths)
    assert first.collection == "notes" and first.report.embedded_chunks == 21 and first.report.embedding_calls == 1
    fake_ollama.clear_requests()
    again = await learn([manuals], llm, tools=tools, paths=llm.paths)
    assert again.report.embedded_chunks == 0 and embed_calls(fake_ollama) == 0 and len(again.report.unchanged) == 21
    (manuals / "rotor03.md").write_text("Rotor section 3 was rewritten.")
    (manuals / "rotor04.md").touch()  # a new mtime, the same content: hashed, not embedded
    (manuals / "rotor05.md").unlink()
    third = await learn([manuals], llm, tools=tools, paths=llm.paths)
    assert third.report.changed == [str(manuals / "rotor03.md")] and third.report.embedded_chunks == 1
    assert third.report.removed == [str(manuals / "rotor05.md")] and embed_calls(fake_ollama) == 1
    fake_ollama.clear_requests()
    gone = forget([manuals / "rotor06.md", manuals / "absent.md"], tools=tools, paths=llm.paths)
    assert gone.removed == [str(manuals / "rotor06.md")] and gone.not_found == [str(manuals / "absent.md")]
    assert gone.files == 19 and embed_calls(fake_ollama) == 0
    (info,) = list_collections(llm.paths)
    assert (info.name, info.kind, info.files, info.chunks, info.embedding_model) == (
        "notes",
        "learned",
        19,
        19,
        "nomic-embed-text",
    )
    with pytest.raises(CollectionError, match="Name the files or folders"):
        await learn([], llm, tools=tools, paths=llm.paths)
    with pytest.raises(CollectionError, match="no such file or folder"):
        await learn([manuals / "nope"], llm, tools=tools, paths=llm.paths)
    assert forget([], everything=True, tools=tools, paths=llm.paths).deleted
    assert list_collections(llm.paths) == []


async def test_another_embedding_model_is_refused_and_says_how_to_reembed(manuals, llm, fake_ollama, tmp_path):
    await learn([manuals / "codes.md"], llm, collection="codes", paths=llm.paths)
    other = LLMClient(LLMConfig(host=fake_ollama.url, max_retries=0, embedding_model="mxbai-embed-large"), paths=llm.paths)
    try:
        index = DocumentIndex.for_collection("codes", other)
        fake_ollama.clear_requests()
        with pytest.raises(EmbeddingModelMismatch) as refused:
            await index.search("ERR_4012")
        message = str(refused.value)
        assert "Collection 'codes' was embedded with 'nomic-embed-text'" in message
        assert "the embedding model now is 'mxbai-embed-large'" in message
        assert "%agent learn --reembed --collection codes" in message and "llm-agent learn --reembed" in message
        assert embed_calls(fake_ollama) == 0  # refused before the question is embedded
        with pytest.raises(EmbeddingModelMismatch):
            await learn([manuals / "rotor01.md"], other, collection="codes", paths=llm.paths)
        # rag_search says so for that collection, and still searches the others.
        tool = RagSearchTool(ToolsConfig(), paths=llm.paths)
        workspace = tmp_path / "ws"
        workspace.mkdir()
        (workspace / "own.md").write_text("The session's own note about ERR_4012.")
        observed = await tool.run("ERR_4012", make_ctx(other, workspace=workspace))
        assert observed.success and "own.md" in observed.observation
        assert "- collection codes: Collection 'codes' was embedded with 'nomic-embed-text'" in observed.observation
        redone = await learn([], other, collection="codes", paths=llm.paths, reembed=True)
        assert redone.report.embedded_chunks == 1
        assert (await DocumentIndex.for_collection("codes", other).search("ERR_4012"))[0].name == "codes.md"
    finally:
        await other.aclose()


async def test_passages_carry_file_page_or_cell_and_range_and_rag_search_cites_them(tmp_path, llm):
    docs = tmp_path / "docs"
    docs.mkdir()
    write_pdf(docs / "report.pdf", ["Page one is about sales."], title="Report")
    # A second page: pypdf reads the pages of a PDF built by merging two one-page files.
    from pypdf import PdfReader, PdfWriter

    write_pdf(tmp_path / "p2.pdf", ["The glacier retreated four kilometres."])
    writer = PdfWriter()
    for part in (docs / "report.pdf", tmp_path / "p2.pdf"):
        for page in PdfReader(part).pages:
            writer.add_page(page)
    with open(docs / "report.pdf", "wb") as handle:  # noqa: ASYNC230  # the test's own fixture file, written before the run
        writer.write(handle)
    notebook = {
        "cells": [
            {"cell_type": "markdown", "source": ["# Analysis\n"]},
            {"cell_type": "code", "source": "df = load('turbines.csv')", "outputs": []},
            {"cell_type": "markdown", "source": "The swallows migrate south in autumn."},
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (docs / "analysis.ipynb").write_text(json.dumps(notebook))
    await learn([docs], llm, collection="trust", paths=llm.paths, tools=ToolsConfig(rag_chunk_size=60, rag_chunk_overlap=0))
    index = DocumentIndex.for_collection("trust", llm, chunk_size=60, chunk_overlap=0)
    glacier = (await index.search("how far did the glacier retreat", 1))[0]
    assert glacier.name == "report.pdf" and glacier.where == "page 2"
    assert glacier.citation() == f"report.pdf, page 2, characters {glacier.position}-{glacier.end}"
    text = "Page one is about sales.\n\nThe glacier retreated four kilometres."
    assert text[glacier.position : glacier.end] == glacier.text
    swallows = (await index.search("when do swallows migrate", 1))[0]
    assert swallows.name == "analysis.ipynb" and swallows.where == "cell 3"

    tool = RagSearchTool(ToolsConfig(rag_top_k=2), paths=llm.paths)
    result = await tool.run("when do swallows migrate", make_ctx(llm))
    lines = result.observation.splitlines()
    assert "Cite each passage you use by its file and place as given" in lines[0]
    assert lines[1].startswith(f"[1] analysis.ipynb, cell 3, characters {swallows.position}-{swallows.end} (matched: ")
    assert lines[1].endswith("; collection trust):")
    assert result.data["hits"][0]["citation"] == swallows.citation()


async def test_unreadable_binary_oversize_and_changing_files_are_skipped_with_a_note(tmp_path, llm, monkeypatch):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text("Readable text.")
    (docs / "blob.txt").write_bytes(b"\x00\x01\x02binary")
    (docs / "huge.md").write_text("word " * 500)
    (docs / "locked.md").write_text("Permission is refused for this one.")
    (docs / "moving.md").write_text("This file is being written while it is read.")
    real_open = index_module.Source.open

    def open_file(self, max_bytes=None):
        if self.path.name == "locked.md":
            raise PermissionError(13, "Permission denied")
        handle = real_open(self, max_bytes)
        if self.path.name == "moving.md":
            with open(self.path, "a") as writer:  # another program appends as we read
                writer.write(" More text.")
        return handle

    monkeypatch.setattr(index_module.Source, "open", open_file)
    result = await learn([docs, tmp_path / "docs" / "good.md"], llm, paths=llm.paths, tools=ToolsConfig(rag_max_file_mb=0.001))
    assert result.files == 1 and result.chunks == 1
    notes = result.report.notes()
    assert "blob.txt: skipped, looks binary, not text" in notes
    assert "huge.md: skipped, larger than 0.001 MB (ToolsConfig.rag_max_file_mb)" in notes
    assert "locked.md: skipped, permission denied" in notes
    assert "moving.md: skipped, it changed while it was being read; learn it again once it is saved" in notes
    assert all(line.startswith("  ") for line in result.lines()[1:]) and len(result.lines()) == 5


# --- the approximate index ----------------------------------------------------------------------------
def synthetic_vectors(n: int, dim: int, seed: int = 7) -> tuple[np.ndarray, list[str]]:
    """Texts from 40 topics of 30 words each (plus common words), embedded by the scripted embedder."""
    rng = random.Random(seed)
    common = [f"common{i}" for i in range(50)]
    topics = [[f"t{t}w{w}" for w in range(30)] for t in range(40)]
    texts = []
    for _ in range(n):
        topic = rng.choice(topics)
        texts.append(" ".join(rng.choices(topic, k=12) + rng.choices(common, k=6)))
    vectors = np.asarray([embed_text(t, dim) for t in texts], dtype="float32")
    return vectors, texts


def recall_at(k: int, exact: VectorStore, approx: VectorStore, queries: np.ndarray) -> float:
    found = 0
    for q in queries:
        truth = {i for i, _ in exact.search(q[None, :], k)}
        found += len(truth & {i for i, _ in approx.search(q[None, :], k)})
    return found / (k * len(queries))


SMALL_GRAPH = Approximate(m=16, ef_construction=40, ef_search=64, threads=1)


def test_the_approximate_index_keeps_recall_against_flat_as_it_grows_and_shrinks():
    vectors, _ = synthetic_vectors(6000, 128)
    ids = np.arange(len(vectors))
    flat = VectorStore(128, approximate_above=10**9)
    approx = VectorStore(128, approximate_above=3000, approximate=SMALL_GRAPH)
    flat.add(ids[:4000], vectors[:4000])
    approx.add(ids[:4000], vectors[:4000])
    assert flat.kind == "flat" and approx.kind == "hnsw" and approx.ntotal == 4000
    queries = vectors[::50] + 0.01
    assert recall_at(4, flat, approx, queries) >= 0.95
    # Incremental: more vectors are linked into the graph, removed ones become tombstones (no rebuild yet).
    flat.add(ids[4000:], vectors[4000:])
    approx.add(ids[4000:], vectors[4000:])
    flat.remove(list(range(0, 1000)))
    approx.remove(list(range(0, 1000)))
    assert approx.kind == "hnsw" and approx.ntotal == 5000 and approx.dead == 1000
    assert recall_at(4, flat, approx, queries) >= 0.95
    removed_ones = vectors[:1000:40]  # asked for exactly, a removed vector is not found: its neighbours are
    assert all(i >= 1000 for q in removed_ones for i, _ in approx.search(q[None, :], 4))
    assert all(i >= 1000 for q in removed_ones for i, _ in approx.search(q[None, :], 50))
    # Saved and read back, it is the same index, tombstones included.
    again = VectorStore.from_bytes(approx.to_bytes(), approximate_above=3000, approximate=SMALL_GRAPH)
    assert again.kind == "hnsw" and again.ntotal == 5000 and again.dead == 1000
    assert again.search(queries[:3], 4) == approx.search(queries[:3], 4)
    assert sorted(again.everything()[0].tolist()) == list(range(1000, 6000))
    # A removal read back from disk works on the copy too.
    again.remove([1000, 1001])
    assert again.ntotal == 4998 and {1000, 1001}.isdisjoint(i for i, _ in again.search(vectors[1000:1001], 10))
    # A quarter of the graph dead: rebuilt from the live vectors, with no tombstones left.
    approx.remove(list(range(1000, 1600)))
    assert approx.kind == "hnsw" and approx.dead == 0 and approx.ntotal == 4400
    flat.remove(list(range(1000, 1600)))
    assert recall_at(4, flat, approx, queries) >= 0.95
    assert sorted(approx.everything()[0].tolist()) == list(range(1600, 6000))
    # Shrunk under half the threshold: exact again.
    approx.remove(list(range(1600, 4600)))
    assert approx.kind == "flat" and approx.ntotal == 1400 and approx.dead == 0
    assert sorted(approx.everything()[0].tolist()) == list(range(4600, 6000))


def test_the_search_parameter_trades_recall_for_work():
    vectors, _ = synthetic_vectors(4000, 128, seed=3)
    flat = VectorStore(128, approximate_above=10**9)
    approx = VectorStore(128, approximate_above=1000, approximate=SMALL_GRAPH)
    for store in (flat, approx):
        store.add(np.arange(len(vectors)), vectors)
    queries = vectors[::40] + 0.01

    def recall(ef: int) -> float:
        found = 0
        for q in queries:
            truth = {i for i, _ in flat.search(q[None, :], 4)}
            found += len(truth & {i for i, _ in approx.search(q[None, :], 4, ef_search=ef)})
        return found / (4 * len(queries))

    assert recall(4) < recall(256) and recall(256) >= 0.95


def test_an_ivf_index_saved_before_hnsw_is_read_into_the_new_index():
    import faiss

    vectors, _ = synthetic_vectors(3000, 64)
    quantizer = faiss.IndexFlatIP(64)
    ivf = faiss.IndexIVFScalarQuantizer(quantizer, 64, 16, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    ivf.by_residual = False
    ivf.train(vectors)
    ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
    ivf.add_with_ids(vectors, np.arange(100, 3100))
    data = faiss.serialize_index(ivf).tobytes()
    store = VectorStore.from_bytes(data, approximate_above=2000, approximate=SMALL_GRAPH)
    assert store.kind == "hnsw" and store.ntotal == 3000
    assert sorted(store.everything()[0].tolist()) == list(range(100, 3100))
    assert store.search(vectors[7:8], 1)[0][0] == 107
    small = VectorStore.from_bytes(data, approximate_above=10_000)
    assert small.kind == "flat" and small.ntotal == 3000


async def test_a_collection_switches_to_the_approximate_index_above_the_configured_size(tmp_path, llm):
    docs = tmp_path / "many"
    docs.mkdir()
    for n in range(60):
        (docs / f"d{n}.txt").write_text(f"Document {n} talks about item{n} and the shared topic.")
    tools = ToolsConfig(rag_approximate_above=40)
    result = await learn([docs], llm, collection="many", tools=tools, paths=llm.paths)
    (info,) = list_collections(llm.paths)
    assert result.chunks == 60 and info.index == "hnsw"
    index = DocumentIndex.for_collection("many", llm, approximate_above=40)
    assert index.index_kind == "hnsw"
    assert (await index.search("what is item17 about", 1))[0].name == "d17.txt"
    index.close()
    # Forgotten files leave the graph as tombstones: never found again, here or read back from disk.
    forget([docs / f"d{n}.txt" for n in range(10)], collection="many", tools=tools, paths=llm.paths)
    index = DocumentIndex.for_collection("many", llm, approximate_above=40)
    assert index.index_kind == "hnsw" and len(index) == 50 and index._vectors is not None
    assert index._vectors.dead == 10 and index._vectors.ntotal == 50
    hits = await index.search("what is item7 about", 50, mode="vector")
    assert len(hits) == 50 and {h.name for h in hits} == {f"d{n}.txt" for n in range(10, 60)}
    index.close()
    forget([docs / f"d{n}.txt" for n in range(10, 45)], collection="many", tools=tools, paths=llm.paths)
    assert list_collections(llm.paths)[0].index == "flat"


async def test_two_learns_of_one_collection_take_turns(manuals, llm, fake_ollama):
    import asyncio

    first, second = await asyncio.gather(*(learn([manuals], llm, collection="shared", paths=llm.paths) for _ in range(2)))
    # The one that waited found the other's work on disk: nothing embedded twice, nothing lost.
    assert sorted([first.report.embedded_chunks, second.report.embedded_chunks]) == [0, 21]
    assert first.chunks == second.chunks == 21 and embed_calls(fake_ollama) == 1


async def test_a_learned_file_swapped_for_a_link_is_dropped_not_followed(manuals, llm, fake_ollama, tmp_path):
    tools = ToolsConfig()
    secret = tmp_path / "secret.md"
    secret.write_text("SECRET_TOKEN=xyz, kept outside every learned folder")
    named = tmp_path / "named.md"
    named.write_text("A file learned by its own name.")
    await learn([manuals, named], llm, tools=tools, paths=llm.paths)
    # Both replaced by links since: one in the learned folder, one learned by its own name.
    for learned in (manuals / "codes.md", named):
        learned.unlink()
        learned.symlink_to(secret)
    fake_ollama.clear_requests()
    other = tmp_path / "other"
    other.mkdir()
    (other / "more.md").write_text("Another folder, learned later.")
    again = await learn([other], llm, tools=tools, paths=llm.paths)  # the files learned earlier are checked again
    assert not any("SECRET_TOKEN" in json.dumps(r.body) for r in fake_ollama.requests)
    assert again.report.skipped == {str(manuals / "codes.md"): "it is a symbolic link", str(named): "it is a symbolic link"}
    assert again.report.removed == [str(manuals / "codes.md"), str(named)] and again.report.added == [str(other / "more.md")]
    chunks = (llm.paths.rag_dir / "notes" / "chunks.jsonl").read_text()
    assert "SECRET_TOKEN" not in chunks and "learned by its own name" not in chunks


async def test_learning_within_a_folder_refuses_what_resolves_outside_it(manuals, llm, fake_ollama, tmp_path):
    root = tmp_path / "served"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "a.md").write_text("Served document.")
    (root / "away").symlink_to(manuals)  # named through a link that leads out
    with pytest.raises(CollectionError, match=r"away is outside .*served; only files under it can be learned"):
        await learn([root / "away"], llm, tools=ToolsConfig(), paths=llm.paths, within=root)
    assert not fake_ollama.requests_for("embed")
    done = await learn([root / "docs"], llm, tools=ToolsConfig(), paths=llm.paths, within=root)
    assert done.report.added == [str(root / "docs" / "a.md")]
