"""On a failing browser test, keep what the browser showed: a screenshot and the panel's text."""

from __future__ import annotations

import contextlib

import lab as browser_lab
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    page = item.funcargs.get("page") if hasattr(item, "funcargs") else None
    if report.when != "call" or not report.failed or page is None:
        return
    with contextlib.suppress(Exception):
        browser_lab.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = browser_lab.SCREENSHOTS / f"failed-{item.name}.png"
        page.screenshot(path=str(shot))
        panel = page.evaluate(f"() => (document.querySelector('{browser_lab.PANEL}') || {{}}).outerHTML || ''")
        report.sections.append(("browser", f"screenshot: {shot}\npanel: {panel[:4000]}"))
