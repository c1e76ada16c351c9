"""``%agent learn / forget / collections`` in a real kernel, against the scripted embedder."""

from __future__ import annotations

from magic_helpers import stream, texts


def usage_error(cell) -> str:
    """The message of a UsageError: on stderr, with no traceback and no error output."""
    assert not [o for o in cell.outputs if o.output_type == "error"]
    err = stream(cell, "stderr")
    assert err.startswith("UsageError: ") and "Traceback" not in err
    return err


def embedded(server) -> list[str]:
    return [t for r in server.requests_for("embed") for t in r.body["input"]]


def test_learn_relearn_collections_forget_in_a_notebook(kernel):
    kernel.script({"default": "OK"})
    docs = kernel.folder / "manuals"
    docs.mkdir()
    (docs / "codes.md").write_text("# Codes\n\nERR_4012 means the rotor stalled; reset the controller.")
    (docs / "setup.txt").write_text("Install the turbine firmware before calibration.")
    (docs / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")

    learned = kernel.run("%agent learn manuals --collection plant")
    out = stream(learned)
    # The progress bar: a display of its own, left at its last figures (the kernel client applies the updates).
    assert [t for t in texts(learned) if t.startswith("embedding: [")] == ["embedding: [" + "#" * 30 + "] 2/2 chunks (100%)"]
    assert out.startswith(
        "Collection 'plant': 2 file(s), 2 chunk(s) (2 added, 0 changed, 0 unchanged, 0 removed; 2 chunk(s) embedded)."
    )
    assert "1 file(s) of other types in the folders were left out" in out
    assert sorted(embedded(kernel.server)) == sorted(
        [
            "# Codes\n\nERR_4012 means the rotor stalled; reset the controller.",
            "Install the turbine firmware before calibration.",
        ]
    )

    kernel.server.clear_requests()
    again = stream(kernel.run("%agent learn manuals --collection plant"))
    assert "(0 added, 0 changed, 2 unchanged, 0 removed; 0 chunk(s) embedded)" in again
    assert not kernel.server.requests_for("embed")

    table = texts(kernel.run("%agent collections"))[0]
    header, row = table.splitlines()[:2]
    assert header.split() == [
        "collection",
        "kind",
        "files",
        "chunks",
        "embedding",
        "model",
        "index",
        "size",
        "on",
        "disk",
        "updated",
    ]
    assert row.split()[:6] == ["plant", "learned", "2", "2", "nomic-embed-text", "flat"]
    assert "KB" in row

    out = stream(kernel.run("%agent forget manuals/setup.txt --collection plant"))
    assert out.startswith("Collection 'plant': 1 file(s) forgotten; 1 file(s), 1 chunk(s) left.")
    assert not kernel.server.requests_for("embed")

    # Another embedding model: learning more is refused, with the way to re-embed.
    kernel.run('%config LLMConfig.embedding_model = "mxbai-embed-large"')
    try:
        refused = usage_error(kernel.run("%agent learn manuals --collection plant", raises=True))
        assert "was embedded with 'nomic-embed-text'" in refused
        assert "%agent learn --reembed --collection plant" in refused
        kernel.server.clear_requests()
        out = stream(kernel.run("%agent learn --reembed --collection plant"))
        assert "1 chunk(s) embedded" in out
        assert {r.model for r in kernel.server.requests_for("embed")} == {"mxbai-embed-large"}
    finally:
        kernel.run('%config LLMConfig.embedding_model = "nomic-embed-text"')

    out = stream(kernel.run("%agent forget --all --collection plant"))
    assert out.startswith("Collection 'plant' deleted (1 file(s) forgotten).")
    assert not (kernel.folder / ".llm_agent" / "rag" / "plant").exists()
    assert texts(kernel.run("%agent collections"))[0].startswith("No collections yet")


def test_learn_and_forget_mistakes_are_usage_errors(kernel):
    missing = usage_error(kernel.run("%agent learn nowhere/", raises=True))
    assert "no such file or folder" in missing
    nothing = usage_error(kernel.run("%agent learn", raises=True))
    assert "Name the files or folders to learn" in nothing
    unknown = usage_error(kernel.run("%agent forget a.md --collection never-made", raises=True))
    assert "There is no collection 'never-made'" in unknown
    bad_flag = usage_error(kernel.run("%agent learn a.md --frobnicate", raises=True))
    assert "unrecognized arguments: --frobnicate" in bad_flag


def test_learn_in_a_notebook_follows_no_link_out_of_the_folder(kernel, tmp_path_factory):
    kernel.script({"default": "OK"})
    outside = tmp_path_factory.mktemp("outside")
    (outside / "token.md").write_text("SECRET_TOKEN=xyz-outside-the-folder")
    docs = kernel.folder / "linked-manuals"
    docs.mkdir()
    (docs / "codes.md").write_text("ERR_4012 means the rotor stalled.")
    (docs / "token.md").symlink_to(outside / "token.md")
    (docs / "more").symlink_to(outside)  # a linked folder is not walked
    out = stream(kernel.run("%agent learn linked-manuals --collection links"))
    assert not [t for t in embedded(kernel.server) if "SECRET_TOKEN" in t]
    assert out.startswith("Collection 'links': 1 file(s), 1 chunk(s) (1 added,")
    assert "  token.md: skipped, it is a symbolic link" in out and "  more: skipped, it is a symbolic link" in out
    assert "2 entries in the folders not read: links are not followed" in out
