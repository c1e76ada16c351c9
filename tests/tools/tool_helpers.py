"""Helpers for the tool tests: a ToolContext without an agent, and small documents of every type."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from llm_agent_magic.config import AgentConfig
from llm_agent_magic.tools.base import ToolContext


def workspace_of(path: Path, session_id: str = "tools-test") -> SimpleNamespace:
    """What the tools use of a sandbox: its workspace folder and session id (no kernel needed)."""
    return SimpleNamespace(workspace=str(path), session_id=session_id)


def make_ctx(llm=None, *, workspace: Path | None = None, request: str = "question", events: list | None = None) -> ToolContext:
    sink = events if events is not None else []
    return ToolContext(
        llm=llm,
        config=AgentConfig(),
        emit=sink.append,
        request=request,
        sandbox=workspace_of(workspace) if workspace is not None else None,
    )


def write_pdf(path: Path, paragraphs: list[str], title: str = "") -> Path:
    """A valid one-page PDF with one text line per paragraph (Helvetica), built byte by byte."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    lines = ["BT", "/F1 11 Tf", "14 TL", "72 720 Td"]
    for paragraph in paragraphs:
        lines += [f"({escape(paragraph)}) Tj", "T*", "T*"]
    lines.append("ET")
    stream = "\n".join(lines).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    info = b""
    if title:
        objects.append(b"<< /Title (" + escape(title).encode("latin-1") + b") >>")
        info = b" /Info %d 0 R" % len(objects)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, info, xref)
    path.write_bytes(bytes(out))
    return path


def write_docx(path: Path, title: str, paragraphs: list[str], table: list[list[str]] | None = None) -> Path:
    import docx

    document = docx.Document()
    document.add_heading(title, level=1)
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    document.save(str(path))
    return path
