"""The snapshot catalog and its files are written by the sandbox, so they are hostile input: paths that
leave the folder, devices and FIFOs, parquet that expands beyond memory, names that would break the
kernel, and catalogs of the wrong shape are refused or set aside, never trusted."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from llm_agent_magic.config import PathsConfig, SandboxConfig
from llm_agent_magic.exceptions import SnapshotNotFound
from llm_agent_magic.sandbox import SandboxKernel, SessionPaths, load_variable
from llm_agent_magic.sandbox.inside import snapshots
from llm_agent_magic.sandbox.inside.snapshots import SnapshotWriter


def session(paths: PathsConfig, name: str) -> SessionPaths:
    return SessionPaths.for_session(name, paths).ensure()


def write_catalog(folder: Path, variables: object, **extra: object) -> None:
    (folder / "catalog.json").write_text(json.dumps({"version": 1, "variables": variables, **extra}))


def entry(name: str, kind: str = "json", file: str | None = None) -> dict:
    ext = {"json": ".value.json", "dataframe": ".parquet", "figure": ".png", "ndarray": ".npy"}[kind]
    return {"name": name, "kind": kind, "file": file if file is not None else name + ext}


def test_a_file_outside_the_snapshots_folder_is_not_read(paths: PathsConfig, tmp_path: Path) -> None:
    s = session(paths, "catalog-traversal")
    secret = s.root.parent / "secret.value.json"  # what "../../secret.value.json" names from the folder
    secret.write_text(json.dumps("the user's secret"))
    write_catalog(s.snapshots, {"x": entry("x", file="../../secret.value.json"), "y": entry("y", file=str(secret))})
    for name in ("x", "y"):
        with pytest.raises(SnapshotNotFound, match="not inside the snapshots folder") as caught:
            load_variable("catalog-traversal", name, paths)
        assert "the user's secret" not in str(caught.value)


def test_a_link_in_the_snapshots_folder_is_not_followed(paths: PathsConfig, tmp_path: Path) -> None:
    s = session(paths, "catalog-link")
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps("the user's secret"))
    (s.snapshots / "x.value.json").symlink_to(secret)
    write_catalog(s.snapshots, {"x": entry("x")})
    with pytest.raises(SnapshotNotFound, match="it is a symbolic link"):
        load_variable("catalog-link", "x", paths)


def load_in_a_child(paths: PathsConfig, session_id: str, name: str) -> subprocess.CompletedProcess:
    """``load_variable`` in a child process with 1 GB of address space and a deadline: a read of
    /dev/zero or a FIFO must fail the test, not exhaust the machine or hang the suite."""
    code = (
        "import sys\nfrom llm_agent_magic.config import PathsConfig\nfrom llm_agent_magic.sandbox import load_variable\n"
        "try:\n    load_variable(sys.argv[1], sys.argv[2], PathsConfig(data_root=sys.argv[3]))\n"
        "except KeyError as exc:\n    print('refused:', exc)\n"
    )
    limit = 1024 * 2**20
    return subprocess.run(
        [sys.executable, "-c", code, session_id, name, str(paths.root)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)),
    )


@pytest.mark.parametrize("kind", ["dev-zero", "link-to-dev-zero", "fifo"])
def test_devices_and_fifos_are_refused_without_reading(paths: PathsConfig, kind: str) -> None:
    s = session(paths, f"catalog-{kind}")
    if kind == "dev-zero":
        write_catalog(s.snapshots, {"x": entry("x", kind="figure", file="/dev/zero")})
    elif kind == "link-to-dev-zero":
        (s.snapshots / "x.png").symlink_to("/dev/zero")
        write_catalog(s.snapshots, {"x": entry("x", kind="figure")})
    else:
        os.mkfifo(s.snapshots / "x.value.json")
        write_catalog(s.snapshots, {"x": entry("x")})
    out = load_in_a_child(paths, f"catalog-{kind}", "x")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("refused: No snapshot of 'x'")
    assert {"dev-zero": "not inside the snapshots folder", "link-to-dev-zero": "it is a symbolic link", "fifo": "it is a FIFO"}[
        kind
    ] in out.stdout


def test_parquet_is_checked_against_the_limits_before_it_is_read(paths: PathsConfig) -> None:
    s = session(paths, "catalog-parquet")
    SnapshotWriter(s.snapshots).update(
        {"wide": pd.DataFrame({"z": np.zeros(300_000, dtype="int64")}), "small": pd.DataFrame({"a": range(10)})}
    )
    assert (s.snapshots / "wide.parquet").stat().st_size < 100_000  # small on disk, 2.3 MB in memory
    with pytest.raises(SnapshotNotFound, match="300,000 rows, more than the 1,000 allowed"):
        load_variable("catalog-parquet", "wide", paths, SandboxConfig(snapshot_max_rows=1000))
    with pytest.raises(SnapshotNotFound, match=r"expands to 2\.3 MB, more than the 1 MB allowed"):
        load_variable("catalog-parquet", "wide", paths, SandboxConfig(snapshot_max_mb=1))
    assert len(load_variable("catalog-parquet", "small", paths, SandboxConfig(snapshot_max_rows=1000))) == 10
    assert len(load_variable("catalog-parquet", "wide", paths)) == 300_000  # within the defaults


def test_the_default_limits_are_the_configs() -> None:
    config = SandboxConfig()
    assert snapshots.DEFAULT_MAX_ROWS == config.snapshot_max_rows
    assert snapshots.DEFAULT_MAX_BYTES == int(config.snapshot_max_mb * 2**20)


def test_names_that_would_break_the_kernel_are_refused(paths: PathsConfig) -> None:
    s = session(paths, "catalog-names")
    names = ["__builtins__", "_oh", "get_ipython", "print", "class", "not-a-name"]
    for name in names:
        (s.snapshots / f"{name}.value.json").write_text("1")
    write_catalog(s.snapshots, {name: entry(name) for name in names})
    for name in names:
        with pytest.raises(SnapshotNotFound, match="not a name a snapshot may have"):
            load_variable("catalog-names", name, paths)
    # The writer does not save variables it could never restore, and says why.
    report = SnapshotWriter(s.snapshots).update({"print": 1, "total": 2})
    assert report["written"] == ["total"] and "shadows a Python builtin" in report["not_persisted"]["print"]["reason"]


@pytest.mark.parametrize("text", ["[]", '{"variables": []}', '{"variables": {"x": 5}}', "{not json", "null"])
def test_a_catalog_of_the_wrong_shape_is_set_aside(paths: PathsConfig, text: str) -> None:
    s = session(paths, "catalog-shape")
    for old in s.snapshots.iterdir():
        old.unlink()
    (s.snapshots / "catalog.json").write_text(text)
    with pytest.raises(SnapshotNotFound) as caught:
        load_variable("catalog-shape", "x", paths)
    if text == '{"variables": {"x": 5}}':  # one bad entry: only it is left out
        assert "not a catalog entry" in str(caught.value)
        assert (s.snapshots / "catalog.json").exists()
    else:
        assert "set aside as catalog.json.corrupt-1" in str(caught.value)
        assert (s.snapshots / "catalog.json.corrupt-1").read_text() == text
        assert not (s.snapshots / "catalog.json").exists()


@pytest.mark.slow
def test_a_kernel_starts_with_a_catalog_of_the_wrong_shape(paths: PathsConfig, config_for: Callable[..., SandboxConfig]) -> None:
    s = session(paths, "catalog-list")
    (s.snapshots / "catalog.json").write_text("[]")
    with SandboxKernel("catalog-list", config=config_for("auto"), paths=paths) as sk:
        r = sk.execute("kept = 41 + 1\nprint(kept)")
        assert r.status == "ok" and r.stdout == "42\n", r.text_for_model()
        assert sk.last_restore is not None
        assert "set aside as catalog.json.corrupt-1" in sk.last_restore["failed"]["catalog.json"]
        assert sk.flush_snapshots()
    assert (s.snapshots / "catalog.json.corrupt-1").read_text() == "[]"
    assert load_variable("catalog-list", "kept", paths) == 42  # a new, good catalog


@pytest.mark.slow
def test_a_snapshot_named_builtins_or_a_fifo_does_not_brick_the_session(
    paths: PathsConfig, config_for: Callable[..., SandboxConfig]
) -> None:
    s = session(paths, "catalog-dunder")
    (s.snapshots / "__builtins__.value.json").write_text("1")
    (s.snapshots / "kept.value.json").write_text("7")
    os.mkfifo(s.snapshots / "piped.value.json")  # the restore inside the sandbox would block on it
    write_catalog(s.snapshots, {n: entry(n) for n in ("__builtins__", "kept", "piped")})
    for start in range(2):  # every start of the session, not only the first
        with SandboxKernel("catalog-dunder", config=config_for("auto"), paths=paths) as sk:
            r = sk.execute("print(sum([kept, 1]), len('abc'))")
            assert r.status == "ok" and r.stdout == "8 3\n", r.text_for_model()
            assert sk.last_restore is not None and sk.last_restore["restored"] == ["kept"]
            if start == 0:  # then the kernel's next catalog leaves the entries out
                failed = sk.last_restore["failed"]
                assert "not a name a snapshot may have" in failed["__builtins__"] and "FIFO" in failed["piped"]
    assert json.loads((s.snapshots / "catalog.json").read_text())["variables"].keys() == {"kept"}
