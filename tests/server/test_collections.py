"""The collections routes: list, learn, show, forget, delete; paths confined to the server's root folder."""

from __future__ import annotations

import json
import os

import pytest
from conftest import body

ROUTES = [
    ("GET", "/llm-agent/api/collections"),
    ("GET", "/llm-agent/api/collections/papers"),
    ("DELETE", "/llm-agent/api/collections/papers"),
    ("POST", "/llm-agent/api/collections/papers/learn"),
    ("POST", "/llm-agent/api/collections/papers/forget"),
    ("POST", "/llm-agent/api/collections"),
]


@pytest.fixture
def docs(jp_root_dir):
    folder = jp_root_dir / "docs"
    folder.mkdir()
    (folder / "codes.md").write_text("# Codes\n\nERR_4012 means the rotor stalled.")
    (folder / "pumps.txt").write_text("The pump in hall 3 runs at 120 litres a minute.")
    return folder


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_collections_route_needs_the_token(api, method, path, docs, data_root):
    payload = '{"paths": ["docs"], "command": "/learn docs"}' if method == "POST" else None
    response = await api(path, method=method, body=payload, auth=False)
    assert response.code == 403, (method, path, response.code)
    assert not (data_root / "rag" / "papers").exists()


async def test_learn_list_show_forget_delete(api, docs, ollama, data_root):
    assert body(await api("/llm-agent/api/collections")) == {"collections": [], "default": "notes"}
    learned = await api("/llm-agent/api/collections/papers/learn", method="POST", body={"paths": ["docs"]})
    assert learned.code == 200, learned.body
    report = body(learned)
    assert report["collection"] == "papers" and report["files"] == 2 and report["chunks"] == 2
    assert sorted(report["added"]) == [str(docs / "codes.md"), str(docs / "pumps.txt")]
    assert report["embedded_chunks"] == 2 and report["embedding_calls"] == 1

    ollama.clear_requests()
    again = body(await api("/llm-agent/api/collections/papers/learn", method="POST", body={"paths": ["docs/"]}))
    assert again["embedded_chunks"] == 0 and len(again["unchanged"]) == 2 and not ollama.requests_for("embed")

    (listed,) = body(await api("/llm-agent/api/collections"))["collections"]
    assert listed["name"] == "papers" and listed["kind"] == "learned" and listed["files"] == 2
    assert listed["embedding_model"] == "nomic-embed-text" and listed["size_bytes"] > 0 and listed["index"] == "flat"
    shown = body(await api("/llm-agent/api/collections/papers"))
    assert shown["sources"] == [str(docs / "codes.md"), str(docs / "pumps.txt")] and shown["roots"] == [str(docs)]

    forgot = body(
        await api("/llm-agent/api/collections/papers/forget", method="POST", body={"paths": ["docs/pumps.txt", "docs/never.md"]})
    )
    assert forgot["removed"] == [str(docs / "pumps.txt")] and forgot["files"] == 1 and forgot["chunks"] == 1
    assert forgot["not_found"] == [str(docs / "never.md")]
    deleted = body(await api("/llm-agent/api/collections/papers", method="DELETE"))
    assert deleted["deleted"] and deleted["removed"] == [str(docs / "codes.md")]
    assert not (data_root / "rag" / "papers").exists()
    missing = await api("/llm-agent/api/collections/papers")
    assert missing.code == 404 and "There is no collection 'papers'" in body(missing)["message"]


async def test_bad_requests_get_messages_a_person_can_act_on(api, docs, jp_root_dir, tmp_path):
    (tmp_path / "secret.md").write_text("not for the server")
    outside = await api("/llm-agent/api/collections/p/learn", method="POST", body={"paths": ["../secret.md"]})
    assert outside.code == 400 and "outside the server's root folder" in body(outside)["message"]
    absolute = await api("/llm-agent/api/collections/p/learn", method="POST", body={"paths": [str(tmp_path)]})
    assert absolute.code == 400
    (jp_root_dir / "link").symlink_to(tmp_path)
    linked = await api("/llm-agent/api/collections/p/learn", method="POST", body={"paths": ["link/secret.md"]})
    assert linked.code == 400 and "outside the server's root folder" in body(linked)["message"]
    shape = await api("/llm-agent/api/collections/p/learn", method="POST", body={"paths": "docs"})
    assert shape.code == 400 and '{"paths": ["docs/", "notes.md"]}' in body(shape)["message"]
    nothing = await api("/llm-agent/api/collections/p/learn", method="POST", body={})
    assert nothing.code == 400 and "Name the files or folders" in body(nothing)["message"]
    missing = await api("/llm-agent/api/collections/p/learn", method="POST", body={"paths": ["nowhere"]})
    assert missing.code == 400 and "no such file or folder" in body(missing)["message"]
    unknown = await api("/llm-agent/api/collections/never/forget", method="POST", body={"paths": ["docs"]})
    assert unknown.code == 404


async def test_another_embedding_model_is_refused_with_the_way_to_reembed(api, docs, jp_serverapp, ollama):
    assert (await api("/llm-agent/api/collections/p/learn", method="POST", body={"paths": ["docs"]})).code == 200
    jp_serverapp.config.LLMConfig.embedding_model = "mxbai-embed-large"
    refused = await api("/llm-agent/api/collections/p/learn", method="POST", body={"paths": ["docs"]})
    assert refused.code == 409
    message = body(refused)["message"]
    assert "was embedded with 'nomic-embed-text'" in message and '{"reembed": true}' in message
    ollama.clear_requests()
    redone = await api("/llm-agent/api/collections/p/learn", method="POST", body={"reembed": True})
    assert redone.code == 200 and body(redone)["embedded_chunks"] == 2
    assert {r.model for r in ollama.requests_for("embed")} == {"mxbai-embed-large"}


