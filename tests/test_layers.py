"""The layer table of docs/code-map.md (and DESIGN.md), enforced over the package's import graph.

Every module is parsed with ``ast`` (imports inside functions count: a lazy import is still a dependency),
relative imports are resolved against the importing module's package, and each import of the package is
checked: a lower layer never imports a higher one, and the front ends (``magic``, ``cli``, ``server``,
``evaluation``, and ``cells.py`` they share) import nothing from ``store``, ``sandbox`` or ``tools``: they
talk to the session service of the agents layer.
"""

from __future__ import annotations

import ast
import gc
from pathlib import Path

import llm_agent_magic

PACKAGE = "llm_agent_magic"
ROOT = Path(llm_agent_magic.__file__).parent

#: The layer of each top-level module or folder of the package (docs/code-map.md). Equal ranks may import
#: each other; a module may import only its own rank or lower ones.
LAYERS: dict[str, float] = {
    **dict.fromkeys(
        [
            "config",
            "events",
            "exceptions",
            "run_requests",
            "notebook_context",
            "volatile",
            "redaction",
            "linear_regex",
            "text",
            "answer_format",
            "atomic",
            "safe_text",
            "run_summary",
            "learn_grammar",
            "safe_html",
        ],
        1,
    ),
    **dict.fromkeys(["llm", "prompts", "sandbox", "store"], 2),
    "tools": 3,
    "agents": 4,
    # Between the agents and the front ends: the eval harness (used by the CLI) and the cells every front
    # end builds from events (the harness writes them too).
    "evaluation": 4.5,
    "cells": 4.5,
    **dict.fromkeys(["magic", "server", "cli", "labextension"], 5),
    "testing": 6,
}
FRONT_ENDS = {"magic", "cli", "server", "evaluation", "cells"}
BEHIND_THE_SERVICE = {"store", "sandbox", "tools"}
#: Imports a layer rule does not forbid, each with its reason.
ALLOWED = {
    # `llm-agent fake-ollama` / `fake-tavily`: commands that serve the stand-ins the testing layer ships.
    ("cli.main", "testing.fake_ollama"),
    ("cli.fake_tavily", "testing._background"),
    ("cli.fake_tavily", "testing.fake_tavily"),
}


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def parse(path: Path) -> ast.Module:
    """``path``'s syntax tree, parsed with the garbage collector held: CPython 3.11.7 fails a parse with "AST
    constructor recursion depth mismatch" when a finaliser that runs during it (an earlier test's leftover asyncio
    task logging its traceback) parses too, and collecting first leaves nothing to finalise meanwhile."""
    text = path.read_text(encoding="utf-8")
    gc.collect()
    gc.disable()
    try:
        return ast.parse(text, str(path))
    finally:
        gc.enable()


def imports_of(path: Path, root: Path = ROOT) -> list[tuple[str, int]]:
    """Every module of the package ``path`` imports (``from x import y`` counts ``x``, and ``x.y`` when ``y`` is a
    submodule), relative imports resolved, with the line of each."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, node.lineno))
            found += [
                (f"{target}.{alias.name}", node.lineno) for alias in node.names if is_module(f"{target}.{alias.name}", root)
            ]
    return [(t, line) for t, line in found if t == PACKAGE or t.startswith(PACKAGE + ".")]


def is_module(dotted: str, root: Path) -> bool:
    """Is ``dotted`` a module or package of the package at ``root`` (and not a name defined in one)?"""
    where = root.parent.joinpath(*dotted.split("."))
    return where.with_suffix(".py").is_file() or (where / "__init__.py").is_file()


def graph(root: Path = ROOT) -> dict[str, list[tuple[str, int]]]:
    return {module_name(p, root): imports_of(p, root) for p in sorted(root.rglob("*.py"))}


def top(dotted: str) -> str:
    """``llm_agent_magic.server.base`` -> ``server``; the package itself -> ``""``."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else ""


def within(dotted: str) -> str:
    """``llm_agent_magic.server.base.X`` -> ``server.base.X`` (for the allow-list)."""
    return dotted.partition(".")[2]


def violations(modules: dict[str, list[tuple[str, int]]]) -> tuple[list[str], list[str]]:
    """(front ends reaching behind the service, lower layers importing higher ones), one line each."""
    behind, upward = [], []
    for module, targets in modules.items():
        here = top(module)
        for target, line in targets:
            there = top(target)
            if not here or not there or here == there:
                continue
            allowed = any(within(module) == a and within(target).startswith(b) for a, b in ALLOWED)
            where = f"{module}:{line} imports {target}"
            if here in FRONT_ENDS and there in BEHIND_THE_SERVICE:
                behind.append(where)
            elif LAYERS[there] > LAYERS[here] and not allowed:
                upward.append(f"{where} (layer {LAYERS[here]:g} importing layer {LAYERS[there]:g})")
    return behind, upward


def test_every_top_level_module_has_a_layer() -> None:
    names = {
        p.stem if p.is_file() else p.name
        for p in ROOT.iterdir()
        if (p.suffix == ".py" and p.name != "__init__.py") or (p.is_dir() and (p / "__init__.py").exists())
    }
    missing = sorted(names - set(LAYERS))
    assert not missing, f"Give these a layer in LAYERS (and docs/code-map.md): {missing}"


def test_front_ends_talk_to_the_session_service_only() -> None:
    behind, _ = violations(graph())
    assert not behind, "Front ends import store/sandbox/tools; go through agents/ instead:\n" + "\n".join(behind)


def test_lower_layers_never_import_higher_ones() -> None:
    _, upward = violations(graph())
    assert not upward, "\n".join(upward)


def test_the_walk_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    """The checks find what today's main held: a lazy relative import of the store in a method of the CLI,
    a module-level one of the sandbox in the magic, and an upward import of a front end from the store."""
    pkg = tmp_path / PACKAGE
    for folder in ("cli", "magic", "store", "sandbox"):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "cli" / "main.py").write_text("class App:\n    def start(self):\n        from ..store import ConversationStore\n")
    (pkg / "sandbox" / "results.py").write_text("class ExecutionResult: ...\n")
    (pkg / "magic" / "sandbox_cell.py").write_text("from ..sandbox.results import ExecutionResult\n")
    (pkg / "magic" / "render.py").write_text("")
    (pkg / "store" / "records.py").write_text("import llm_agent_magic.magic.render\n")
    behind, upward = violations(graph(pkg))
    assert behind == [
        "llm_agent_magic.cli.main:3 imports llm_agent_magic.store",
        "llm_agent_magic.magic.sandbox_cell:1 imports llm_agent_magic.sandbox.results",
    ]
    assert upward == ["llm_agent_magic.store.records:1 imports llm_agent_magic.magic.render (layer 2 importing layer 5)"]
