"""Outputs from the sandbox are a stranger's upload: made inert here, before any front end sees them.

JupyterLab renders the outputs of a live session as trusted: their HTML is not sanitized and their
scripts run with the user's Jupyter session, which can start kernels. So nothing the sandbox displays
reaches a notebook as it came. ``clean_output`` keeps an allowlist of inert MIME types and cleans each:

- ``text/html``: sanitized by ``nh3`` (ammonia): tables, images, links and plain formatting stay; scripts,
  styles, event handlers, forms, frames and ``javascript:`` links go. Images only from ``data:`` URLs, so a
  display cannot make the browser fetch (the sandbox has no network; its outputs get none either).
- ``image/svg+xml``: the same sanitizer with SVG's drawing elements, no scripts, no external references.
- ``text/markdown``: rendered here to HTML and sanitized (``safe_text.render_markdown``, the same path as the
  model's text), published as ``text/html``; markdown itself never leaves, since another markdown reader
  could read a crafted fence differently. A display that has its own ``text/html`` keeps that one.
- ``text/latex`` without the commands that make links or HTML; images as base64; ``application/json``.

Everything else (``application/javascript``, widget views, Vega, Plotly, this project's own cells bundle,
...) is dropped, and an output left with nothing shows a note saying what was removed. Output metadata
keeps only display hints (size, background). ``clean_html`` (``safe_html.py``, where every front end may use
it) is also used for the HTML of the generated cells' outputs that the agent shows.
"""

from __future__ import annotations

import json
import re
import xml.dom.minidom
from typing import Any

import nh3

from ..linear_regex import SPACE, linear
from ..safe_html import BINARY_IMAGES, clean_html, is_base64
from ..safe_text import render_markdown

__all__ = [
    "BINARY_IMAGES",
    "SAFE_MIME",
    "clean_bundle",
    "clean_data",
    "clean_html",
    "clean_latex",
    "clean_metadata",
    "clean_svg",
    "data_size",
    "is_base64",
    "removed_note",
]

SAFE_MIME = frozenset(
    {
        "text/plain",
        "text/html",
        "text/markdown",
        "text/latex",
        "application/json",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/bmp",
        "image/svg+xml",
    }
)
# --- SVG --------------------------------------------------------------------------------------------------

SVG_NS = "http://www.w3.org/2000/svg"
_SVG_TAGS = {
    "svg",
    "g",
    "defs",
    "symbol",
    "use",
    "path",
    "rect",
    "circle",
    "ellipse",
    "line",
    "polyline",
    "polygon",
    "text",
    "tspan",
    "title",
    "desc",
    "clipPath",
    "mask",
    "marker",
    "pattern",
    "linearGradient",
    "radialGradient",
    "stop",
}
#: Presentation properties an SVG may set, as attributes and in ``style``.
_SVG_PAINT = {
    "fill",
    "fill-opacity",
    "fill-rule",
    "stroke",
    "stroke-width",
    "stroke-opacity",
    "stroke-linecap",
    "stroke-linejoin",
    "stroke-dasharray",
    "stroke-dashoffset",
    "stroke-miterlimit",
    "opacity",
    "clip-path",
    "font-family",
    "font-size",
    "font-weight",
    "font-style",
    "text-anchor",
    "dominant-baseline",
    "stop-color",
    "stop-opacity",
}
_SVG_ATTRIBUTES = {
    "*": _SVG_PAINT
    | {
        "id",
        "class",
        "style",
        "transform",
        "x",
        "y",
        "x1",
        "y1",
        "x2",
        "y2",
        "cx",
        "cy",
        "r",
        "rx",
        "ry",
        "width",
        "height",
        "d",
        "points",
        "viewBox",
        "preserveAspectRatio",
        "clip-rule",
        "mask",
        "marker-start",
        "marker-mid",
        "marker-end",
        "alignment-baseline",
        "dx",
        "dy",
        "rotate",
        "offset",
        "gradientUnits",
        "gradientTransform",
        "patternUnits",
        "patternTransform",
        "clipPathUnits",
        "markerWidth",
        "markerHeight",
        "markerUnits",
        "refX",
        "refY",
        "orient",
        "version",
        "xml:space",
        "href",
        "xlink:href",
    },
    "svg": {"xmlns"},
}
_SVG_STYLE_PROPERTIES = _SVG_PAINT | {"white-space"}
_LOCAL_REFERENCE = re.compile(r"#[A-Za-z_][\w.\-]*")
# RE2 (``url(`` repeated in an attribute made ``re`` quadratic); the quotes are spelled out, RE2 has no ``\1``.
_URL_FUNCTION = linear(rf"(?i)url\([{SPACE}]*(?:'(.*?)'|\"(.*?)\"|(.*?))[{SPACE}]*\)")


