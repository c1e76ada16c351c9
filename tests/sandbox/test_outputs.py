"""Outputs of every kind, variable summaries and the text the model sees, from a real sandbox kernel."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from html_checks import active_html

from llm_agent_magic.config import PathsConfig, SandboxConfig
from llm_agent_magic.sandbox import SandboxKernel
from llm_agent_magic.sandbox.isolation import resolve_level
from llm_agent_magic.sandbox.results import OutputCollector, describe_death, truncate_middle

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sk(paths: PathsConfig, config_for: Callable[..., SandboxConfig]) -> Iterator[SandboxKernel]:
    # Outputs do not depend on the isolation level: one kernel at the level 'auto' picks.
    kernel = SandboxKernel("outputs", config=config_for("auto"), paths=paths, max_output_chars=2000)
    kernel.start()
    yield kernel
    kernel.shutdown()


def test_streams_are_merged_in_order(sk: SandboxKernel) -> None:
    code = (
        "import sys\nprint('a'); print('b'); sys.stdout.flush()\nprint('oops', file=sys.stderr); sys.stderr.flush()\nprint('c')\n"
    )
    r = sk.execute(code)
    assert r.status == "ok"
    assert [(o["name"], o["text"]) for o in r.outputs] == [("stdout", "a\nb\n"), ("stderr", "oops\n"), ("stdout", "c\n")]
    assert r.stdout == "a\nb\nc\n"
    assert r.metadata["isolation"] == resolve_level(sk.config)


def test_execute_result_and_execution_count(sk: SandboxKernel) -> None:
    r = sk.execute("6 * 7")
    [out] = r.outputs
    assert out["output_type"] == "execute_result"
    assert out["data"]["text/plain"] == "42"
    assert out["execution_count"] == r.execution_count > 0


def test_matplotlib_figure_is_display_data_with_png(sk: SandboxKernel) -> None:
    r = sk.execute("import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('t')\nplt.show()")
    assert r.status == "ok", r.text_for_model()
    images = [o for o in r.outputs if o["output_type"] == "display_data" and "image/png" in o["data"]]
    assert len(images) == 1
    assert base64.b64decode(images[0]["data"]["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "[image/png image" in r.text_for_model()


def test_error_has_ename_evalue_and_plain_traceback(sk: SandboxKernel) -> None:
    r = sk.execute("def f():\n    return {}['missing']\nf()")
    assert r.status == "error"
    err = r.error
    assert err is not None and err["ename"] == "KeyError" and err["evalue"] == "'missing'"
    assert err["traceback"] and not any("\x1b" in line for line in err["traceback"])
    assert "KeyError" in r.text_for_model()


def test_display_update_and_clear_output(sk: SandboxKernel) -> None:
    code = (
        "from IPython.display import display, clear_output\n"
        "h = display('first', display_id=True)\n"
        "h.update('second')\n"
        "print('gone'); clear_output()\n"
        "print('kept')\n"
    )
    r = sk.execute(code)
    assert [o.get("text") for o in r.outputs] == ["kept\n"]
    r = sk.execute("from IPython.display import display\nh = display('first', display_id=True)\nh.update('second')")
    [out] = r.outputs
    assert out["data"]["text/plain"] == "'second'"


def test_long_output_is_truncated_for_the_model_and_kept_on_disk(sk: SandboxKernel) -> None:
    r = sk.execute("print('start'); print('x' * 20000); print('the end')")
    text = r.text_for_model()
    assert len(text) < 2600
    assert "characters truncated" in text and "start" in text and "the end" in text
    assert r.full_output_path and "x" * 20000 in Path(r.full_output_path).read_text()
    assert len(r.text_for_model(500)) < 1200


def test_variable_summary_after_success(sk: SandboxKernel) -> None:
    code = (
        "import pandas as pd, numpy as np\n"
        "df = pd.DataFrame({'city': ['a', 'b'], 'sales': [1.5, 2.0]})\n"
        "empty = []\n"
        "cfg = {'alpha': 1, 'beta': 2}\n"
        "arr = np.zeros((3, 4))\n"
        "def helper(): pass\n"
        "class Thing: pass\n"
    )
    r = sk.execute(code)
    names = {v.name: v for v in r.variables}
    assert {"df", "empty", "cfg", "arr"} <= set(names)
    assert not {"helper", "Thing", "pd", "np", "In", "Out"} & set(names)
    assert names["df"].shape == [2, 2] and names["df"].columns == [["city", names["df"].columns[0][1]], ["sales", "float64"]]
    text = r.variables_text()
    assert "empty: list (EMPTY - length=0)" in text
    assert "cfg: dict length=2; keys: 'alpha', 'beta'" in text
    assert "arr: ndarray shape=(3, 4) dtype=float64" in text


def test_variable_summary_shows_state_at_the_error(sk: SandboxKernel) -> None:
    r = sk.execute("rows = []\nfor i in range(3):\n    rows.append(i)\nraise ValueError('late')")
    assert r.status == "error"
    rows = next(v for v in r.variables if v.name == "rows")
    assert rows.length == 3 and "[0, 1, 2]" in rows.repr


def test_summaries_can_be_skipped(sk: SandboxKernel) -> None:
    r = sk.execute("z = 1", summary=False, snapshot=False)
    assert r.status == "ok" and r.variables == [] and r.snapshot is None
    assert any(v.name == "z" for v in sk.variables())


async def test_async_api_from_a_test_event_loop(sk: SandboxKernel) -> None:
    r = await sk.async_execute("print('async')")
    assert r.stdout == "async\n"


def test_collector_coalesces_and_handles_carriage_returns() -> None:
    c = OutputCollector()

    def stream(text: str, name: str = "stdout") -> None:
        c.handle({"msg_type": "stream", "content": {"name": name, "text": text}})

    stream("10%\r")
    stream("50%\r")
    stream("100%\ndone\n")
    stream("warn\n", "stderr")
    stream("more\n")
    assert [o["text"] for o in c.outputs] == ["100%\ndone\n", "warn\n", "more\n"]


def test_truncate_middle_keeps_both_ends() -> None:
    text = "HEAD" + "x" * 1000 + "TAIL"
    cut = truncate_middle(text, 100, "full output in /x")
    assert cut.startswith("HEAD") and cut.endswith("TAIL") and "full output in /x" in cut
    assert truncate_middle("short", 100) == "short"


@pytest.mark.parametrize(
    "code, wrapped, evidence, words",
    [
        (-9, False, "", "was killed (SIGKILL, signal 9)"),
        (137, True, "", "was killed (SIGKILL, signal 9)"),
        (152, True, "", "CPU time limit (600 s)"),
        (-11, False, "", "segmentation fault"),
        (-6, False, "terminate called after throwing an instance of 'std::bad_alloc'", "2048 MB memory limit"),
        (3, False, "", "exited (exit code 3)"),
        (None, False, "", "stopped unexpectedly"),
    ],
)
def test_death_is_described_in_plain_words(code: int | None, wrapped: bool, evidence: str, words: str) -> None:
    assert words in describe_death(code, wrapped=wrapped, evidence=evidence, memory_limit_mb=2048, cpu_time_limit=600)


# --- what comes back is untrusted: cleaned, bounded, and never a reason to raise -----------------------------

ATTACK = '<img src=x onerror="alert(1)"><script>fetch("/api/kernels")</script>'


def test_rich_outputs_from_the_sandbox_are_made_inert(sk: SandboxKernel) -> None:
    code = (
        "from IPython.display import HTML, Javascript, Markdown, SVG, display\n"
        f"display(HTML('<table><tr><td><b>kept</b></td></tr></table>' + {ATTACK!r}))\n"
        "display(Javascript('alert(2)'))\n"
        "display({'application/vnd.jupyter.widget-view+json': {'model_id': 'abc', 'version_major': 2},\n"
        "         'text/plain': 'a widget'}, raw=True)\n"
        "display({'application/vnd.llm-agent.cells+json': {'version': 1, 'cells': []}}, raw=True)\n"
        "display(SVG('<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(3)</script>'\n"
        '            \'<rect width="4" height="4" onload="alert(4)"/></svg>\'))\n'
        f"display(Markdown('**bold** ' + {ATTACK!r} + ' [x](javascript:alert(5)) ![t](http://attacker.test/t.png)'))\n"
    )
    r = sk.execute(code)
    assert r.status == "ok", r.text_for_model()
    html, js, widget, bundle, svg, md = (o["data"] for o in r.outputs)
    assert "<b>kept</b>" in html["text/html"] and "<table>" in html["text/html"]
    assert "onerror" not in html["text/html"] and "<script" not in html["text/html"]
    assert js == {"text/plain": "<IPython.core.display.Javascript object>"}
    assert widget == {"text/plain": "a widget"}
    assert "application/vnd.llm-agent.cells+json" not in bundle and "removed output" in bundle["text/plain"]
    drawing = svg["image/svg+xml"]
    assert "<rect" in drawing and "script" not in drawing and "onload" not in drawing
    assert "text/markdown" not in md  # rendered and sanitized here, never left to another markdown reader
    text = md["text/html"]
    assert "<strong>bold</strong>" in text and active_html(text) == [] and "<script" not in text
    assert "&lt;img src=x onerror=" in text  # the raw HTML shows as text
    assert "href" not in text and "[x](javascript:alert(5))" in text and "attacker.test" not in text  # left as text


def test_a_huge_print_is_cut_in_the_cell_and_kept_whole_on_disk(sk: SandboxKernel) -> None:
    r = sk.execute("print('start'); print('x' * 3_000_000); print('the end')")
    assert r.status == "ok"
    kept = r.stdout
    assert len(kept) < 1_100_000  # SandboxConfig.max_cell_output_kb (1000) + the note
    assert kept.startswith("start\nxxx") and kept.endswith("xxx\nthe end\n")
    assert r.full_output_path and f"the whole output is in {r.full_output_path}" in kept
    whole = Path(r.full_output_path).read_text()
    assert whole == "start\n" + "x" * 3_000_000 + "\nthe end\n"
    assert "characters truncated" in r.text_for_model() and r.full_output_path in r.text_for_model()


def test_displays_past_the_limits_are_left_out_with_a_note(sk: SandboxKernel) -> None:
    r = sk.execute(
        "from IPython.display import display\n"
        "display({'image/png': 'A' * 11_000_000, 'text/plain': 'huge'}, raw=True)\n"
        "for i in range(120):\n"
        "    display(i)\n"
    )
    assert r.status == "ok"
    first = r.outputs[0]["data"]
    assert "image/png" not in first and "was left out" in first["text/plain"]
    displays = [o for o in r.outputs if o["output_type"] == "display_data"]
    assert len(displays) == 100  # SandboxConfig.max_displays: the note for the image, then 99 numbers
    assert "22 displays were left out" in r.stderr and "a display of 11.0 MB (image/png, text/plain)" in r.stderr


def test_malformed_messages_from_the_kernel_are_skipped_with_a_note(sk: SandboxKernel) -> None:
    code = (
        "k = get_ipython().kernel\n"
        "parent = k.get_parent('shell')\n"
        "frames = k.session.serialize(k.session.msg('stream', {'name': 'stdout', 'text': 'forged'}, parent=parent))\n"
        "frames[frames.index(b'<IDS|MSG>') + 1] = b'0' * 64  # a signature that does not match\n"
        "k.iopub_socket.send_multipart(frames)\n"
        "k.session.send(k.iopub_socket, 'stream', {'name': 'stdout', 'text': ['not', 'text']}, parent=parent)\n"
        "k.session.send(k.iopub_socket, 'display_data', {'data': 'not a bundle'}, parent=parent)\n"
        "print('after')\n"
    )
    r = sk.execute(code)
    assert r.status == "ok" and r.stdout == "after\n"
    assert "2 malformed messages from the sandbox were ignored" in r.stderr
    [display] = [o["data"] for o in r.outputs if o["output_type"] == "display_data"]
    assert display == {"text/plain": "[llm-agent: removed output the notebook must not run or trust: a malformed MIME bundle]"}
    assert sk.execute("print('still fine')").stdout == "still fine\n"


def test_rich_outputs_are_cleaned_off_the_shared_sandbox_loop_in_order(
    sk: SandboxKernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One loop thread serves every session's kernel: a display that takes long to clean (sanitized HTML, SVG,
    markdown) is cleaned in a worker thread so the others' outputs keep flowing; streams stay on the loop,
    and the cell keeps the order the kernel sent."""
    import threading

    seen: list[tuple[str, str]] = []
    handle = OutputCollector.handle

    def noted(self: OutputCollector, msg: dict) -> None:
        seen.append((msg.get("msg_type", ""), threading.current_thread().name))
        handle(self, msg)

    monkeypatch.setattr(OutputCollector, "handle", noted)
    r = sk.execute(
        "from IPython.display import HTML, display\nprint('a', flush=True)\n"
        "display(HTML('<b>bold</b>'))\nprint('c', flush=True)\n1/0\n"
    )
    kinds = [o["output_type"] for o in r.outputs]
    assert kinds == ["stream", "display_data", "stream", "error"] and "<b>bold</b>" in str(r.outputs[1]["data"])
    threads = {kind: name for kind, name in seen if kind in ("stream", "display_data", "error")}
    assert threads["stream"] == "llm-agent-sandbox-loop"
    assert threads["display_data"] != "llm-agent-sandbox-loop" and threads["error"] != "llm-agent-sandbox-loop"
