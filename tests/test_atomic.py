"""``llm_agent_magic.atomic``: every parent-side writer replaces files through it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from llm_agent_magic import atomic
from llm_agent_magic.sandbox.inside import atomic as inside_atomic


def test_text_and_bytes_replace_the_file_and_leave_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    atomic.write_text(target, '{"a": 1}\n')
    assert target.read_text() == '{"a": 1}\n'
    atomic.write_bytes(target, b"\x00\x01", fsync=True)
    assert target.read_bytes() == b"\x00\x01"
    atomic.write_text(target, lambda fh: fh.write("from a writer"))
    assert target.read_text() == "from a writer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_mode_is_private_unless_asked(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        atomic.write_text(tmp_path / "private", "x")
        atomic.write_text(tmp_path / "shared", "x", mode=0o666)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "shared").stat().st_mode) == 0o644


def test_a_failed_write_keeps_the_old_file_and_removes_the_temp(tmp_path: Path) -> None:
    target = tmp_path / "index.bin"
    target.write_bytes(b"old")

    def fail(fh: object) -> None:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic.write_bytes(target, fail)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.bin"]


def test_a_link_at_the_target_is_replaced_not_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (tmp_path / "state.json").symlink_to(victim)
    atomic.write_text(tmp_path / "state.json", "{}")
    assert victim.read_text() == "keep me"
    assert not (tmp_path / "state.json").is_symlink()


def test_the_sandbox_side_copy_writes_through_a_path(tmp_path: Path) -> None:
    target = tmp_path / "catalog.json"
    inside_atomic.write_atomic(target, lambda tmp: Path(tmp).write_text("{}"))
    assert target.read_text() == "{}"

    def half_written(tmp: str) -> None:
        Path(tmp).write_text("{")
        raise ValueError("cannot encode")

    with pytest.raises(ValueError):
        inside_atomic.write_atomic(target, half_written)
    assert target.read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalog.json"]