async def test_learning_a_folder_follows_no_link_and_reads_no_pipe(api, docs, ollama, data_root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("SECRET_TOKEN=xyz-from-outside-the-root")
    (docs / "leak.md").symlink_to(outside / "secret.md")  # a link out of the server's root
    (docs / "alias.md").symlink_to(docs / "codes.md")  # a link that stays inside is not followed either
    (docs / "linked").symlink_to(outside)  # a linked folder is not walked
    (docs / "deep").mkdir()
    (docs / "deep" / "pumps.md").write_text("Hall 9 has two pumps.")
    os.link(outside / "secret.md", docs / "deep" / "hard.md")  # the outside file under a second name
    os.mkfifo(docs / "pipe.md")  # would block a reader forever
    learned = await api("/llm-agent/api/collections/papers/learn", method="POST", body={"paths": ["docs"]})
    assert learned.code == 200, learned.body
    assert not any("SECRET_TOKEN" in json.dumps(r.body) for r in ollama.requests)  # nothing of it was embedded
    report = body(learned)
    assert sorted(report["added"]) == [str(docs / "codes.md"), str(docs / "deep" / "pumps.md"), str(docs / "pumps.txt")]
    assert report["skipped"] == {
        str(docs / "alias.md"): "it is a symbolic link",
        str(docs / "deep" / "hard.md"): "it is a hard link (the same file has other names, perhaps outside the folder)",
        str(docs / "leak.md"): "it is a symbolic link",
        str(docs / "linked"): "it is a symbolic link",
        str(docs / "pipe.md"): "it is a FIFO (named pipe), not a regular file",
    }
    assert "leak.md: skipped, it is a symbolic link" in report["skipped_notes"]
    assert any(n.startswith("5 entries in the folders not read: links are not followed") for n in report["notes"])
    folder = data_root / "rag" / "papers"
    assert b"Hall 9" in (folder / "chunks.jsonl").read_bytes()  # what was learned is there
    for name in ("keywords.sqlite", "chunks.jsonl"):
        assert b"SECRET_TOKEN" not in (folder / name).read_bytes()
    logged = [p for p in (data_root / "logs").rglob("*") if p.is_file()]
    assert logged and all(b"SECRET_TOKEN" not in p.read_bytes() for p in logged)
    assert all(b"SECRET_TOKEN" not in p.read_bytes() for p in data_root.rglob("*") if p.is_file())
    assert ollama.requests_for("embed")


async def test_the_panels_slash_commands_read_by_the_one_grammar(api, docs, ollama, data_root, tmp_path):
    """``/learn`` and ``/forget`` as typed in the panel: parsed by ``learn_grammar``, worded by ``lines``."""
    learned = await api(
        "/llm-agent/api/collections", method="POST", body={"command": "/learn docs/codes.md docs/pumps.txt --collection papers"}
    )
    assert learned.code == 200, learned.body
    report = body(learned)
    assert report["collection"] == "papers" and report["files"] == 2 and report["embedded_chunks"] == 2
    assert report["lines"] == [
        "Collection 'papers': 2 file(s), 2 chunk(s) (2 added, 0 changed, 0 unchanged, 0 removed; 2 chunk(s) embedded)."
    ]
    default = body(await api("/llm-agent/api/collections", method="POST", body={"command": "/learn docs"}))
    assert default["collection"] == "notes" and (data_root / "rag" / "notes").is_dir()

    forgot = body(
        await api("/llm-agent/api/collections", method="POST", body={"command": "/forget docs/pumps.txt --collection papers"})
    )
    assert forgot["removed"] == [str(docs / "pumps.txt")] and forgot["files"] == 1
    assert forgot["lines"] == ["Collection 'papers': 1 file(s) forgotten; 1 file(s), 1 chunk(s) left."]
    deleted = body(await api("/llm-agent/api/collections", method="POST", body={"command": "/forget --all --collection papers"}))
    assert deleted["deleted"] and not (data_root / "rag" / "papers").exists()

    (tmp_path / "secret.md").write_text("not for the server")
    outside = await api("/llm-agent/api/collections", method="POST", body={"command": "/learn ../secret.md"})
    assert outside.code == 400 and "outside the server's root folder" in body(outside)["message"]
    flag = await api("/llm-agent/api/collections", method="POST", body={"command": "/learn docs --frobnicate"})
    assert flag.code == 400 and "unrecognized arguments: --frobnicate" in body(flag)["message"]
    assert "usage: /learn PATH..." in body(flag)["message"]
    for empty in ("/learn", "/forget --collection papers"):  # answered in the panel's words, not as JSON
        nothing = await api("/llm-agent/api/collections", method="POST", body={"command": empty})
        assert nothing.code == 400 and "Name the files or folders to" in body(nothing)["message"]
        assert f"usage: {empty.split()[0]} PATH..." in body(nothing)["message"]
    other = await api("/llm-agent/api/collections", method="POST", body={"command": "plot the sales"})
    assert other.code == 400 and '{"command": "/learn PATH...' in body(other)["message"]
