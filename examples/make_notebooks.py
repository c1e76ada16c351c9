"""Write the example notebooks' cells (run once; `refresh.py` then fills their outputs and cassettes)."""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent
REPLAY_NOTE = (
    "This notebook replays a recorded session (`%agent replay ...`), so it runs anywhere, without a model. "
    "To ask your own Ollama instead, change that line to `%agent live`, or run "
    "`llm-agent run {name}.ipynb --live`."
)

NOTEBOOKS = {
    "quickstart": [
        new_markdown_cell(
            "# Quickstart: a CSV question with a chart\n\n"
            "`%%agent` takes a request in plain words. The agent writes the code, runs it in its own sandbox kernel "
            "(never in this one), fixes it if it fails, and answers. The code it ran comes back as cells.\n\n"
            + REPLAY_NOTE.format(name="quickstart")
        ),
        new_code_cell("%load_ext llm_agent_magic\n%agent replay cassettes/quickstart.jsonl"),
        new_code_cell(
            "%%agent --files data/sales.csv\n"
            "Which region had the highest revenue from January to June 2026? Plot revenue by region."
        ),
        new_markdown_cell("The agent's variables live in its sandbox. Pull the totals into this notebook:"),
        new_code_cell("%agent pull by_region\nby_region"),
    ],
    "report_two_files": [
        new_markdown_cell(
            "# A two-step report over a CSV and an Excel file\n\n"
            "`--mode plan` asks for plan-and-execute: the agent plans the steps, runs each one (checking it against "
            "its success criteria), and writes a report from the results.\n\n" + REPLAY_NOTE.format(name="report_two_files")
        ),
        new_code_cell("%load_ext llm_agent_magic\n%agent replay cassettes/report_two_files.jsonl"),
        new_code_cell(
            "%%agent --mode plan --files data/orders.csv data/customers.xlsx\n"
            "Join the orders with the customers, total the order amount by customer segment, and write a short report."
        ),
    ],
    "retrieval": [
        new_markdown_cell(
            "# Questions over your documents\n\n"
            "Attach documents with `--files`: the agent indexes them (faiss, with embeddings from Ollama), "
            "finds the passages that answer the question with `rag_search`, and cites the file.\n\n"
            + REPLAY_NOTE.format(name="retrieval")
        ),
        new_code_cell("%load_ext llm_agent_magic\n%agent replay cassettes/retrieval.jsonl"),
        new_code_cell(
            "%%agent --files data/docs/refunds.md data/docs/shipping.md data/docs/warranty.md\n"
            "How long do I have to return a product, and how fast is the refund paid?"
        ),
    ],
    "web_search": [
        new_markdown_cell(
            "# A question that needs the web\n\n"
            "With `TAVILY_API_KEY` set, the agent can search the web with Tavily and cites its sources. "
            "The replayed session below also replays the search results, so it needs neither a model nor a key.\n\n"
            + REPLAY_NOTE.format(name="web_search")
        ),
        new_code_cell("%load_ext llm_agent_magic\n%agent replay cassettes/web_search.jsonl"),
        new_code_cell("%%agent\nWhat changed in pandas 3.0 that could break my old notebooks?"),
    ],
}


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        nb = new_notebook(cells=cells)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        nbformat.write(nb, HERE / f"{name}.ipynb")


if __name__ == "__main__":
    main()
