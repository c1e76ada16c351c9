"""Limits that hold: bubblewrap's memory-backed temporary folders have sizes inside the memory budget, and the
sandbox's files together stay under a disk quota, enforced while code runs (issue 9, item 7)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from llm_agent_magic.config import PathsConfig, SandboxConfig
from llm_agent_magic.sandbox import SandboxKernel
from llm_agent_magic.sandbox.isolation import bubblewrap_check

pytestmark = pytest.mark.slow

# Writes 256 KB at a time, up to 500 MB in all: far past the quota unless something stops it.
FILL = (
    "import time\n"
    "with open('fill.bin', 'wb') as f:\n"
    "    for i in range(2000):\n"
    "        f.write(b'x' * 2**18)\n"
    "        f.flush()\n"
    "        time.sleep(0.005)\n"
    "print('wrote it all')"
)


@pytest.fixture(scope="module")
def sk(level: str, paths: PathsConfig, config_for: Callable[..., SandboxConfig]) -> Iterator[SandboxKernel]:
    config = config_for(level, workspace_quota_mb=8, memory_limit_mb=1024, tmp_size_mb=64)
    with SandboxKernel(f"limits-{level}", config=config, paths=paths) as sandbox:
        yield sandbox


def test_the_disk_quota_stops_an_execution_that_fills_it(sk: SandboxKernel) -> None:
    r = sk.execute(FILL)
    assert r.status == "error" and "wrote it all" not in r.stdout, r.text_for_model()
    assert "more than its disk quota of 8 MB" in r.message and "so the execution was stopped" in r.message
    assert r.metadata["disk"]["exceeded"] is True and r.metadata["disk"]["quota_mb"] == 8
    assert "disk quota" in r.text_for_model()  # the model is told, and what to do
    # Over the quota, the sandbox may not grow further, but may clean up; then it works as before.
    r = sk.execute("open('more.bin', 'wb').write(b'y' * 2**20)")
    assert r.metadata["disk"]["exceeded"] is True and "disk quota" in r.message
    r = sk.execute("import os\nos.remove('fill.bin')\nos.remove('more.bin')\nprint('cleaned')")
    assert r.status == "ok" and r.stdout == "cleaned\n" and r.metadata["disk"]["exceeded"] is False, r.text_for_model()
    assert not (Path(sk.workspace) / "fill.bin").exists()


def test_scratch_folders_count_toward_the_quota(sk: SandboxKernel) -> None:
    # HOME (and at 'reduced' TMPDIR) are on disk in the session's scratch folder; at 'full' /tmp is memory.
    r = sk.execute(FILL.replace("import time", "import os, time\nos.chdir(os.environ['HOME'])"))
    assert r.status == "error" and "wrote it all" not in r.stdout, r.text_for_model()
    assert r.metadata["disk"]["exceeded"] is True
    r = sk.execute(f"import os\nos.remove('fill.bin')\nos.chdir({sk.workspace!r})")
    assert r.status == "ok" and r.metadata["disk"]["exceeded"] is False, r.text_for_model()


def test_temporary_folders_in_bubblewrap_are_sized_within_the_memory_budget(
    paths: PathsConfig, config_for: Callable[..., SandboxConfig]
) -> None:
    if not bubblewrap_check(False).ok:
        pytest.skip("bubblewrap does not work here")
    config = config_for("full", memory_limit_mb=1024, tmp_size_mb=64)
    with SandboxKernel("tmpfs-sizes", config=config, paths=paths) as sk:
        r = sk.execute(
            "import os\nfor d in ('/tmp', '/var/tmp', '/dev/shm'):\n"
            "    s = os.statvfs(d)\n    print(d, s.f_blocks * s.f_frsize // 2**20)"
        )
        assert r.stdout == "/tmp 32\n/var/tmp 16\n/dev/shm 16\n", r.text_for_model()
        r = sk.execute("open('/dev/shm/big', 'wb').write(b'x' * 40 * 2**20)")
        assert r.status == "error" and r.error["ename"] == "OSError" and "No space left" in r.error["evalue"]
    # Without a setting, they share a quarter of the memory limit.
    with SandboxKernel("tmpfs-default", config=config_for("full", memory_limit_mb=1024), paths=paths) as sk:
        r = sk.execute("import os\ns = os.statvfs('/tmp')\nprint(s.f_blocks * s.f_frsize // 2**20)")
        assert r.stdout == "128\n", r.text_for_model()
