"""HTML made inert, with one allow-list: what the sandbox displays, and the HTML of generated cells' outputs.

Here (layer 1) so that every front end may use it without reaching into the sandbox: the sandbox cleans its
outputs with it before any front end sees them (``sandbox/untrusted.py``), and ``cells.py`` cleans again the
outputs it renders as HTML. ``nh3`` (ammonia, a linear HTML parser) keeps tables, images, links and plain
formatting; scripts, styles, event handlers, forms, frames and ``javascript:`` links go. Images only from
``data:`` URLs, so a display cannot make the browser fetch; links only to http(s) and mailto. The patterns
run on RE2 (``linear_regex``): what they read is a stranger's.
"""

from __future__ import annotations

import nh3

from .linear_regex import SPACE, linear

BINARY_IMAGES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp")
_BASE64 = linear(rf"[A-Za-z0-9+/={SPACE}]*")
_DATA_IMAGE = linear(r"(?i)data:image/(?:png|jpeg|gif|webp|bmp|svg\+xml)(?:;base64)?,")
_LINK_SCHEMES = frozenset({"http", "https", "mailto"})
_SCHEME = linear(r"([a-z][a-z0-9+.\-]*):")

_HTML_TAGS = set(nh3.ALLOWED_TAGS) - {"map", "area"}  # image maps: links nobody needs in an output
_HTML_ATTRIBUTES: dict[str, set[str]] = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
# pandas marks its tables with classes (dataframe, row_heading, ...); elsewhere a class could dress an output
# up as part of JupyterLab itself.
for _tag in ("table", "thead", "tbody", "tr", "th", "td"):
    _HTML_ATTRIBUTES.setdefault(_tag, set()).update({"class", "style"})
for _tag in ("div", "span", "p", "code", "pre"):
    _HTML_ATTRIBUTES.setdefault(_tag, set()).add("style")
_HTML_ATTRIBUTES["table"].add("border")
_HTML_ATTRIBUTES["*"] = {"title", "lang", "dir"}
_STYLE_PROPERTIES = {
    "text-align",
    "vertical-align",
    "color",
    "background-color",
    "font-weight",
    "font-style",
    "font-size",
    "font-family",
    "text-decoration",
    "white-space",
    "width",
    "min-width",
    "max-width",
    "height",
    "padding",
    "padding-left",
    "padding-right",
    "padding-top",
    "padding-bottom",
    "border",
    "border-collapse",
    "border-top",
    "border-bottom",
    "border-left",
    "border-right",
    "border-spacing",
}


def _url_allowed(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "src":
        return value if tag == "img" and _DATA_IMAGE.match(value.strip()) else None
    if attribute in ("href", "cite"):
        scheme = _SCHEME.match(value.strip().lower())
        return value if scheme and scheme.group(1) in _LINK_SCHEMES else None
    return value


def clean_html(text: str) -> str:
    """``text`` with only inert HTML left (see the module's docstring)."""
    return nh3.clean(
        text,
        tags=_HTML_TAGS,
        attributes=_HTML_ATTRIBUTES,
        attribute_filter=_url_allowed,
        url_schemes=set(_LINK_SCHEMES) | {"data"},
        url_relative="deny",
        filter_style_properties=_STYLE_PROPERTIES,
        clean_content_tags={"script", "style"},
    )


def is_base64(text: str) -> bool:
    """Only base64 characters: safe inside a ``data:`` URL in an attribute."""
    return _BASE64.fullmatch(text) is not None
