"""The model's text in trusted outputs: rendered once here, sanitized, published as HTML and plain text only.

Each crafted text is checked on what a browser would get: the published HTML, parsed with an HTML parser,
holds no element, handler or URL that could run script or fetch. Properties (hypothesis) mix fences, lists,
quotes, HTML blocks and entities; the examples are the variants an attacker tries first.
"""

from __future__ import annotations

import html
import subprocess
import sys
import unicodedata
from html.parser import HTMLParser

import mistune
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from llm_agent_magic.safe_text import MAX_NESTING, MAX_RENDERED_CHARS, literal_markdown, markdown_data, render_markdown

#: The answer of issue 19: the closing fence is followed by a tab, which marked does not take as a close.
PAYLOAD = 'Result:\n\n```\nx\n```\t\n\n```\n<img src=x onerror="window.__pwned=1">\n```'
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
ACTIVE_TAGS = {
    "script",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "form",
    "input",
    "button",
    "textarea",
    "select",
    "style",
    "link",
    "meta",
    "base",
    "svg",
    "math",
    "template",
    "video",
    "audio",
    "source",
    "details",
}
LINK_SCHEMES = ("http://", "https://", "mailto:")


class _Active(HTMLParser):
    """Everything in an HTML fragment that could run, fetch or restyle the page; parsed as a browser would."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ACTIVE_TAGS:
            self.found.append(f"<{tag}>")
        for name, raw in attrs:
            value = "".join((raw or "").split()).lower()  # browsers skip whitespace and controls in URLs
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}>")
            elif name == "href" and not (tag == "a" and value.startswith(LINK_SCHEMES)):
                self.found.append(f"<{tag} href={value}>")
            elif name == "src" and not (tag == "img" and value.startswith("data:image/")):
                self.found.append(f"<{tag} src={value}>")
            elif name == "style" and not (tag in ("th", "td") and value.startswith("text-align:")):
                self.found.append(f"<{tag} style={value}>")
            elif name in ("action", "formaction", "srcset", "background", "poster", "data", "xlink:href", "class") and not (
                name == "class" and tag == "code" and value.startswith("language-")
            ):
                self.found.append(f"<{tag} {name}={value}>")

    handle_startendtag = handle_starttag


def active(fragment: str) -> list[str]:
    parser = _Active()
    parser.feed(fragment)
    parser.close()
    return parser.found


def published(text: str) -> str:
    """The HTML a trusted output gets for ``text``, after checking the bundle holds nothing else."""
    data = markdown_data(text)
    assert set(data) == {"text/html", "text/plain"} and data["text/plain"] == text
    return str(data["text/html"])


# --- the issue's answer and its variants ------------------------------------------------------------------

SPACES = ["\t", " \t", "\x0b", "\x0c", "\u00a0", "\u2003", "\u3000", "\u200b", "\ufeff", "\u2028", "\r"]
IMG = '<img src=x onerror="window.__pwned=1">'

CRAFTED = [
    PAYLOAD,
    *(f"Result:\n\n```\nx\n```{space}\n\n```\n{IMG}\n```" for space in SPACES),
    *(f"~~~\nx\n~~~{space}\n\n~~~\n{IMG}\n~~~" for space in SPACES),
    f"````\n```\n````\t\n{IMG}\n````",
    f"```js\n{IMG}",  # unclosed
    f"```\n{IMG}\n~~~\n{IMG}",
    f"    {IMG}\n\n\t{IMG}",  # indented code
    f"para\n```\n{IMG}\n```\n",
    f"<div>\n```\n{IMG}\n```\n</div>",
    f"<pre>\n\n```\n{IMG}\n```\n\n</pre>",
    f"<!--\n\n```\n-->\n{IMG}\n```\n",
    "<details open ontoggle=alert(1)>x</details>\n\n<div onmouseover=alert(1)>hover</div>",
    "&lt;img src=x onerror=alert(1)&gt; &#60;script&#62;alert(1)&#60;/script&#62;",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "[a](javascript:alert(1)) [b](JaVaScRiPt:alert(1)) [c](java&#115;cript:alert(1)) [d](&#106;avascript:alert(1))",
    "[e](javascript&colon;alert(1)) [f](%6Aavascript:alert(1)) [g](<javascript:alert(1)>) [h]( javascript:alert(1))",
    "[i](java\\script:alert(1)) [j](vbscript:msgbox) [k](file:///etc/passwd) [l](/api/contents) [m](#x)",
    "<javascript:alert(1)> <JAVASCRIPT:alert(1)> <http://ok.test/a> <mailto:a@b.test> <a@b.test>",
    "[x][r] ![y][r]\n\n[r]: javascript:alert(1)",
    "[x][r]\n\n[r]: <data:text/html,<script>alert(1)</script>> 'title'",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==) ![x](data:text/html,<script>alert(1)</script>)",
    "![svg](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+) ![remote](http://attacker.test/p.png?d=1)",
    "<svg onload=alert(1)><script>alert(1)</script></svg>\n\n<math><mtext><img src=x onerror=alert(1)></mtext></math>",
    "[x](http://ok.test \"<a href='javascript:alert(1)'>t</a>\") [y](http://ok.test '\" onmouseover=\"alert(1)')",
    "<iframe src=/lab></iframe><form action=/api/kernels><button>go</button></form><object data=x></object>",
    "<style>body{display:none}</style><link rel=stylesheet href=//x><base href=//attacker.test/>",
    '<a href="javascript:alert(1)" style="position:fixed;inset:0">cover</a>',
    "> " * 2000 + IMG,
    "\n".join("  " * i + "- " + IMG for i in range(300)),
    "> - > 1. > ```\n> " + IMG + "\n\n```\n" + IMG,
    "| a | b |\n| --- | --: |\n| " + IMG + " | [x](javascript:alert(1)) |",
    "*" * 1000 + IMG + "_" * 1000 + "[" * 1000 + "](" * 1000,
]


@pytest.mark.parametrize("text", CRAFTED, ids=range(len(CRAFTED)))
def test_crafted_model_text_publishes_nothing_active(text: str) -> None:
    assert active(published(text)) == []


def test_the_issue_payload_is_code_and_text_here_and_nothing_else() -> None:
    # Not a matter of where the fence ends: the <img> is text inside the HTML we publish, whichever reader
    # would have read the markdown.
    assert render_markdown(PAYLOAD) == (
        '<p>Result:</p>\n<pre><code>x\n</code></pre>\n<pre><code>&lt;img src=x onerror="window.__pwned=1"&gt;\n</code></pre>\n'
    )


def test_formatting_links_and_inline_images_stay() -> None:
    text = (
        "## Result\n\nThe **mean** is *20*, see [docs](https://example.com/a?b=1) or <mailto:a@b.test>.\n\n"
        "1. one\n2. ~~two~~\n\n> quoted `code <b>`\n\n| x | y |\n| :-- | --: |\n| 1 | 2 |\n\n"
        f"![chart](data:image/png;base64,{PNG})\n\n---\n"
    )
    assert render_markdown(text) == (
        "<h2>Result</h2>\n<p>The <strong>mean</strong> is <em>20</em>, see "
        '<a href="https://example.com/a?b=1" rel="noopener noreferrer">docs</a> or '
        '<a href="mailto:a@b.test" rel="noopener noreferrer">mailto:a@b.test</a>.</p>\n'
        "<ol>\n<li>one</li>\n<li><s>two</s></li>\n</ol>\n"
        "<blockquote>\n<p>quoted <code>code &lt;b&gt;</code></p>\n</blockquote>\n"
        '<table>\n<thead>\n<tr>\n<th style="text-align:left">x</th>\n<th style="text-align:right">y</th>\n</tr>\n'
        '</thead>\n<tbody>\n<tr>\n<td style="text-align:left">1</td>\n<td style="text-align:right">2</td>\n'
        "</tr>\n</tbody>\n</table>\n"
        f'<p><img src="data:image/png;base64,{PNG}" alt="chart"></p>\n<hr>\n'
    )


def test_links_to_anything_but_the_web_and_mail_are_not_links() -> None:
    rendered = render_markdown("[a](javascript:alert(1)) [b](/api/contents) [c](#top) ![d](http://x.test/p.png)")
    assert "href" not in rendered and "src" not in rendered and "alert(1)" in rendered  # shown as text


def test_a_huge_text_is_rendered_up_to_the_bound_and_says_so() -> None:
    text = "word " * (MAX_RENDERED_CHARS // 5 + 1000)
    data = markdown_data(text)
    assert data["text/plain"] == text
    assert data["text/html"].endswith(
        "<p><em>[llm-agent: 5000 more characters are not rendered here; the "
        "plain-text view of this output has all of it]</em></p>"
    )
    assert data["text/html"].count("word") == MAX_RENDERED_CHARS // 5


def test_nesting_is_bounded_and_the_rest_stays_text() -> None:
    assert render_markdown(">" * 10_000 + " deep").count("<blockquote>") == MAX_NESTING
    deep = render_markdown("".join("  " * i + "- item\n" for i in range(1000)))
    assert 0 < deep.count("<ul>") <= MAX_NESTING and active(deep) == []


# --- properties -------------------------------------------------------------------------------------------

PIECES = [
    "```",
    "~~~",
    "````",
    "```python",
    "~~~~",
    "\t",
    "    ",
    "   ",
    "> ",
    ">",
    "- ",
    "* ",
    "+ ",
    "1. ",
    "2) ",
    "#",
    "---",
    "===",
    "|",
    "| --- |",
    "`",
    "``",
    "*",
    "**",
    "_",
    "~~",
    "[",
    "]",
    "(",
    ")",
    "](",
    "![",
    "]: ",
    "\\",
    "<",
    ">",
    "</",
    "/>",
    '"',
    "'",
    "=",
    "&",
    ";",
    "&lt;",
    "&gt;",
    "&#60;",
    "&#x3C;",
    "&colon;",
    "&#106;",
    "&#0;",
    "&NewLine;",
    "javascript:",
    "JaVaScRiPt:",
    "vbscript:",
    "data:text/html,",
    "data:image/svg+xml,",
    "data:image/png;base64,AAAA",
    "http://ok.test",
    "mailto:a@b.test",
    "//attacker.test",
    "alert(1)",
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "<svg onload=alert(1)>",
    "<iframe src=x>",
    "<div>",
    "</div>",
    "<pre>",
    "</pre>",
    "<!--",
    "-->",
    "<?",
    "<![CDATA[",
    "<style>",
    "<a href=",
    "<details ontoggle=alert(1) open>",
    "onerror=",
    " onmouseover=",
    "style=",
    "\u00a0",
    "\u2003",
    "\u200b",
    "\x0b",
    "\x0c",
    "\r",
]
MARKDOWN = st.lists(
    st.one_of(st.sampled_from(PIECES), st.text(max_size=6), st.sampled_from(["\n", "\n\n", " "])),
    max_size=40,
).map("".join)


@settings(max_examples=400, deadline=None, database=None)
@given(MARKDOWN)
def test_no_active_markup_survives_any_mix(text: str) -> None:
    assert active(published(text)) == []


def _html_text(fragment: str) -> str:
    parts: list[str] = []
    parser = HTMLParser(convert_charrefs=True)
    parser.handle_data = parts.append  # type: ignore[method-assign]
    parser.feed(fragment)
    parser.close()
    return "".join(parts)


# Readers a notebook's markdown cell may meet, raw HTML allowed (the most a reader would let through).
READERS = {
    "commonmark": MarkdownIt("commonmark", {"html": True}).render,
    "gfm-like": MarkdownIt("gfm-like", {"html": True, "linkify": False}).render,
    "mistune": mistune.create_markdown(escape=False, plugins=["strikethrough", "table", "url"]),
}


def _shown(text: str) -> str:
    """What a reader shows of ``literal_markdown(text)``: the text, but control characters and
    noncharacters, which HTML has no character for."""
    return "".join("\ufffd" if unicodedata.category(c) in ("Cc", "Cn", "Cs") and c not in "\t\n\r\x0c" else c for c in text)


@settings(max_examples=200, deadline=None, database=None)
@given(st.one_of(MARKDOWN, st.text(max_size=60)))
@pytest.mark.parametrize("reader", sorted(READERS))
def test_a_literal_markdown_cell_shows_its_text_in_every_reader(reader: str, text: str) -> None:
    for block in (True, False):
        rendered = str(READERS[reader](literal_markdown(text, block=block)))
        assert active(rendered) == []
        if block:
            assert _html_text(rendered).strip("\n") == _shown(text).strip("\n")


def test_literal_markdown_keeps_words_and_turns_the_rest_into_references() -> None:
    assert literal_markdown("Mean é 20\n```<img>") == "<pre>Mean é 20&#10;&#96;&#96;&#96;&#60;img&#62;</pre>"
    assert literal_markdown("a [b](c)", block=False) == "a &#91;b&#93;&#40;c&#41;"
    assert html.unescape(literal_markdown(PAYLOAD, block=False)) == PAYLOAD


def test_the_renderer_stands_alone_so_every_front_end_may_import_it() -> None:
    code = "import sys, llm_agent_magic.safe_text\nprint(sorted(m for m in sys.modules if m.startswith('llm_agent_magic.')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['llm_agent_magic.safe_text']"
