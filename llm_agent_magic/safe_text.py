"""The model's words, made safe to show where the browser trusts what it is given.

A live notebook trusts its outputs: their HTML is not sanitized and runs with the user's Jupyter session.
The model's text (its answers, streamed tokens, thoughts, the errors that quote it, the history) is a
stranger's: a prompt-injected model, or a document it read, chooses it. Raw markdown is never published
for it, because whoever renders that markdown (JupyterLab's marked, nbconvert's mistune, GitHub) may read a
crafted fence or HTML block differently from any check made here. Instead:

1. ``render_markdown`` parses the markdown once, here, with a CommonMark parser (markdown-it-py) that has
   raw HTML turned off (``<img ...>`` in the text stays text), and
2. sanitizes the HTML it wrote with an allow-list (nh3): plain formatting, code, lists, quotes, tables;
   links only to http(s) and mailto; images only carried inline as ``data:image`` (a remote image would make
   the browser fetch what the model chose); no styles but table alignment, no event handlers, no forms,
   frames, SVG or scripts.

``markdown_data`` publishes that HTML with the text itself as ``text/plain``: safe under any renderer,
since neither is markdown. Both steps are linear in the text (markdown-it caps nesting; ammonia is a
linear HTML parser); longer texts than ``MAX_RENDERED_CHARS`` are rendered up to there, with a visible note.

``literal_markdown`` is for the one place model text must be markdown source: a markdown cell of a notebook
written to disk (``llm-agent eval`` records).

Layer 1: every front end and the sandbox's output cleaner may import this module.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import nh3
from markdown_it import MarkdownIt

#: Longer texts are rendered up to here, then a note says what was left out (``text/plain`` keeps all).
MAX_RENDERED_CHARS = 100_000
#: How deep lists and quotes nest before the rest is read as plain text (markdown-it's own bound).
MAX_NESTING = 20

_TAGS = {
    "p",
    "br",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "em",
    "strong",
    "s",
    "del",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "img",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "code": {"class"},
    "th": {"style"},
    "td": {"style"},
}
_LINK_SCHEMES = ("http:", "https:", "mailto:")
_INLINE_IMAGE = re.compile(r"data:image/(?:png|jpeg|gif|webp);base64,[A-Za-z0-9+/=]*\Z", re.IGNORECASE)
_LANGUAGE_CLASS = re.compile(r"language-[A-Za-z0-9_+.#-]{1,40}\Z")


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False, "maxNesting": MAX_NESTING})
    return md.enable(["table", "strikethrough"])


_MARKDOWN = _parser()


def _allowed(tag: str, attribute: str, value: str) -> str | None:
    """Every URL and class the parser wrote, checked once more whatever nh3's scheme list lets through."""
    if attribute == "href":
        return value if value.strip().lower().startswith(_LINK_SCHEMES) else None
    if attribute == "src":
        return value if _INLINE_IMAGE.match(value.strip()) else None
    if attribute == "class":
        return value if _LANGUAGE_CLASS.match(value) else None
    return value


def sanitize(fragment: str) -> str:
    """HTML written by the markdown parser with only the allow-listed, inert part left."""
    return nh3.clean(
        fragment,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        attribute_filter=_allowed,
        url_schemes={"http", "https", "mailto", "data"},
        url_relative="deny",
        filter_style_properties={"text-align"},
        clean_content_tags={"script", "style"},
        strip_comments=True,
        generic_attribute_prefixes=set(),
    )


def render_markdown(text: str) -> str:
    """The model's markdown as sanitized HTML (the module's docstring says what is left)."""
    note = ""
    if len(text) > MAX_RENDERED_CHARS:
        note = (
            f"<p><em>[llm-agent: {len(text) - MAX_RENDERED_CHARS} more characters are not rendered here; "
            "the plain-text view of this output has all of it]</em></p>"
        )
        text = text[:MAX_RENDERED_CHARS]
    return sanitize(_MARKDOWN.render(text)) + note


def markdown_data(text: str, plain: str | None = None) -> dict[str, Any]:
    """A MIME bundle for model text: sanitized ``text/html`` and ``text/plain`` (``plain``, or the text)."""
    return {"text/html": render_markdown(text), "text/plain": text if plain is None else plain}


def literal_markdown(text: str, *, block: bool = True) -> str:
    """Markdown source that every markdown reader shows as ``text``, verbatim and inert.

    A markdown cell is rendered from its source by whoever opens the notebook: JupyterLab sanitizes it,
    but nbconvert's HTML export does not, and no check here can know how each reader reads a crafted fence.
    So the source holds nothing a reader could give a meaning to: every ASCII character but letters, digits
    and spaces, and every other space, separator or control character, becomes a numeric character reference
    (which CommonMark and the others never read as structure).
    A block is a one-line ``<pre>`` (a raw HTML block, or text for readers without raw HTML), which keeps the
    text's lines; ``block=False`` is for a phrase inside a line of markdown we wrote. Either way the text
    cannot become a link, an image, a tag, a heading or a code block; it only loses its own formatting.
    """
    body = "".join(map(_literal, text))
    return f"<pre>{body}</pre>" if block else body


def _literal(c: str) -> str:
    if c.isascii() and (c.isalnum() or c == " "):
        return c
    category = unicodedata.category(c)
    if category in ("Cc", "Cn", "Cs") and c not in "\t\n\r\x0c":
        # HTML has no character for these references (C1 ones would even read as Windows-1252 letters)
        return "&#65533;"
    return f"&#{ord(c)};" if c.isascii() or category[0] in "ZC" else c
