"""No circle in the package's imports (issue 20): a module that needs what another holds gets it through a
public interface or from a lower module both import, never by the two importing each other.

Every import counts, those under ``TYPE_CHECKING`` and inside functions too: such a circle does not fail at
import time, but it is the same knot in the design (``llm/client.py`` and ``llm/stream.py`` were one, the
stream reaching into nine private members of the client). The graph is grimp's, the library import-linter
is built on.
"""

from __future__ import annotations

import grimp
import pytest

PACKAGE = "llm_agent_magic"


def import_cycles(graph: grimp.ImportGraph, package: str) -> list[list[str]]:  # noqa: C901  # Tarjan's algorithm, iterative, in one piece
    """The circles among ``package``'s modules: each strongly connected set of two or more modules (or one that
    imports itself), sorted, found with Tarjan's algorithm, iteratively (no recursion limit to meet)."""
    modules = sorted(m for m in graph.modules if m == package or m.startswith(package + "."))
    inside = set(modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & inside) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in modules:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if i < len(edges[node]):
                work.append((node, i + 1))
                nxt = edges[node][i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if work:  # back in the caller: pass the lowest index reached up
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in edges[node]:
                    cycles.append(sorted(component))
    return sorted(cycles)


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE, cache_dir=None)


def _describe(cycles: list[list[str]]) -> str:
    return "; ".join(" <-> ".join(cycle) for cycle in cycles)


def test_the_llm_layer_has_no_import_cycle(graph: grimp.ImportGraph) -> None:
    cycles = import_cycles(graph, f"{PACKAGE}.llm")
    assert cycles == [], f"modules of llm/ import each other: {_describe(cycles)}"


def test_the_whole_package_has_no_import_cycle(graph: grimp.ImportGraph) -> None:
    cycles = import_cycles(graph, PACKAGE)
    assert cycles == [], f"modules import each other: {_describe(cycles)}"


def test_the_stream_uses_no_private_member_of_the_client(graph: grimp.ImportGraph) -> None:
    # What the stream needs of a call (route, retry loop, call log) is the public ``Calls`` of calls.py.
    assert not graph.direct_import_exists(importer=f"{PACKAGE}.llm.stream", imported=f"{PACKAGE}.llm.client")
    assert graph.direct_import_exists(importer=f"{PACKAGE}.llm.stream", imported=f"{PACKAGE}.llm.calls")


def test_a_circle_is_found_however_it_is_made() -> None:
    """The check itself: circles of two and of three modules, and a module importing itself, are reported;
    a chain and a diamond are not."""
    graph = grimp.ImportGraph()
    for module in ("p", "p.a", "p.b", "p.c", "p.d", "p.e", "p.f", "p.g", "q"):
        graph.add_module(module)
    for importer, imported in [
        ("p.a", "p.b"),
        ("p.b", "p.a"),  # two modules
        ("p.c", "p.d"),
        ("p.d", "p.e"),
        ("p.e", "p.c"),  # three, through a TYPE_CHECKING import in real life
        ("p.f", "p.g"),
        ("p.f", "q"),
        ("q", "p.g"),  # a diamond through another package: no circle
    ]:
        graph.add_import(importer=importer, imported=imported)
    assert import_cycles(graph, "p") == [["p.a", "p.b"], ["p.c", "p.d", "p.e"]]
    graph.add_import(importer="p.g", imported="p.g")
    assert import_cycles(graph, "p") == [["p.a", "p.b"], ["p.c", "p.d", "p.e"], ["p.g"]]