def _svg_value_allowed(tag: str, attribute: str, value: str) -> str | None:
    if attribute in ("href", "xlink:href"):
        return value if _LOCAL_REFERENCE.fullmatch(value.strip()) else None
    if "\\" in value:  # CSS escapes could spell url( past the check below
        return None
    # clip-path="url(#id)" and the like may point inside the drawing, never outside it.
    for function in _URL_FUNCTION.finditer(value):
        target = next((part for part in function.groups() if part is not None), "")
        if not _LOCAL_REFERENCE.fullmatch(target.strip()):
            return None
    if "url(" in value.lower() and not _URL_FUNCTION.search(value):
        return None
    return value


def clean_svg(text: str) -> str | None:
    """The drawing of ``text`` without scripts or external references, as an SVG document; None if none is left."""
    cleaned = nh3.clean(
        text,
        tags=_SVG_TAGS,
        attributes=_SVG_ATTRIBUTES,
        attribute_filter=_svg_value_allowed,
        url_schemes=set(),
        url_relative="pass_through",
        filter_style_properties=_SVG_STYLE_PROPERTIES,
        link_rel=None,
        clean_content_tags={"script", "style", "foreignObject", "metadata"},
    ).strip()
    # ammonia keeps xlink:href but drops the declaration of its prefix; SVG 2 reads plain href the same way.
    cleaned = cleaned.replace(" xlink:href=", " href=")
    if not cleaned.startswith("<svg"):
        return None
    if f'xmlns="{SVG_NS}"' not in cleaned.split(">", 1)[0]:
        cleaned = f'<svg xmlns="{SVG_NS}"' + cleaned[4:]
    try:  # an SVG is shown as an image, which must be well-formed XML
        xml.dom.minidom.parseString(cleaned)
    except Exception:  # noqa: BLE001  # hostile markup: whatever the parser raises, the SVG is refused
        return None
    return cleaned


# --- LaTeX, images, JSON ----------------------------------------------------------------------------------

_LATEX_ACTIVE = re.compile(r"\\(?:href|url|html|class|style|cssId|data|unicode|require|mmlToken|input|include)\b")


def clean_latex(text: str) -> str | None:
    """``text`` if it only typesets; None if it could link, load or write HTML."""
    return None if _LATEX_ACTIVE.search(text) else text


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)  # nbformat allows multi-line strings as lists
    return None


def clean_data(data: Any) -> tuple[dict[str, Any], list[str]]:
    """(the inert part of a MIME bundle, the MIME types removed)."""
    if not isinstance(data, dict):
        return {}, ["a malformed MIME bundle"]
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for mime, value in data.items():
        clean: Any = None
        if mime == "application/json":
            clean = value
        elif mime in SAFE_MIME and (text := _text(value)) is not None:
            if mime in BINARY_IMAGES:
                clean = text if is_base64(text) else None
            elif mime == "text/html":
                clean = clean_html(text)
            elif mime == "text/markdown":
                if "text/html" not in data:
                    kept["text/html"] = render_markdown(text)
                continue
            elif mime == "image/svg+xml":
                clean = clean_svg(text)
            elif mime == "text/latex":
                clean = clean_latex(text)
            else:
                clean = text
        if clean is None:
            dropped.append(str(mime))
        else:
            kept[str(mime)] = clean
    return kept, dropped


_DISPLAY_HINTS = {"width", "height", "unconfined", "needs_background", "expanded", "alt"}


def clean_metadata(metadata: Any) -> dict[str, Any]:
    """Display hints only (image size, background), each a plain value; e.g. no ``isolated`` iframes."""
    if not isinstance(metadata, dict):
        return {}
    kept: dict[str, Any] = {}
    for key, value in metadata.items():
        if key in _DISPLAY_HINTS and isinstance(value, (str, int, float, bool)):
            kept[key] = value
        elif key in SAFE_MIME and isinstance(value, dict):
            hints = {k: v for k, v in value.items() if k in _DISPLAY_HINTS and isinstance(v, (str, int, float, bool))}
            if hints:
                kept[key] = hints
    return kept


def removed_note(dropped: list[str]) -> str:
    return f"[llm-agent: removed output the notebook must not run or trust: {', '.join(sorted(set(dropped)))}]"


def clean_bundle(data: Any, metadata: Any) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(data, metadata, removed MIME types) of one display; data is never empty (a note replaces what went)."""
    kept, dropped = clean_data(data)
    if not kept:
        kept = {"text/plain": removed_note(dropped) if dropped else ""}
    return kept, clean_metadata(metadata), dropped


def data_size(data: dict[str, Any]) -> int:
    """Characters a MIME bundle takes (what it costs to keep, store and show)."""
    return sum(len(v) if isinstance(v, str) else len(json.dumps(v, default=str)) for v in data.values())
