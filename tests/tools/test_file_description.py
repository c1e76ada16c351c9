"""The description of an attached table the model plans with: dtypes, rows and missing values."""

from __future__ import annotations

from llm_agent_magic.tools import files
from llm_agent_magic.tools.files import describe_file


def test_a_small_table_is_described_from_the_whole_file(tmp_path):
    path = tmp_path / "scores.csv"
    path.write_text("id,score\n" + "".join(f"{i},{i * 2}\n" for i in range(300)) + "300,n/a\n301,\n")
    described = describe_file(path.parent, path.name)
    # Rows 300 and 301 are missing: the dtype is the whole file's (float64), not the first 200 rows' (int64).
    assert described.startswith("scores.csv (2,257 bytes); columns: id (int64), score (float64)\n")
    assert "\n  302 rows; missing values: score 2\n  first rows:\n" in described


def test_a_table_without_missing_values_says_none(tmp_path):
    path = tmp_path / "sales.csv"
    path.write_text("region,price\nnorth,10\nsouth,30\n")
    assert describe_file(path.parent, path.name).splitlines()[1] == "  2 rows; missing values: none"


def test_a_large_table_is_described_from_its_first_rows_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "WHOLE_TABLE_BYTES", 1000)
    path = tmp_path / "big.csv"
    path.write_text("x,y\n" + "".join(f"{i},\n" if i == 5 else f"{i},{i}\n" for i in range(1000)))
    assert describe_file(path.parent, path.name).splitlines()[1] == (
        "  more than 200 rows (too large to count here); dtypes and missing values from the first 200 rows "
        "only (the file is larger than 0.001 MB); missing values there: y 1"
    )
