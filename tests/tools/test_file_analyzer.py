"""file_analyzer on every file type it knows, and on the files it must refuse."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
from tool_helpers import make_ctx, write_docx, write_pdf

from llm_agent_magic.config import ToolsConfig
from llm_agent_magic.tools.file_analyzer import FileAnalyzerTool

FRAME = pd.DataFrame({"region": ["north", "south", None, "east"], "price": [10.0, 30.0, 20.0, None], "units": [1, 2, 3, 4]})


@pytest.fixture
def workspace(tmp_path):
    folder = tmp_path / "workspace"
    folder.mkdir()
    return folder


async def analyse(workspace, name: str, **settings) -> str:
    result = await FileAnalyzerTool(ToolsConfig(**settings)).run(name, make_ctx(workspace=workspace))
    return result.observation


@pytest.mark.parametrize("name", ["sales.csv", "sales.tsv", "sales.xlsx", "sales.parquet", "sales.json", "sales.jsonl"])
async def test_tables(workspace, name):
    path = workspace / name
    if name.endswith(".csv"):
        FRAME.to_csv(path, index=False)
    elif name.endswith(".tsv"):
        FRAME.to_csv(path, index=False, sep="\t")
    elif name.endswith(".xlsx"):
        with pd.ExcelWriter(path) as writer:
            FRAME.to_excel(writer, sheet_name="data", index=False)
            FRAME.head(1).to_excel(writer, sheet_name="other", index=False)
    elif name.endswith(".parquet"):
        FRAME.to_parquet(path)
    elif name.endswith(".json"):
        path.write_text(json.dumps({"rows": json.loads(FRAME.to_json(orient="records"))}))
    else:
        FRAME.to_json(path, orient="records", lines=True)
    text = await analyse(workspace, name)
    assert text.startswith(f"{name} (") and "table, 4 rows x 3 columns." in text, text
    assert "Missing values: 2 in total." in text
    columns = text.split("Columns:")[1].split("Missing values")[0]
    assert "region" in columns and "price" in columns and "float64" in columns
    assert "Numeric summary:" in text and "median" in text and "20" in text
    assert "First 4 rows:" in text and "north" in text
    if name.endswith(".xlsx"):
        assert "Sheets: data, other (described: data)." in text


async def test_row_limit_is_reported(workspace):
    pd.DataFrame({"x": range(50)}).to_csv(workspace / "big.csv", index=False)
    text = await analyse(workspace, "big.csv", analyzer_max_rows=10)
    assert "more than 10 rows x 1 columns" in text and "over the first 10 rows" in text


async def test_nested_json_is_outlined(workspace):
    (workspace / "config.json").write_text(json.dumps({"name": "x", "limits": {"cpu": 2}, "tags": ["a"]}))
    text = await analyse(workspace, "config.json")
    assert "JSON, not a table" in text and "object with 3 keys" in text and "limits: object with 1 keys" in text


async def test_markdown_and_text(workspace):
    (workspace / "report.md").write_text(
        "# Report\n\nSales rose in spring.\n\n## Method\n\n- counted\n- summed\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    )
    text = await analyse(workspace, "`report.md`")
    assert "report.md (" in text and "markdown document" in text
    assert "Structure: 2 headings, 1 tables, 2 list items." in text
    assert "Outline:\n  # Report\n  ## Method" in text
    assert "First paragraphs:\n  Sales rose in spring." in text
    (workspace / "run.log").write_text("line one\nline two\n")
    assert "text document, 18 characters" in await analyse(workspace, "run.log")


async def test_pdf_docx_html(workspace):
    write_pdf(workspace / "paper.pdf", ["Abstract: we measured glaciers.", "Results follow."], title="Glaciers")
    text = await analyse(workspace, "paper.pdf")
    assert "pdf document" in text and "Title: Glaciers" in text and "Structure: 1 pages." in text
    assert "Abstract: we measured glaciers." in text
    write_docx(workspace / "memo.docx", "Memo", ["First point.", "Second point."], [["a", "b"], ["1", "2"]])
    text = await analyse(workspace, "memo.docx")
    assert "docx document" in text and "1 headings, 1 tables" in text and "Outline:\n  # Memo" in text
    assert "First paragraphs:\n  First point.\n  Second point." in text
    (workspace / "page.html").write_text("<title>T</title><h1>Top</h1><p>Body text.</p>")
    assert "Outline:\n  # Top" in await analyse(workspace, "page.html")


async def test_malformed_and_binary_files_are_findings(workspace):
    (workspace / "bad.pdf").write_bytes(b"%PDF-1.4 nope")
    assert "bad.pdf (13 bytes): not a readable PDF file" in await analyse(workspace, "bad.pdf")
    (workspace / "bad.xlsx").write_bytes(b"not excel")
    assert "could not be read as xlsx" in await analyse(workspace, "bad.xlsx")
    (workspace / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    assert "a binary file (image/png)" in await analyse(workspace, "image.png")


async def test_finds_by_name_and_refuses_outside_files(workspace, tmp_path):
    (workspace / "sub").mkdir()
    (workspace / "sub" / "Deep.txt").write_text("deep")
    assert "Deep.txt (4 bytes)" in await analyse(workspace, "deep.txt")
    (tmp_path / "secret.txt").write_text("password")
    for name in ("../secret.txt", str(tmp_path / "secret.txt")):
        result = await FileAnalyzerTool().run(name, make_ctx(workspace=workspace))
        assert not result.success and "No file named" in result.observation and "password" not in result.observation
    assert "Files there: Deep.txt" in (await FileAnalyzerTool().run("nope.csv", make_ctx(workspace=workspace))).observation


async def test_links_fifos_and_hard_links_in_the_workspace_are_refused(workspace, tmp_path):
    (tmp_path / "secret.txt").write_text("password")
    (workspace / "inside.txt").write_text("fine")
    (workspace / "outside.txt").symlink_to(tmp_path / "secret.txt")
    (workspace / "alias.txt").symlink_to(workspace / "inside.txt")  # even a link that stays inside
    os.link(tmp_path / "secret.txt", workspace / "hard.txt")
    os.mkfifo(workspace / "pipe.csv")  # would block the reader forever
    for name in ("outside.txt", "alias.txt", "hard.txt", "pipe.csv"):
        text = await analyse(workspace, name)
        assert "password" not in text and "fine" not in text
        assert f"Refused to read '{name}'" in text, text
    assert "inside.txt (4 bytes): text document" in await analyse(workspace, "inside.txt")


async def test_configured_folders_are_read_without_following_links(workspace, tmp_path):
    (tmp_path / "secret.txt").write_text("password")
    folder = tmp_path / "shared"
    (folder / "deep").mkdir(parents=True)
    (folder / "deep" / "notes.txt").write_text("fine")
    (folder / "outside.txt").symlink_to(tmp_path / "secret.txt")
    (folder / "alias.txt").symlink_to(folder / "deep" / "notes.txt")  # even a link that stays inside
    (folder / "linked").symlink_to(tmp_path)  # a linked folder is not walked: secret.txt is not found through it
    os.link(tmp_path / "secret.txt", folder / "hard.txt")
    os.mkfifo(folder / "pipe.csv")  # opening it to read blocked the tool forever
    for name in ("outside.txt", "alias.txt", "hard.txt", "pipe.csv"):
        text = await analyse(workspace, name, rag_folders=[str(folder)])
        assert "password" not in text and "fine" not in text
        assert f"Refused to read '{name}'" in text, text
    missing = await analyse(workspace, "secret.txt", rag_folders=[str(folder)])
    assert "No file named 'secret.txt'" in missing and "password" not in missing
    assert "notes.txt (4 bytes): text document" in await analyse(workspace, "notes.txt", rag_folders=[str(folder)])
