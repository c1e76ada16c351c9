"""Module names say what they hold, and none is named like a module of the standard library.

A module named like one (``collections.py``) shadows it for whoever runs a file beside it, and makes
``from . import collections`` read as the standard library's.
"""

from __future__ import annotations

import sys
from pathlib import Path

import llm_agent_magic

PACKAGE = Path(llm_agent_magic.__file__).parent


def test_no_module_or_package_is_named_like_a_standard_library_module():
    named_like_stdlib = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*")
        if "__pycache__" not in path.parts
        and (
            (path.suffix == ".py" and path.stem in sys.stdlib_module_names)
            or (path.is_dir() and path.name in sys.stdlib_module_names)
        )
    )
    assert named_like_stdlib == []
