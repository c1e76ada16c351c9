"""Snapshot round trips for each supported type, change detection, and what is refused (never pickle)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from llm_agent_magic.config import PathsConfig, SandboxConfig
from llm_agent_magic.sandbox import SandboxKernel
from llm_agent_magic.sandbox.inside.snapshots import SnapshotWriter, load, read_catalog, restore_into


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "city": ["Oslo", "Lima", "Pune"],
            "sales": [1.5, np.nan, 3.25],
            "units": np.array([1, 2, 3], dtype="int32"),
            "when": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
            "kind": pd.Categorical(["a", "b", "a"]),
            "ok": [True, False, True],
        },
        index=pd.Index(["r1", "r2", "r3"], name="row"),
    )


ROUND_TRIPS = {
    "df": frame(),
    "series": pd.Series([1.0, 2.5, None], name="price"),
    "unnamed": pd.Series(["x", "y"]),
    "matrix": np.arange(12, dtype="float32").reshape(3, 4),
    "flags": np.array([True, False]),
    "stamps": np.array(["2024-01-01", "2024-06-30"], dtype="datetime64[D]"),
    "n": 42,
    "ratio": 0.25,
    "label": "héllo",
    "nothing": None,
    "yes": True,
    "items": [1, "two", [3.0, None], {"k": "v"}],
    "pair": (1, "b"),
    "config": {"depth": 3, "names": ["a", "b"], "nested": {"x": 1.5}},
    "empty": [],
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "snapshots"


def write(folder: Path, variables: dict) -> dict:
    folder.mkdir(exist_ok=True)
    return SnapshotWriter(folder).update(variables)


def test_round_trip_of_each_supported_type(folder: Path) -> None:
    report = write(folder, ROUND_TRIPS)
    assert sorted(report["written"]) == sorted(ROUND_TRIPS) and not report["not_persisted"]
    for name, value in ROUND_TRIPS.items():
        back = load(name, folder)
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(back, value)
        elif isinstance(value, pd.Series):
            pd.testing.assert_series_equal(back, value)
        elif isinstance(value, np.ndarray):
            np.testing.assert_array_equal(back, value)
            assert back.dtype == value.dtype
        else:
            assert back == value and type(back) is type(value), name
    assert not list(folder.glob("*.pkl")) and not list(folder.glob("*.tmp"))


def test_catalog_says_what_each_snapshot_is_and_how_to_load_it(folder: Path) -> None:
    write(folder, {"df": frame(), "matrix": np.zeros((2, 2))})
    catalog = json.loads((folder / "catalog.json").read_text())
    df = catalog["variables"]["df"]
    assert df["kind"] == "dataframe" and df["type"] == "pandas.DataFrame" and df["shape"] == [3, 6]
    assert df["file"] == "df.parquet" and df["bytes"] > 0 and df["time"].endswith("Z")
    assert df["load"] == "pandas.read_parquet('df.parquet')"
    assert catalog["variables"]["matrix"]["load"] == "numpy.load('matrix.npy', allow_pickle=False)"


def test_figure_is_saved_as_png(folder: Path) -> None:
    fig = Figure()
    fig.add_subplot().plot([1, 2, 3])
    report = write(folder, {"fig": fig})
    assert report["written"] == ["fig"]
    assert load("fig", folder)[:8] == b"\x89PNG\r\n\x1a\n"
    ns: dict = {}
    assert restore_into(ns, folder)["failed"] == {"fig": "figures are kept as PNG images only"}


@pytest.mark.parametrize(
    "value, reason",
    [
        (np.array([object(), 1], dtype=object), "without pickle"),
        ({1: "a"}, "dict keys are not all strings"),
        ({"a"}, "no pickle-free format"),
        (np.float64(1.5), "not a plain JSON value"),
        (pd.DataFrame({0: [1]}), "string column names"),
        (object(), "no pickle-free format"),
    ],
    ids=["object-array", "int-keys", "set", "numpy-scalar", "int-columns", "object"],
)
def test_unsupported_values_are_listed_with_the_reason(folder: Path, value: object, reason: str) -> None:
    report = write(folder, {"thing": value})
    assert report["written"] == []
    assert reason in report["not_persisted"]["thing"]["reason"]
    assert read_catalog(folder)["not_persisted"]["thing"]["reason"] == report["not_persisted"]["thing"]["reason"]
    with pytest.raises(KeyError, match="It was not saved"):
        load("thing", folder)


def test_unchanged_variables_are_not_rewritten(folder: Path) -> None:
    big = pd.DataFrame(np.random.default_rng(0).random((50_000, 4)), columns=list("abcd"))
    values = {"big": big, "n": 1, "arr": np.arange(10)}
    folder.mkdir()
    writer = SnapshotWriter(folder)
    writer.update(values)
    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    report = writer.update(values)
    assert report["written"] == [] and sorted(report["unchanged"]) == ["arr", "big", "n"]
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == mtimes  # catalog untouched too

    big.iloc[31_337, 2] = -1.0  # one cell, in place, far from the sampled rows
    values["n"] = 2
    report = writer.update(values)
    assert sorted(report["written"]) == ["big", "n"]
    assert load("big", folder).iloc[31_337, 2] == -1.0

    # A fresh writer (a restarted kernel) trusts the catalog's fingerprints.
    assert SnapshotWriter(folder).update(values)["written"] == []


def test_deleted_variables_leave_the_catalog(folder: Path) -> None:
    write(folder, {"a": 1, "b": 2})
    report = SnapshotWriter(folder).update({"a": 1})
    assert report["removed"] == ["b"]
    assert not (folder / "b.value.json").exists()
    assert list(read_catalog(folder)["variables"]) == ["a"]


def test_restore_into_a_namespace(folder: Path) -> None:
    write(folder, {"df": frame(), "pair": (1, 2)})
    ns: dict = {}
    report = restore_into(ns, folder)
    assert sorted(report["restored"]) == ["df", "pair"] and report["failed"] == {}
    pd.testing.assert_frame_equal(ns["df"], frame())
    assert ns["pair"] == (1, 2)


@pytest.fixture(scope="module")
def sk(paths: PathsConfig, config_for: Callable[..., SandboxConfig]) -> Iterator[SandboxKernel]:
    kernel = SandboxKernel("snapshots-in-kernel", config=config_for("auto"), paths=paths)
    kernel.start()
    yield kernel
    kernel.shutdown()


@pytest.mark.slow
def test_the_kernel_snapshots_only_what_changed(sk: SandboxKernel) -> None:
    r = sk.execute("import pandas as pd\ndf = pd.DataFrame({'a': range(1000)})\ntotal = 0\ngen = (i for i in [])")
    assert sorted(r.snapshot["written"]) == ["df", "total"]
    assert "generator" in r.snapshot["not_persisted"]["gen"]["type"]
    folder = Path(sk.snapshots_dir)
    assert sk.flush_snapshots()
    before = (folder / "df.parquet").stat().st_mtime_ns
    r = sk.execute("total = int(df.a.sum())")
    assert r.snapshot["written"] == ["total"] and "df" in r.snapshot["unchanged"]
    assert sk.flush_snapshots()
    assert (folder / "df.parquet").stat().st_mtime_ns == before
    r = sk.execute("df.loc[500, 'a'] = -1")
    assert r.snapshot["written"] == ["df"]
    assert sk.load("df").loc[500, "a"] == -1 and sk.load("total") == 499500
    r = sk.execute("raise RuntimeError('no snapshot after a failure')\n")
    assert r.status == "error" and r.snapshot is None


def test_background_writes_keep_the_state_at_the_end_of_the_cell(folder: Path) -> None:
    folder.mkdir()
    writer = SnapshotWriter(folder, background=True)
    df = pd.DataFrame({"a": np.arange(100_000)})
    report = writer.update({"df": df, "n": 1})
    assert report["pending"] == ["df"] and sorted(report["written"]) == ["df", "n"]
    df.loc[0, "a"] = -5  # the next cell changes it before the write may have finished (copy-on-write)
    writer.flush()
    assert load("df", folder).loc[0, "a"] == 0
    assert writer.update({"df": df, "n": 1})["pending"] == ["df"]
    writer.update({"n": 1})  # deleted while its write is still queued or running
    writer.close()
    assert "df" not in read_catalog(folder)["variables"] and not (folder / "df.parquet").exists()
    assert not list(folder.glob("*.tmp"))
