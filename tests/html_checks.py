"""What in rendered output would run or fetch in a browser: the check the trust-boundary tests share."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from llm_agent_magic.cells import CELLS_MIME

ACTIVE_TAGS = ("script", "iframe", "object", "embed", "style", "link", "form", "base", "meta")


class _Active(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ACTIVE_TAGS:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            value = (value or "").strip().lower()
            if name.startswith("on") or value.startswith(("javascript:", "vbscript:", "data:text")):
                self.found.append(f"<{tag} {name}={value}>")
            if name == "src" and not value.startswith("data:image/"):
                self.found.append(f"<{tag} src={value}>")


def active_html(html: str) -> list[str]:
    """Tags, handlers and URLs in ``html`` that would run script or fetch something."""
    parser = _Active()
    parser.feed(html)
    return parser.found


def active_parts(outputs: list[dict[str, Any]]) -> list[str]:
    """Active HTML in every output a browser would render as HTML, and every MIME type that is not plain
    text, HTML or an image (``text/markdown`` too: each markdown reader may read a crafted fence its own
    way, so nothing published may be markdown); the cells bundle's outputs are checked too."""
    found = []
    for out in outputs:
        for mime, value in out.get("data", {}).items():
            if mime == CELLS_MIME:
                found += active_parts([o for cell in value["cells"] for o in cell["outputs"]])
            elif mime in ("text/html", "image/svg+xml"):
                found += active_html(value)
            elif mime not in ("text/plain", "image/png"):
                found.append(mime)
    return found
