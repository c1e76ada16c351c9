"""What gathering the notebook's context adds to the start of a run (issue 22, item 4).

A notebook of 200 code cells (each with a printed output, one with a traceback) saved on disk, a folder of
2,000 files beside it, and a namespace of 50 variables (10 of them DataFrames of 20 columns). Measured, as the
magic and the agents layer do it before the first model call: reading the notebook from disk, describing the
variables, the request's wire round trip (``to_dict`` / ``from_dict``, its validation), listing the folder,
fitting and redacting the text, and rendering the opening message; against rendering the opening message
without a context. Medians over 30 rounds, after a warm-up.

    python bench/context.py

Target: at most 50 ms added (the ratio printed is added time / 50 ms; <= 1.0 passes).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from llm_agent_magic.agents.context import describe_variables, gather, read_notebook
from llm_agent_magic.notebook_context import NotebookContext
from llm_agent_magic.prompts import render_prompt

CELLS, FILES, ROUNDS, TARGET_MS = 200, 2000, 30, 50.0


def make_folder(root: Path) -> Path:
    for i in range(FILES):
        sub = root / f"data{i // 200}"
        sub.mkdir(exist_ok=True)
        (sub / f"table_{i:04}.csv").write_text("a,b\n1,2\n")
    cells = [
        {
            "cell_type": "code",
            "source": f"x{i} = compute({i})\nprint(x{i})\n",
            "metadata": {},
            "execution_count": i,
            "outputs": [{"output_type": "stream", "name": "stdout", "text": f"{i}\n" * 20}],
        }
        for i in range(CELLS)
    ]
    cells[-1]["outputs"] = [
        {"output_type": "error", "ename": "KeyError", "evalue": "'b'", "traceback": ["\x1b[31mKeyError\x1b[0m: 'b'"] * 30}
    ]
    notebook = root / "analysis.ipynb"
    notebook.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return notebook


def main() -> None:
    frame = pd.DataFrame({f"col{c}": range(100) for c in range(20)})
    namespace = {**{f"df{i}": frame for i in range(10)}, **{f"v{i}": i for i in range(40)}}
    with tempfile.TemporaryDirectory() as tmp:
        notebook = make_folder(Path(tmp))

        def with_context() -> str:
            context = NotebookContext(
                cells=read_notebook(str(notebook)), active=CELLS - 1, variables=describe_variables(namespace)
            )
            context = NotebookContext.from_dict(json.loads(json.dumps(context.to_dict())))
            gathered = gather(context, tmp, "notebook", num_ctx=32768)
            assert gathered is not None and gathered.event.cells and gathered.event.files
            return render_prompt("request", request="which region sold most?", files=[], context=gathered.text)

        def without() -> str:
            return render_prompt("request", request="which region sold most?", files=[])

        def median_ms(fn) -> float:
            fn()
            times = []
            for _ in range(ROUNDS):
                start = time.perf_counter()
                fn()
                times.append((time.perf_counter() - start) * 1000)
            return statistics.median(times)

        base, full = median_ms(without), median_ms(with_context)
        gathered = gather(
            NotebookContext(cells=read_notebook(str(notebook)), variables=describe_variables(namespace)), tmp, "notebook", 32768
        )
        assert gathered is not None
    added = full - base
    print(f"notebook of {CELLS} cells, folder of {FILES} files, {len(namespace)} variables")
    print(f"opening message without context: {base:.2f} ms; with context: {full:.2f} ms (median of {ROUNDS})")
    print(f"{gathered.event.summary}; prompt text {len(gathered.text):,} characters")
    print(
        f"added at a run's start: {added:.1f} ms; ratio to the {TARGET_MS:g} ms target: {added / TARGET_MS:.2f} "
        f"{'PASS' if added <= TARGET_MS else 'MISS'}"
    )


if __name__ == "__main__":
    main()
