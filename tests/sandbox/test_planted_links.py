"""Links the sandbox plants where the parent writes (``%agent push``) are replaced or refused, never followed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from llm_agent_magic.config import PathsConfig, SandboxConfig
from llm_agent_magic.exceptions import UnsafePath
from llm_agent_magic.sandbox import SandboxKernel

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sk(paths: PathsConfig, config_for: Callable[..., SandboxConfig]) -> Iterator[SandboxKernel]:
    with SandboxKernel("planted-links", config=config_for("auto"), paths=paths) as kernel:
        yield kernel


def test_push_never_writes_through_a_planted_link(sk: SandboxKernel, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    run = sk.paths.run
    r = sk.execute(f"import os\nos.symlink({str(outside)!r}, {str(run / 'pushed')!r})")
    assert r.status == "ok", r.text_for_model()
    with pytest.raises(UnsafePath, match="is a symbolic link"):
        sk.push("frame", pd.DataFrame({"a": [1, 2]}))
    assert list(outside.iterdir()) == []

    # A link at the file itself is replaced by the new file.
    victim = tmp_path / "victim.parquet"
    victim.write_bytes(b"the user's file")
    code = (
        f"import os\nos.unlink({str(run / 'pushed')!r})\nos.mkdir({str(run / 'pushed')!r})\n"
        f"os.symlink({str(victim)!r}, {str(run / 'pushed' / 'frame.parquet')!r})"
    )
    assert sk.execute(code).status == "ok"
    sk.push("frame", pd.DataFrame({"a": [1, 2]}))
    assert victim.read_bytes() == b"the user's file"
    assert sk.execute("print(frame.a.sum())").stdout == "3\n"
