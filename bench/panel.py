"""The side panel's added latency: from the model's first token to the first character on screen in the browser.

A real ``jupyter lab`` with the labextension and the scripted Ollama (tokens sent as soon as the answer call
arrives), headless Debian chromium through Playwright. For each of N chat requests, the time the scripted
model received the answer call (it sends its first token at once) is compared with the time the first
character of that answer was painted in the panel (a MutationObserver, then the next animation frame).
Both clocks are this machine's wall clock. Target: median under 100 ms. Printed from one run.

    .venv/bin/python bench/panel.py [N]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "browser"))

import lab as browser_lab

from llm_agent_magic.testing.fake_ollama import FakeOllama

SCRIPT = {
    "rules": [
        {"purpose": "classify", "reply": {"mode": "chat", "reason": "talk"}},
        {"purpose": "answer", "reply": "Hello: the first words of the answer, then a few more of them.", "token_delay_ms": 20},
    ]
}

# When the first character of the newest answer is on screen: the frame after the DOM got it.
WATCH = """(count) => {
  window.__painted = 0;
  const observer = new MutationObserver(() => {
    const answers = document.querySelectorAll('#llm-agent-panel .lam-answer');
    if (answers.length > count && answers[answers.length - 1].textContent.trim()) {
      observer.disconnect();
      requestAnimationFrame(() => { window.__painted = Date.now(); });
    }
  });
  observer.observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def main(runs: int = 15) -> None:
    problem = browser_lab.missing()
    if problem:
        sys.exit(f"bench/panel.py cannot run: {problem}")
    latencies: list[float] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeOllama(SCRIPT) as ollama,
        browser_lab.jupyter_lab(Path(tmp), ollama.url, {}) as lab,
        browser_lab.chromium(Path(tmp) / "profile") as context,
    ):
        page = context.new_page()
        browser_lab.open_lab(page, lab)
        browser_lab.open_panel(page, connected=False)  # no notebook open: a new chat gives it a session
        page.click(f"{browser_lab.PANEL} .lam-new-chat")
        page.wait_for_selector(f'{browser_lab.PANEL} .lam-panel[data-connected="true"]')
        for i in range(runs + 1):  # the first run warms up (imports, first sandbox-free session open)
            count = page.locator(f"{browser_lab.PANEL} .lam-answer").count()
            page.evaluate(WATCH, count)
            browser_lab.send(page, f"Say hello, number {i}")
            painted_ms = page.wait_for_function("() => window.__painted", timeout=60_000).json_value()
            page.wait_for_function(
                f"() => document.querySelectorAll('{browser_lab.PANEL} .lam-run-ok').length === {i + 1}", timeout=60_000
            )
            asked = ollama.requests_for("answer")[-1].timestamp
            if i:
                latencies.append(painted_ms / 1000 - asked)
    ms = sorted(x * 1000 for x in latencies)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    print(
        f"panel: first token -> first character on screen, {len(ms)} runs: median {statistics.median(ms):.1f} ms, "
        f"p95 {p95:.1f} ms, max {ms[-1]:.1f} ms (target: median < 100 ms) "
        f"{'OK' if statistics.median(ms) < 100 else 'OVER TARGET'}"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
