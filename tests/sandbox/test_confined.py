"""``sandbox.inside.confined``: opening files in a folder the sandbox can change, as the sandbox may have left it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llm_agent_magic.exceptions import UnsafePath
from llm_agent_magic.sandbox.inside.confined import list_confined, open_confined, read_confined, write_confined


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "workspace"
    folder.mkdir()
    (folder / "ok.txt").write_text("hello")
    (folder / "sub").mkdir()
    (folder / "sub" / "deep.md").write_text("# deep")
    (tmp_path / "host.txt").write_text("HOST")
    return folder


@pytest.mark.parametrize(
    "plant, relpath, reason",
    [
        (lambda r: (r / "link.txt").symlink_to(r.parent / "host.txt"), "link.txt", "it is a symbolic link"),
        (lambda r: (r / "inner.txt").symlink_to(r / "ok.txt"), "inner.txt", "it is a symbolic link"),
        (lambda r: (r / "dir").symlink_to(r.parent), "dir/host.txt", "it is a symbolic link"),
        (lambda r: os.mkfifo(r / "pipe.txt"), "pipe.txt", "it is a FIFO"),
        (lambda r: os.link(r.parent / "host.txt", r / "hard.txt"), "hard.txt", "it is a hard link"),
        (lambda r: None, "sub", "it is a folder"),
        (lambda r: None, "../host.txt", "leads out of the folder"),
        (lambda r: None, "sub/../../host.txt", "leads out of the folder"),
        (lambda r: None, "/etc/hostname", "absolute path"),
    ],
    ids=["link-out", "link-in", "linked-folder", "fifo", "hard-link", "folder", "dotdot", "dotdot-inside", "absolute"],
)
def test_reads_refuse_anything_but_a_regular_file_inside(root: Path, plant, relpath: str, reason: str) -> None:
    plant(root)
    with pytest.raises(UnsafePath, match=reason) as caught:
        read_confined(root, relpath, 100)
    assert "HOST" not in str(caught.value)
    assert read_confined(root, "sub/deep.md", 100) == b"# deep"


def test_reads_are_bounded(root: Path) -> None:
    with pytest.raises(UnsafePath, match="it is 5 bytes, more than the 4 allowed"):
        read_confined(root, "ok.txt", 4)
    assert read_confined(root, "ok.txt", 4, truncate=True) == b"hell"
    with pytest.raises(FileNotFoundError):
        open_confined(root, "missing.txt")


def test_a_root_that_became_a_link_is_refused(root: Path) -> None:
    moved = root.with_name("moved")
    root.rename(moved)
    root.symlink_to(moved)
    with pytest.raises(UnsafePath, match="is a symbolic link"):
        read_confined(root, "ok.txt", 100)


def test_writes_replace_a_planted_link_and_refuse_a_linked_folder(root: Path) -> None:
    host = root.parent / "host.txt"
    (root / "out.csv").symlink_to(host)
    assert write_confined(root, "out.csv", b"a,b\n") == 4
    assert host.read_text() == "HOST" and not (root / "out.csv").is_symlink()
    assert (root / "out.csv").read_text() == "a,b\n"
    (root / "pushed").symlink_to(root.parent)
    with pytest.raises(UnsafePath, match="is a symbolic link"):
        write_confined(root, "pushed/frame.parquet", lambda fh: fh.write(b"data"))
    assert not (root.parent / "frame.parquet").exists()
    write_confined(root, "new/folder/x.bin", lambda fh: fh.write(b"x"))
    assert (root / "new" / "folder" / "x.bin").read_bytes() == b"x"
    assert not [p for p in root.rglob("*.tmp")]


def test_listing_names_what_it_refuses_and_does_not_enter_links(root: Path) -> None:
    (root / "link.txt").symlink_to(root.parent / "host.txt")
    (root / "outside").symlink_to(root.parent)
    os.mkfifo(root / "pipe.txt")
    (root / ".hidden").write_text("x")
    entries = {e.relpath: e.refused for e in list_confined(root, recursive=True)}
    assert entries == {
        "link.txt": "it is a symbolic link",
        "ok.txt": "",
        "outside": "it is a symbolic link",
        "pipe.txt": "it is a FIFO (named pipe), not a regular file",
        "sub/deep.md": "",
    }
    assert [e.relpath for e in list_confined(root, hidden=True)][0] == ".hidden"
