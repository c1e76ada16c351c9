"""A real ``jupyter lab`` on loopback with the scripted Ollama, and headless Debian chromium driven by Playwright.

Shared by the browser tests (tests/browser/) and bench/panel.py. Everything lives in one temporary folder:
the notebooks, the agent's data root, Jupyter's config, settings and workspaces, chromium's profile.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Screenshots the browser test saves (docs/panel.md names this folder).
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "browser-screenshots"
PANEL = "#llm-agent-panel"


def missing() -> str | None:
    """Why a browser test cannot run here (and what to do), or None."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing: `make install` installs Debian's chromium when run as root, or apt-get install chromium"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is missing: pip install -e '.[test]'"
    jupyter = Path(sys.executable).parent / "jupyter"
    listed = subprocess.run(
        [str(jupyter), "labextension", "list"],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{jupyter.parent}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    if "llm-agent-magic" not in listed.stdout + listed.stderr:
        return "the labextension is not installed in this environment: run `make install` (it builds and links it)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    data_root: Path
    process: subprocess.Popen[bytes]
    log: Path

    def api(self, path: str) -> Any:
        request = urllib.request.Request(f"{self.url}{path}", headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as reply:
            return json.loads(reply.read())


@contextlib.contextmanager
def jupyter_lab(folder: Path, ollama_url: str, files: dict[str, str | bytes]) -> Iterator[Lab]:
    """``jupyter lab`` serving ``folder/root`` (holding ``files``), its agent talking to ``ollama_url``."""
    root, data_root, config = folder / "root", folder / "agent-data", folder / "jupyter-config"
    for path in (root, data_root, config):
        path.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        target = root / name
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    token, port = secrets.token_hex(16), free_port()
    (config / "jupyter_server_config.json").write_text(
        json.dumps(
            {
                "ServerApp": {
                    "ip": "127.0.0.1",
                    "port": port,
                    "open_browser": False,
                    "root_dir": str(root),
                    "allow_root": True,
                    "IdentityProvider": {"token": token},
                },
                "IdentityProvider": {"token": token},
                "LabApp": {"expose_app_in_browser": True},
                "LabServerApp": {"expose_app_in_browser": True},
                "LLMConfig": {"host": ollama_url, "max_retries": 0, "retry_backoff": 0.01},
                "PathsConfig": {"data_root": str(data_root)},
                "SandboxConfig": {"execution_timeout": 60},
            }
        )
    )
    # No "would you like news?" toast over the panel, and no update checks (no network in tests).
    notification = folder / "lab-settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True, exist_ok=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTERLAB_SETTINGS_DIR": str(folder / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(folder / "lab-workspaces"),
        "OLLAMA_HOST": ollama_url,
        "LLM_AGENT_DATA_ROOT": str(data_root),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    for leak in ("LLM_AGENT_SESSION", "LLM_AGENT_CASSETTE_MODE", "LLM_AGENT_CASSETTE_PATH", "JPY_SESSION_NAME"):
        env.pop(leak, None)
    log = folder / "jupyter-lab.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(bin_dir / "jupyter"), "lab", "--no-browser"], cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    lab = Lab(f"http://127.0.0.1:{port}", token, root, data_root, process, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(OSError, ValueError):
                lab.api("/api/status")
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"jupyter lab did not answer within 120 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield lab
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def chromium(profile: Path) -> Iterator[Any]:
    """A headless chromium with a fresh profile: Playwright's persistent context on Debian's binary."""
    from playwright.sync_api import sync_playwright

    shutil.rmtree(profile, ignore_errors=True)
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


def open_lab(page: Any, lab: Lab, path: str = "") -> None:
    """Load JupyterLab (logging in with the token), optionally on a notebook, and wait until it is up."""
    page.goto(f"{lab.url}/lab/tree/{path}?token={lab.token}" if path else f"{lab.url}/lab?token={lab.token}")
    page.wait_for_function(
        "() => window.jupyterapp && window.jupyterapp.isPluginActivated('llm-agent-magic:plugin')", timeout=120_000
    )
    if path:
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)


def open_panel(page: Any, connected: bool = True) -> None:
    """Click the panel's tab in the right sidebar; wait for its session's socket (there is none without a notebook)."""
    tab = page.locator(f'.jp-SideBar .lm-TabBar-tab[data-id="{PANEL.lstrip("#")}"]')
    if not page.locator(PANEL).is_visible():
        tab.click()
    page.wait_for_selector(f'{PANEL} .lam-panel[data-connected="true"]' if connected else f"{PANEL} .lam-panel", timeout=60_000)


def send(page: Any, text: str) -> None:
    box = page.locator(f"{PANEL} .lam-input")
    box.fill(text)
    box.press("Enter")
